"""Data governance in the console: the exchange schemas as the registry holds them. The pages
read through the schema registry's own service and views, as its API does."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from hub.audit import Actor
from hub.auth.guard import GuardedRoute, actor_of, principal_of, signed_in
from hub.console.jsonview import json_lines, marked
from hub.console.pages import page_context, posted_form, render
from hub.db import INT_MAX, unit_of_work
from hub.deps import DbSession
from hub.schemas import domain, service, views
from hub.schemas.bodies import SubjectName as Subject
from hub.schemas.compat import CompatibilityMode
from hub.text import Text

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)


@router.get("/console/governance")
@signed_in("schemas:admin")
def subjects_page(request: Request, session: DbSession) -> Response:
    """Every subject with its compatibility mode and its versions' states."""
    subjects = [
        views.subject_view(
            row, service.compatibility_of(session, row), service.versions_of(session, row.name)
        )
        for row in service.subjects(session)
    ]
    return render(
        request,
        "governance.html",
        **page_context(request, principal_of(request)),
        subjects=subjects,
        states=domain.STATE_NAMES,
    )


@router.get("/console/governance/subjects/{subject}")
@signed_in("schemas:admin")
def subject_page(
    request: Request,
    subject: Subject,
    session: DbSession,
    older: Annotated[int | None, Query(alias="from", ge=1, le=INT_MAX)] = None,
    newer: Annotated[int | None, Query(alias="to", ge=1, le=INT_MAX)] = None,
) -> Response:
    """A subject's versions, and two of them side by side (by default the latest and the one
    before): each change that breaks a reader marked at its pointer, in the schema it is in,
    and explained in both languages."""
    row = service.subject_row(session, subject)
    versions = service.versions_of(session, subject)
    latest = versions[-1].version if versions else 1
    newer = newer or latest
    older = older or max(1, newer - 1)
    first, second, changes = service.difference(session, subject, older, newer)
    backward, forward = changes["backward"], changes["forward"]
    return render(
        request,
        "subject.html",
        **page_context(request, principal_of(request)),
        subject=views.subject_view(row, service.compatibility_of(session, row), versions),
        states=domain.STATE_NAMES,
        first=first,
        second=second,
        left=marked(json_lines(first.definition), {c.pointer for c in forward}),
        right=marked(json_lines(second.definition), {c.pointer for c in backward}),
        backward=backward,
        forward=forward,
        next_states={
            state.value: sorted(later.value for later in following)
            for state, following in domain.NEXT_STATES.items()
        },
        modes=[mode.value for mode in CompatibilityMode],
    )


@router.get("/console/governance/subjects/{subject}/draft")
@signed_in("schemas:admin")
def draft_page(request: Request, subject: Subject, session: DbSession) -> Response:
    """A draft of the subject's next version to check, starting from its latest."""
    latest = service.version_of(session, subject, "latest")
    text = json.dumps(latest.definition, indent=2, ensure_ascii=False)
    return _draft(request, subject, text)


def _draft(request: Request, subject: str, text: str, **outcome: Any) -> Response:
    return render(
        request,
        "draft.html",
        **page_context(request, principal_of(request)),
        subject=subject,
        text=text,
        **outcome,
    )


@router.post("/console/governance/subjects/{subject}/draft")
@signed_in("schemas:admin")
async def check_draft(request: Request, subject: Subject) -> Response:
    """What registering the pasted schema would break, against the versions in use, by the
    subject's mode; nothing stored. Or, asked to register, the new DRAFT version."""
    form = await posted_form(request)
    text = form.get("schema", "")
    definition, unreadable = _parsed(text)
    if unreadable is not None:
        return _draft(request, subject, text, unreadable=unreadable)
    hub = request.app.state.hub
    if form.get("action") == "register":
        actor = actor_of(request)
        version = await run_in_threadpool(_register, hub, subject, definition, actor)
        return RedirectResponse(
            f"/console/governance/subjects/{subject}?to={version}", status_code=303
        )
    mode, violations = await run_in_threadpool(_violations, hub, subject, definition)
    return _draft(request, subject, text, mode=mode, violations=violations, checked=True)


def _violations(hub: Any, subject: str, definition: Any) -> tuple[Any, list[Any]]:
    with Session(hub.engine) as session:
        service.checked_schema(session, hub.schemas, definition)
        return service.violations_for(session, service.subject_row(session, subject), definition)


def _register(hub: Any, subject: str, definition: Any, actor: Actor) -> int:
    with unit_of_work(hub.engine) as session:
        registered = service.register(
            session,
            hub.schemas,
            hub.audit,
            subject,
            definition,
            state=domain.VersionState.DRAFT,
            actor=actor,
            now=hub.clock.now(),
        )
        return int(registered.version.version)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parsed(text: str) -> tuple[Any, Text | None]:
    """The pasted schema, or where it stops being JSON (NaN and Infinity are not JSON)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant), None
    except json.JSONDecodeError as error:
        return None, Text(
            f"不是有效的 JSON：第 {error.lineno} 行第 {error.colno} 列",
            f"Not valid JSON: line {error.lineno}, column {error.colno}",
        )
    except (ValueError, RecursionError):
        return None, Text("不是有效的 JSON，或嵌套过深", "Not valid JSON, or nested too deeply")
