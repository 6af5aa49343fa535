"""Routes of the permit registry under /registry/v1, for acceptance-office systems."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session

from hub import etags, paging
from hub.audit import Actor
from hub.auth.guard import CurrentActor, GuardedRoute, actor_of, requires
from hub.composition import Hub
from hub.db import INT_MAX, rfc3339
from hub.deps import CurrentHub, DbSession, IsoDate, in_unit_of_work
from hub.etags import ETAG_HEADER, PRECONDITION_RESPONSES, expected_version, with_etag
from hub.permits import applications, domain, eligibility, service
from hub.permits.bodies import (
    AddressChangeBody,
    ApplicationBody,
    RegistrationBody,
    check_cancellation_reason,
    citizen_id_at,
    registration_input,
)
from hub.permits.jurisdictions import Code
from hub.permits.problems import (
    ADDRESS_REFUSED,
    APPLICATION_INCOMPLETE,
    INELIGIBLE,
)
from hub.permits.store import Permit
from hub.permits.views import (
    ApplicationAccepted,
    CitizenIdText,
    PermitEventView,
    PermitView,
    ProofView,
    RegistrationView,
    ResidenceView,
)
from hub.problems import FieldError, Problem, Text, problem_response

router = APIRouter(prefix="/registry/v1", tags=["Permit registry"], route_class=GuardedRoute)
LOCATION = {"Location": {"schema": {"type": "string"}}}


def _operation(path: str, method: str = "post") -> str:
    """The operationRef of an OpenAPI link to one of this router's operations (RFC 6901)."""
    pointer = (router.prefix + path).replace("~", "~0").replace("/", "~1")
    return f"#/paths/{pointer}/{method}"


@router.post(
    "/registrations",
    status_code=201,
    summary="Register a residence (居住登记)",
    description=(
        "Chifeng counts the years under a temporary-residence permit (暂住证) [CF §32]: with"
        " `temporary_permit_since` the residence counts from then, so the example's holder may"
        " apply at once (`POST /applications`)."
    ),
    responses={
        201: {
            "model": RegistrationView,
            "headers": LOCATION,
            "links": {
                "apply": {
                    "operationRef": _operation("/applications"),
                    "requestBody": {"registration_id": "$response.body#/id"},
                    "description": "Apply for a permit on this registration",
                }
            },
        },
        422: {
            "description": (
                "A field is invalid (`errors` points at it): a citizen ID that fails GB 11643,"
                " a place the hub does not serve, a date after today or before the birth"
            )
        },
    },
)
@requires("registry:write")
async def create_registration(
    request: Request, body: RegistrationBody, hub: CurrentHub
) -> JSONResponse:
    # Async, with the work in one unit on one worker thread: a sync route with DbSession hops
    # between the event loop and the thread pool three times.
    actor, today, now = actor_of(request), hub.clock.today(), hub.clock.now()
    data = registration_input(body, today)

    def register(session: Session) -> dict[str, Any]:
        registration = service.register(
            session,
            hub.lifecycle,
            hub.vault,
            hub.jurisdictions,
            data,
            actor=actor,
            now=now,
            today=today,
        )
        return service.registration_view(registration, hub.vault)

    view = await in_unit_of_work(hub, register)
    return JSONResponse(view, status_code=201, headers={"Location": f"{request.url}/{view['id']}"})


@router.get(
    "/registrations/{registration_id}",
    summary="A residence registration (audited)",
    responses={
        200: {"model": RegistrationView},
        404: {"description": "No registration by this id"},
    },
)
@requires("registry:read")
def get_registration(
    actor: CurrentActor, registration_id: str, session: DbSession, hub: CurrentHub
) -> JSONResponse:
    registration = service.read_registration(
        session, hub.audit, registration_id, actor=actor, now=hub.clock.now()
    )
    return JSONResponse(service.registration_view(registration, hub.vault))


class CancelBody(BaseModel):
    reason: Code | None = Field(
        default=None,
        max_length=32,
        description=(
            "One of the jurisdiction's cancellation reasons [CF §23], where it lists them"
            " (Chifeng: false-materials, conditions-no-longer-met, local-household-registration,"
            " other); else a 422 naming them"
        ),
        examples=["conditions-no-longer-met"],
    )


def _audited_permit(what: str) -> Any:
    """A dependency: the permit named in the path (404 if none), its read of `what` audited
    in the request's unit of work. It runs after the route's scope guard."""

    def read(actor: CurrentActor, permit_id: str, session: DbSession, hub: CurrentHub) -> Permit:
        return service.read_permit(
            session, hub.audit, permit_id, what, actor=actor, now=hub.clock.now()
        )

    return Depends(read)


