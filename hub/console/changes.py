"""Data governance's changes to a subject: a version moved to its next state, the subject's
compatibility mode set. Each is asked for on a page that names what it reaches (the agreements
on the subject and their departments, the version exchanged before and after, what would stop
it) and made by the form on that page, through the registry's own service, audited as the
person."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.auth.guard import GuardedRoute, actor_of, principal_of, signed_in
from hub.clock import china_date
from hub.console.pages import SECURITY_HEADERS, page_context, posted_form, posted_number, render
from hub.db import INT_MAX, unit_of_work
from hub.deps import DbSession
from hub.problems import VALIDATION_FAILED, Problem
from hub.schemas import domain, impact, service
from hub.schemas.bodies import SubjectName as Subject
from hub.schemas.compat import CompatibilityMode
from hub.text import Text

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)

Version = Annotated[int, Query(ge=1, le=INT_MAX)]
Choice = TypeVar("Choice", bound=StrEnum)


@router.get("/console/governance/subjects/{subject}/state")
@signed_in("schemas:admin")
def confirm_state(
    request: Request,
    subject: Subject,
    session: DbSession,
    version: Version,
    to: Annotated[domain.VersionState, Query()],
) -> Response:
    hub = request.app.state.hub
    reach = impact.of_state_change(
        session, hub.schemas, subject, version, to, china_date(hub.clock.now())
    )
    return _confirm(
        request,
        subject,
        reach,
        Text(
            f"将 {subject} 第 {version} 版设为“{domain.STATE_NAMES[to.value].zh}”？",
            f"Make {subject} version {version} {domain.STATE_NAMES[to.value].en.lower()}?",
        ),
        {"version": str(version), "to": to.value},
        action="state",
    )


@router.get("/console/governance/subjects/{subject}/mode")
@signed_in("schemas:admin")
def confirm_mode(
    request: Request,
    subject: Subject,
    session: DbSession,
    to: Annotated[CompatibilityMode, Query()],
) -> Response:
    hub = request.app.state.hub
    row = service.subject_row(session, subject)
    current = service.compatibility_of(session, row)
    reach = impact.of_mode_change(session, subject, to, china_date(hub.clock.now()))
    return _confirm(
        request,
        subject,
        reach,
        Text(
            f"将 {subject} 的兼容模式由 {current.value} 改为 {to.value}？",
            f"Change the compatibility mode of {subject} from {current.value} to {to.value}?",
        ),
        {"to": to.value},
        action="mode",
    )


def _confirm(
    request: Request,
    subject: str,
    reach: impact.Impact,
    question: Text,
    fields: dict[str, str],
    *,
    action: str,
) -> Response:
    return render(
        request,
        "confirm.html",
        **page_context(request, principal_of(request)),
        subject=subject,
        question=question,
        reach=reach,
        fields=fields,
        action=f"/console/governance/subjects/{subject}/{action}",
    )


@router.post("/console/governance/subjects/{subject}/state")
@signed_in("schemas:admin")
async def change_state(request: Request, subject: Subject) -> Response:
    form = await posted_form(request)
    version = posted_number(form.get("version", ""), Text("版本号无效", "Not a version number"))
    wanted = _one_of(domain.VersionState, form.get("to", ""))
    hub = request.app.state.hub
    actor = actor_of(request)

    def move() -> None:
        with unit_of_work(hub.engine) as session:
            service.set_state(
                session,
                hub.schemas,
                hub.audit,
                subject,
                version,
                wanted,
                actor=actor,
                now=hub.clock.now(),
            )

    await run_in_threadpool(move)
    return _back(subject, version)


@router.post("/console/governance/subjects/{subject}/mode")
@signed_in("schemas:admin")
async def change_mode(request: Request, subject: Subject) -> Response:
    form = await posted_form(request)
    mode = _one_of(CompatibilityMode, form.get("to", ""))
    hub = request.app.state.hub
    actor = actor_of(request)

    def set_mode() -> None:
        with unit_of_work(hub.engine) as session:
            service.set_compatibility(
                session, hub.audit, subject, mode, actor=actor, now=hub.clock.now()
            )

    await run_in_threadpool(set_mode)
    return _back(subject)


def _one_of(kind: type[Choice], text: str) -> Choice:
    try:
        return kind(text)
    except ValueError:
        allowed = ", ".join(kind)
        raise Problem(
            VALIDATION_FAILED, Text(f"只能是 {allowed} 之一", f"Must be one of {allowed}")
        ) from None


def _back(subject: str, version: int | None = None) -> Response:
    to = f"?to={version}" if version else ""
    return RedirectResponse(
        f"/console/governance/subjects/{subject}{to}", status_code=303, headers=SECURITY_HEADERS
    )
