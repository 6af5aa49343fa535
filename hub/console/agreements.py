"""Data governance's agreements: each department's data-sharing agreement, its fields picked
from what the subject's latest version declares (nothing else can be chosen), its validity and
legal basis, every version with who changed what; and, before anything is saved, a preview of
exactly what the department would receive for the schema's own example record.

Reads and writes go through the registry's agreement service, as the API's do: the same checks
(declared fields, too narrow for a version in use, a stale version), audited as the person.
A refused save shows the form again with the person's edits and the reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from hub.audit import Actor
from hub.auth.domain import Department
from hub.auth.guard import GuardedRoute, actor_of, principal_of, signed_in
from hub.console.jsonview import json_lines, marked
from hub.console.pages import SECURITY_HEADERS, form_number, page_context, render
from hub.db import unit_of_work
from hub.deps import DbSession
from hub.problems import DomainProblem, field_errors
from hub.schemas import agreements, domain, service
from hub.schemas.bodies import AgreementBody, AgreementId
from hub.schemas.projection import Projection, declared_fields, unkept_required
from hub.schemas.store import Agreement, current_agreements
from hub.text import Text

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
PAGE = "/console/governance/agreements"
SubjectName = Annotated[
    str, Query(pattern=domain.SUBJECT_NAME.pattern, max_length=domain.SUBJECT_NAME_MAX)
]


@router.get(PAGE)
@signed_in("schemas:admin")
def list_page(request: Request, session: DbSession) -> Response:
    return render(
        request,
        "agreements.html",
        **page_context(request, principal_of(request)),
        agreements=current_agreements(session),
        subjects=[row.name for row in service.subjects(session)],
    )


@dataclass(frozen=True)
class Change:
    """One version of an agreement against the one before."""

    row: Agreement
    added: list[str]
    removed: list[str]
    terms: list[str]  # the other terms that changed, by name


def _changes(rows: list[Agreement]) -> list[Change]:
    changes: list[Change] = []
    before: Agreement | None = None
    for row in rows:
        fields = list(row.allowed_fields)
        earlier: list[str] = list(before.allowed_fields) if before else []
        terms = [
            name
            for name in ("purpose", "legal_basis", "valid_from", "valid_to", "status")
            if before is not None and getattr(before, name) != getattr(row, name)
        ]
        changes.append(
            Change(
                row,
                [f for f in fields if f not in earlier],
                [f for f in earlier if f not in fields],
                terms,
            )
        )
        before = row
    return list(reversed(changes))


def _form_of(row: Agreement) -> dict[str, Any]:
    return {
        "department": row.department,
        "purpose": row.purpose,
        "subject": row.subject,
        "fields": list(row.allowed_fields),
        "legal_basis": row.legal_basis,
        "valid_from": row.valid_from.isoformat(),
        "valid_to": row.valid_to.isoformat() if row.valid_to else "",
        "status": row.status,
    }


def _editor(
    request: Request,
    session: Session,
    form: dict[str, Any],
    *,
    agreement_id: str | None,
    version: int | None,
    status: int = 200,
    errors: list[Text] | None = None,
) -> Response:
    """The form with `form`'s values, the field picker of the subject's latest version, the
    preview of its example record, and (for an existing agreement) its history."""
    hub = request.app.state.hub
    latest = service.version_of(session, form["subject"], "latest")
    hub.schemas.remember(session, latest)
    resolve = hub.schemas.resolve_through(session)
    choosable = [
        pointer
        for pointer in declared_fields(latest.definition, resolve)
        if not any(pointer == e or pointer.startswith(e + "/") for e in domain.ENVELOPE)
    ]
    chosen = [f for f in form["fields"] if f in choosable]
    examples = latest.definition.get("examples") if isinstance(latest.definition, dict) else None
    sample = examples[0] if isinstance(examples, list) and examples else None
    preview = None
    if isinstance(sample, dict):
        kept = Projection(chosen, always=domain.ENVELOPE)
        unkept = unkept_required(latest.definition, [*domain.ENVELOPE, *chosen], resolve)
        preview = {
            "sample": marked(json_lines(sample), set(chosen) | set(domain.ENVELOPE)),
            "received": json_lines(kept.apply(sample)),
            "unkept": unkept,
        }
    history = _changes(agreements.history(session, agreement_id)) if agreement_id else []
    return render(
        request,
        "agreement.html",
        status=status,
        **page_context(request, principal_of(request)),
        agreement_id=agreement_id,
        version=version,
        form=form,
        latest=latest,
        choosable=choosable,
        chosen=set(chosen),
        preview=preview,
        history=history,
        errors=errors or [],
        departments=[department.value for department in Department],
        statuses=[status.value for status in domain.AgreementStatus],
    )


@router.get(PAGE + "/new")
@signed_in("schemas:admin")
def new_page(
    request: Request, session: DbSession, subject: SubjectName = "holder-record"
) -> Response:
    form = {
        "department": Department.EDUCATION.value,
        "purpose": "",
        "subject": subject,
        "fields": [],
        "legal_basis": "",
        "valid_from": request.app.state.hub.clock.today().isoformat(),
        "valid_to": "",
        "status": domain.AgreementStatus.ACTIVE.value,
    }
    return _editor(request, session, form, agreement_id=None, version=None)


@router.get(PAGE + "/{agreement_id}")
@signed_in("schemas:admin")
def agreement_page(request: Request, agreement_id: AgreementId, session: DbSession) -> Response:
    row = agreements.latest(session, agreement_id)
    return _editor(request, session, _form_of(row), agreement_id=row.id, version=row.version)


async def _posted(request: Request) -> tuple[dict[str, Any], str, int | None]:
    """The form as the editor shows it, what was asked (preview or save), and the version the
    person read (for an existing agreement)."""
    pairs = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)

    def one(name: str) -> str:
        return pairs.get(name, [""])[-1]

    form: dict[str, Any] = {
        name: one(name) for name in ("department", "purpose", "subject", "legal_basis")
    }
    form |= {name: one(name) for name in ("valid_from", "valid_to", "status")}
    form["fields"] = list(dict.fromkeys(pairs.get("fields", [])))
    return form, one("action"), form_number(one("version"))


def _body(form: dict[str, Any]) -> AgreementBody:
    return AgreementBody.model_validate({**form, "valid_to": form["valid_to"] or None})


@router.post(PAGE + "/new")
@signed_in("schemas:admin")
async def create(request: Request) -> Response:
    form, action, _ = await _posted(request)
    return await _save_or_preview(request, form, action, None, None)


@router.post(PAGE + "/{agreement_id}")
@signed_in("schemas:admin")
async def amend(request: Request, agreement_id: AgreementId) -> Response:
    form, action, version = await _posted(request)
    current = await run_in_threadpool(_latest, request.app.state.hub, agreement_id)
    form["department"], form["subject"] = current.department, current.subject
    return await _save_or_preview(request, form, action, agreement_id, version or 0)


async def _save_or_preview(
    request: Request,
    form: dict[str, Any],
    action: str,
    agreement_id: str | None,
    version: int | None,
) -> Response:
    hub = request.app.state.hub
    status, errors = 200, []
    if action == "save":
        try:
            body = _body(form)
            saved = await run_in_threadpool(
                _save, hub, body.terms(), actor_of(request), agreement_id, version
            )
        except ValidationError as invalid:
            raw = [{**e, "loc": ("body", *e["loc"])} for e in invalid.errors()]
            status = 422
            errors = [
                Text(f"{e.pointer}：{e.detail.zh}", f"{e.pointer}: {e.detail.en}")
                for e in field_errors(raw)
            ]
        except DomainProblem as refused:
            problem = refused.problem()
            status = problem.status or problem.kind.status
            errors = [problem.detail or problem.kind.title]
        else:
            return RedirectResponse(
                f"{PAGE}/{saved}?saved=1", status_code=303, headers=SECURITY_HEADERS
            )

    def edit_again() -> Response:
        with Session(hub.engine) as session:
            return _editor(
                request,
                session,
                form,
                agreement_id=agreement_id,
                version=version,
                status=status,
                errors=errors,
            )

    return await run_in_threadpool(edit_again)


def _latest(hub: Any, agreement_id: str) -> Agreement:
    with Session(hub.engine) as session:
        return agreements.latest(session, agreement_id)


def _save(
    hub: Any,
    terms: domain.AgreementTerms,
    actor: Actor,
    agreement_id: str | None,
    version: int | None,
) -> str:
    with unit_of_work(hub.engine) as session:
        if agreement_id is None:
            row = agreements.create(
                session, hub.schemas, hub.audit, terms, actor=actor, now=hub.clock.now()
            )
        else:
            row = agreements.amend(
                session,
                hub.schemas,
                hub.audit,
                agreement_id,
                terms,
                expected_version=version or 0,
                actor=actor,
                now=hub.clock.now(),
            )
        return str(row.id)