def _permit_to_change(permit_id: str, session: DbSession) -> Permit:
    """A dependency: the permit named in the path (404 if none), for a change, which audits
    itself."""
    return service.permit_of(session, permit_id)


PermitToChange = Annotated[Permit, Depends(_permit_to_change)]
PermitRead = Annotated[Permit, _audited_permit("permit")]
EventsRead = Annotated[Permit, _audited_permit("permit.events")]
ResidenceRead = Annotated[Permit, _audited_permit("permit.residence")]


@router.get(
    "/permits/{permit_id}",
    summary="A permit, with its ETag (audited)",
    responses={200: {"model": PermitView, "headers": ETAG_HEADER}},
)
@requires("registry:read")
def get_permit(permit: PermitRead) -> JSONResponse:
    return with_etag(service.view(permit))


@router.get(
    "/permits/{permit_id}/events",
    summary="The permit's history, oldest first, a page at a time (audited)",
    description=paging.DESCRIPTION,
    responses={200: {"model": list[PermitEventView], "headers": paging.LINK_HEADER}},
)
@requires("registry:read")
def permit_events(
    request: Request,
    permit: EventsRead,
    session: DbSession,
    after: Annotated[
        int | None, Query(ge=0, le=INT_MAX, description="`seq` of the last read")
    ] = None,
    limit: paging.Limit = paging.PAGE_DEFAULT,
) -> JSONResponse:
    found = service.events_of(session, permit.id, after=after or 0, limit=limit + 1)
    page = found[:limit]
    headers = paging.next_link(request, str(page[-1].seq), limit) if len(found) > limit else {}
    events = [
        {
            "seq": event.seq,
            "type": event.type,
            "state_after": event.state_after,
            "at": rfc3339(event.at),
            "actor": event.actor_client_id,
            "payload": event.payload,
        }
        for event in page
    ]
    return JSONResponse(events, headers=headers)


# --- applications and proofs ---------------------------------------------------------------


@router.post(
    "/applications",
    status_code=201,
    summary="Apply for a permit (申领): accepted, incomplete or ineligible [CF §16]",
    responses={
        201: {
            "model": ApplicationAccepted,
            "headers": {**ETAG_HEADER, **LOCATION},
            "links": {
                "issue": {
                    "operationRef": _operation("/permits/{permit_id}/issue"),
                    "parameters": {
                        "path.permit_id": "$response.body#/permit/id",
                        "header.If-Match": "$response.header.ETag",
                    },
                    "description": "Issue the accepted permit",
                }
            },
        },
        404: {"description": "No registration by `registration_id`"},
        409: {"description": "The person already holds a live permit [CF §17]"},
        422: {
            "description": (
                "Incomplete (`missing` lists the materials), ineligible (cited), or a claim the"
                " jurisdiction cannot hear (`forms` lists its forms by condition)"
            )
        },
    },
)
@requires("registry:write")
def apply(
    request: Request,
    actor: CurrentActor,
    body: ApplicationBody,
    session: DbSession,
    hub: CurrentHub,
) -> JSONResponse:
    outcome, permit = applications.apply_for_permit(
        session,
        hub.lifecycle,
        hub.jurisdictions,
        body.registration_id,
        applications.Claim(body.condition, body.form, body.exemption, frozenset(body.materials)),
        actor=actor,
        now=hub.clock.now(),
        today=hub.clock.today(),
    )
    # Refusals are answered, not raised: the transaction must commit their audit entry.
    if isinstance(outcome, eligibility.Incomplete):
        missing = [{"code": m.code, "zh": m.zh, "en": m.en} for m in outcome.missing]
        names = Text(
            "、".join(m.zh for m in outcome.missing), ", ".join(m.en for m in outcome.missing)
        )
        problem = Problem(
            APPLICATION_INCOMPLETE,
            Text(f"还缺：{names.zh}", f"Still missing: {names.en}"),
            extensions={"missing": missing, "cite": "[CF §16]"},
        )
        return problem_response(request, problem)
    if isinstance(outcome, eligibility.Ineligible):
        problem = Problem(
            INELIGIBLE[outcome.code],
            Text(outcome.zh, outcome.en),
            extensions={"reason": outcome.code, "cite": outcome.cite},
        )
        return problem_response(request, problem)
    assert permit is not None
    view = service.view(permit)
    return JSONResponse(
        {"outcome": "accepted", "met_by": outcome.met_by, "permit": view},
        status_code=201,
        headers={"ETag": f'"{permit.version}"', "Location": f"/registry/v1/permits/{permit.id}"},
    )


@router.get(
    "/permits-overdue",
    summary="Accepted permits past their issuance deadline, a page at a time (audited)",
    description=paging.DESCRIPTION,
    responses={200: {"model": list[PermitView], "headers": paging.LINK_HEADER}},
)
@requires("registry:read")
def overdue(
    request: Request,
    actor: CurrentActor,
    session: DbSession,
    hub: CurrentHub,
    after: paging.After = None,
    limit: paging.Limit = paging.PAGE_DEFAULT,
) -> JSONResponse:
    key = None
    if after is not None:
        due, permit_id = paging.parts(after, 2)
        key = (paging.date_part(due), permit_id)
    permits, more = applications.overdue_issuance(
        session,
        hub.audit,
        hub.clock.today(),
        after=key,
        limit=limit,
        actor=actor,
        now=hub.clock.now(),
    )
    last = permits[-1] if permits else None
    headers = (
        paging.next_link(request, paging.cursor(last.issue_due_on, last.id), limit)
        if more and last
        else {}
    )
    return JSONResponse([service.view(permit) for permit in permits], headers=headers)


def _proof_sources(schema: dict[str, Any]) -> None:
    """Each proof kind comes from the department that owns it (eligibility.PROOF_KINDS)."""
    schema["properties"]["kind"]["enum"] = list(eligibility.PROOF_KINDS)
    schema["anyOf"] = [
        {
            "properties": {
                "kind": {"const": code},
                "source_department": {"enum": sorted(kind.owners)},
            }
        }
        for code, kind in eligibility.PROOF_KINDS.items()
    ]


class ProofBody(BaseModel):
    """A condition on file with its competent department, recorded by registry staff."""

    model_config = {"json_schema_extra": _proof_sources}

    citizen_id: CitizenIdText
    kind: Code = Field(max_length=32, examples=["social-insurance"])
    source_department: Code = Field(max_length=64, examples=["hr-social-security"])
    source_proof_id: str = Field(min_length=1, max_length=128, examples=["NBSI-2026-000123"])
    valid_from: IsoDate
    valid_to: IsoDate | None = None
    details: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"months": 14, "continuous": True, "back_paid_months": 0}],
    )


@router.post(
    "/proofs",
    status_code=201,
    summary="Record a department's proof on file (idempotent by department and proof id)",
    responses={
        200: {"model": ProofView, "description": "Recorded before with the same content"},
        201: {"model": ProofView},
        409: {"description": "The proof id was recorded before with other content"},
        422: {"description": "A field is invalid; `errors` points at it"},
    },
)
@requires("registry:write")
def record_proof(
    actor: CurrentActor, body: ProofBody, session: DbSession, hub: CurrentHub
) -> JSONResponse:
    citizen_id = citizen_id_at(body.citizen_id, hub.clock.today(), "/citizen_id")
    data = applications.ProofInput(
        citizen_id_hash=hub.vault.lookup_hash(citizen_id),
        kind=body.kind,
        source_department=body.source_department,
        source_proof_id=body.source_proof_id,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        details=body.details,
    )
    proof, new = applications.record_proof(
        session,
        hub.audit,
        data,
        actor=actor,
        now=hub.clock.now(),
    )
    view = {
        "id": proof.id,
        "kind": proof.kind,
        "source_department": proof.source_department,
        "source_proof_id": proof.source_proof_id,
        "valid_from": proof.valid_from.isoformat(),
        "valid_to": proof.valid_to.isoformat() if proof.valid_to else None,
        "details": proof.details,
    }
    return JSONResponse(view, status_code=201 if new else 200)


@router.post(
    "/permits/{permit_id}/address-change",
    summary="Report a move (变更登记); late reports restart residence where the rules say so",
    responses={
        200: {"model": PermitView, "headers": ETAG_HEADER},
        409: {"description": "The permit's state does not allow the move"},
        **PRECONDITION_RESPONSES,
        422: {"description": "The move is after today, or outside the permit's area"},
    },
    openapi_extra=etags.if_match_required(),
)
@requires("registry:write")
def change_address(
    request: Request,
    actor: CurrentActor,
    permit: PermitToChange,
    body: AddressChangeBody,
    session: DbSession,
    hub: CurrentHub,
) -> JSONResponse:
    today = hub.clock.today()
    if body.moved_on > today:
        raise Problem(
            ADDRESS_REFUSED,
            Text("迁入日期晚于今天", "The move is in the future"),
            errors=[FieldError(Text("迁入日期晚于今天", "in the future"), pointer="/moved_on")],
        )
    changed, _ = service.change_address(
        session,
        hub.lifecycle,
        hub.jurisdictions[permit.jurisdiction],
        permit.id,
        expected_version=expected_version(request),
        moved_on=body.moved_on,
        new_address=body.new_address,
        new_region=body.new_region,
        actor=actor,
        now=hub.clock.now(),
        today=today,
    )
    return with_etag(service.view(changed))


@router.get(
    "/permits/{permit_id}/residence",
    summary="The holder's continuous residence (start and length) on a date (audited)",
    responses={200: {"model": ResidenceView}},
)
@requires("registry:read")
def residence(
    permit: ResidenceRead,
    session: DbSession,
    hub: CurrentHub,
    on: Annotated[IsoDate | None, Query(description="The date asked about; default today")] = None,
) -> JSONResponse:
    day = on or hub.clock.today()
    period = service.residence_of(session, permit, day)
    if period is None:
        return JSONResponse({"on": day.isoformat(), "resident": False})
    return JSONResponse(
        {
            "on": day.isoformat(),
            "resident": True,
            "start": period.start.isoformat(),
            "days": period.days,
            "whole_years": period.whole_years,
        }
    )


# --- lifecycle actions, one route each (an unknown one is a 404, another method a 405) --------

_LIFECYCLE_RESPONSES: Mapping[int | str, dict[str, Any]] = {
    200: {"model": PermitView, "headers": ETAG_HEADER},
    409: {"description": "The state machine refuses the move; the type names the rule"},
    **PRECONDITION_RESPONSES,
}
_LIFECYCLE_DESCRIPTION = (
    "Needs `If-Match` with the ETag last read. Illegal moves are 409 problems whose type "
    "names the rule (e.g. `/problems/endorsement-window-not-open`) and cite the seed."
)
_ACTIONS: Mapping[domain.Action, str] = {
    domain.Action.ISSUE: "Issue the card of an accepted permit (发证) [CF §17]",
    domain.Action.ENDORSE: "Endorse for a year, or restore a suspended permit (签注) [CF §20]",
    domain.Action.REPLACE: "Replace a lost card (补领): the old serial is dead at once [CF §18]",
    domain.Action.RENEW: "Renew a damaged card (换领): the old card is returned [CF §18]",
    domain.Action.SETTLE: "Settle here (落户): the permit is collected [CF §22]",
}


def _act(
    request: Request,
    actor: Actor,
    session: Session,
    hub: Hub,
    permit_id: str,
    action: domain.Action,
    details: dict[str, Any] | None = None,
) -> JSONResponse:
    permit, _ = service.perform(
        session,
        hub.lifecycle,
        permit_id,
        action,
        expected_version=expected_version(request),
        actor=actor,
        now=hub.clock.now(),
        today=hub.clock.today(),
        details=details,
    )
    return with_etag(service.view(permit))


def _action_route(action: domain.Action) -> Callable[..., JSONResponse]:
    @requires("registry:write")
    def act(
        request: Request, actor: CurrentActor, session: DbSession, hub: CurrentHub, permit_id: str
    ) -> JSONResponse:
        return _act(request, actor, session, hub, permit_id, action)

    return act


for _action, _summary in _ACTIONS.items():
    router.add_api_route(
        f"/permits/{{permit_id}}/{_action}",
        _action_route(_action),
        methods=["POST"],
        name=f"{_action}_permit",
        summary=_summary,
        description=_LIFECYCLE_DESCRIPTION,
        responses=dict(_LIFECYCLE_RESPONSES),
        openapi_extra=etags.if_match_required(),
    )


@router.post(
    "/permits/{permit_id}/cancel",
    summary="Cancel a permit (注销) for one of the jurisdiction's reasons [CF §23]",
    description=_LIFECYCLE_DESCRIPTION,
    responses={
        **_LIFECYCLE_RESPONSES,
        422: {"description": "The reason is not one of the jurisdiction's (they are listed)"},
    },
    openapi_extra=etags.if_match_required(),
)
@requires("registry:write")
def cancel_permit(
    request: Request,
    actor: CurrentActor,
    permit: PermitToChange,
    session: DbSession,
    hub: CurrentHub,
    body: Annotated[CancelBody | None, Body()] = None,
) -> JSONResponse:
    reason = body.reason if body else None
    check_cancellation_reason(hub.jurisdictions[permit.jurisdiction], reason)
    details = {"reason": reason} if reason else None
    return _act(request, actor, session, hub, permit.id, domain.Action.CANCEL, details)
