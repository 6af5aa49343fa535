"""Routes of the permit registry under /registry/v1, for acceptance-office systems."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hub.auth.guard import GuardedRoute, principal_of, requires
from hub.deps import CurrentHub, DbSession
from hub.permits import domain, service
from hub.permits.identity import CitizenId, InvalidCitizenId, citizen_id_problem, parse_citizen_id
from hub.permits.store import Permit, Registration
from hub.problems import FieldError, Problem, Text, problem_type

router = APIRouter(prefix="/registry/v1", tags=["Permit registry"], route_class=GuardedRoute)

PERMIT_NOT_FOUND = problem_type("permit-not-found", 404, "居住证不存在", "Permit not found")
PRECONDITION_REQUIRED = problem_type(
    "precondition-required", 428, "须携带 If-Match 版本号", "If-Match required"
)
STALE_WRITE = problem_type(
    "stale-write", 412, "居住证已被他人修改", "The permit was changed by someone else"
)
REFUSED = {
    code: problem_type(code, 409, zh, en) for code, (zh, en) in domain.REFUSAL_TITLES.items()
}


REGISTRATION_REFUSED = problem_type(
    "registration-refused", 422, "居住登记信息不符合规定", "Registration not accepted"
)
REGISTRATION_NOT_FOUND = problem_type(
    "registration-not-found", 404, "居住登记不存在", "Registration not found"
)
REGION = r"^\d{6}$"


class DeclarantBody(BaseModel):
    relation: Literal["guardian", "trustee", "near-relative"]
    citizen_id: str = Field(description="The declarant's own ID number", max_length=20)
    because: Literal["minor", "elderly-limited-mobility", "disabled"]


class RegistrationBody(BaseModel):
    """Residence registration with the fields of [CF §11]."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "citizen_id": "11010519491231002X",
                    "name": "王芳",
                    "ethnicity": "汉族",
                    "household_address": "北京市朝阳区某街道1号",
                    "household_region": "110105",
                    "current_address": "赤峰市红山区某小区2号楼",
                    "current_region": "150402",
                    "reason": "employment",
                    "workplace": "赤峰某建材有限公司",
                    "contact": "13800000000",
                    "arrived_on": "2026-11-16",
                }
            ]
        }
    }

    citizen_id: str = Field(max_length=20)
    name: str = Field(min_length=1, max_length=64)
    ethnicity: str = Field(min_length=1, max_length=32)
    household_address: str = Field(min_length=1, max_length=256)
    household_region: str = Field(pattern=REGION)
    current_address: str = Field(min_length=1, max_length=256)
    current_region: str = Field(pattern=REGION)
    reason: Literal["employment", "business", "study", "family", "other"]
    workplace: str | None = Field(default=None, max_length=256)
    contact: str = Field(pattern=r"^\+?[0-9\- ]{5,20}$")
    arrived_on: date
    temporary_permit_since: date | None = Field(
        default=None, description="Start of an old temporary-residence permit (暂住证) to import"
    )
    declarant: DeclarantBody | None = None


def _citizen_id(text: str, today: date, pointer: str) -> CitizenId:
    try:
        return parse_citizen_id(text, today=today)
    except InvalidCitizenId as error:
        raise citizen_id_problem(error, pointer) from None


@router.post(
    "/registrations",
    status_code=201,
    summary="Register a residence (居住登记)",
    responses={422: {"description": "A field is invalid; `errors` points at it"}},
)
@requires("registry:write")
def create_registration(
    request: Request, body: RegistrationBody, session: DbSession, hub: CurrentHub
) -> JSONResponse:
    today = hub.clock.today()
    principal = principal_of(request)
    declarant = body.declarant
    data = service.RegistrationInput(
        citizen_id=_citizen_id(body.citizen_id, today, "/citizen_id"),
        name=body.name,
        ethnicity=body.ethnicity,
        household_address=body.household_address,
        household_region=body.household_region,
        current_address=body.current_address,
        current_region=body.current_region,
        reason=body.reason,
        workplace=body.workplace,
        contact=body.contact,
        arrived_on=body.arrived_on,
        temporary_permit_since=body.temporary_permit_since,
        declarant=service.Declarant(
            declarant.relation,
            _citizen_id(declarant.citizen_id, today, "/declarant/citizen_id"),
            declarant.because,
        )
        if declarant
        else None,
    )
    try:
        registration = service.register(
            session,
            hub.audit,
            hub.vault,
            hub.jurisdictions,
            hub.calendar,
            data,
            actor=service.Actor(principal.client_id, principal.department.value),
            now=hub.clock.now(),
            today=today,
        )
    except service.RegistrationRefused as refused:
        extensions = {"cite": refused.cite} if refused.cite else {}
        raise Problem(
            REGISTRATION_REFUSED,
            Text(refused.zh, refused.en),
            errors=[FieldError(Text(refused.zh, refused.en), pointer=refused.pointer)],
            extensions=extensions,
        ) from None
    view = service.registration_view(registration, hub.vault)
    return JSONResponse(
        view, status_code=201, headers={"Location": f"{request.url}/{registration.id}"}
    )


@router.get("/registrations/{registration_id}", summary="A residence registration")
@requires("registry:read")
def get_registration(registration_id: str, session: DbSession, hub: CurrentHub) -> dict[str, Any]:
    registration = session.get(Registration, registration_id)
    if registration is None:
        raise Problem(
            REGISTRATION_NOT_FOUND,
            Text(f"没有编号为 {registration_id} 的居住登记", f"No registration {registration_id}"),
        )
    return service.registration_view(registration, hub.vault)


class LifecycleAction(StrEnum):
    """The actions an acceptance office takes on an existing permit through this route."""

    ISSUE = "issue"
    ENDORSE = "endorse"
    REPLACE = "replace"
    RENEW = "renew"
    CANCEL = "cancel"
    SETTLE = "settle"


class ActionBody(BaseModel):
    reason: str | None = Field(
        default=None,
        max_length=32,
        description="Cancellation reason code [CF §23], e.g. false-materials",
        examples=["conditions-no-longer-met"],
    )


def _not_found(permit_id: str) -> Problem:
    return Problem(
        PERMIT_NOT_FOUND,
        Text(f"没有编号为 {permit_id} 的居住证", f"There is no permit {permit_id}"),
    )


def _refused(refusal: domain.Refusal) -> Problem:
    return Problem(
        REFUSED[refusal.code],
        Text(refusal.zh, refusal.en),
        extensions={"reason": refusal.code, "cite": refusal.cite},
    )


def _expected_version(request: Request) -> int:
    """Two windows must not overwrite each other: a change names the version it read."""
    header = request.headers.get("if-match")
    if header is None:
        raise Problem(
            PRECONDITION_REQUIRED,
            Text(
                "请携带读取时返回的 ETag 作为 If-Match",
                "Send the ETag you read as If-Match",
            ),
        )
    tag = header.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise Problem(
            STALE_WRITE,
            Text(f"If-Match 无法识别：{header}", f"Unrecognised If-Match: {header}"),
        )
    return int(tag)


def _with_etag(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers={"ETag": f'"{body["version"]}"'})


@router.get("/permits/{permit_id}", summary="A permit, with its ETag")
@requires("registry:read")
def get_permit(permit_id: str, session: DbSession) -> JSONResponse:
    permit = session.get(Permit, permit_id)
    if permit is None:
        raise _not_found(permit_id)
    return _with_etag(service.view(permit))


@router.post(
    "/permits/{permit_id}/{action}",
    summary="Issue, endorse, replace, renew, cancel or settle a permit",
    description=(
        "Needs `If-Match` with the ETag last read. Illegal moves are 409 problems whose type "
        "names the rule (e.g. `/problems/endorsement-window-not-open`) and cite the seed."
    ),
    responses={
        409: {"description": "The state machine refuses the move"},
        412: {"description": "The permit changed since it was read"},
        428: {"description": "If-Match missing"},
    },
)
@requires("registry:write")
def act_on_permit(
    request: Request,
    session: DbSession,
    hub: CurrentHub,
    permit_id: str,
    action: Annotated[LifecycleAction, Path(description="What to do")],
    body: Annotated[ActionBody | None, Body()] = None,
) -> JSONResponse:
    principal = principal_of(request)
    try:
        permit, _ = service.perform(
            session,
            hub.audit,
            permit_id,
            domain.Action(action.value),
            expected_version=_expected_version(request),
            actor=service.Actor(principal.client_id, principal.department.value),
            now=hub.clock.now(),
            today=hub.clock.today(),
            rules_for=hub.lifecycle_rules,
            details={"reason": body.reason} if body and body.reason else None,
        )
    except service.PermitNotFound:
        raise _not_found(permit_id) from None
    except service.StaleWrite as stale:
        raise Problem(
            STALE_WRITE,
            Text(
                f"居住证已是第 {stale.current_version} 版，请重新读取后再办理",
                f"The permit is now at version {stale.current_version}: read it again",
            ),
            extensions={"current_version": stale.current_version},
        ) from None
    except domain.MoveRefused as refused:
        raise _refused(refused.refusal) from None
    return _with_etag(service.view(permit))


@router.get("/permits/{permit_id}/events", summary="The permit's history, oldest first")
@requires("registry:read")
def permit_events(permit_id: str, session: DbSession) -> list[dict[str, Any]]:
    try:
        events = service.events_of(session, permit_id)
    except service.PermitNotFound:
        raise _not_found(permit_id) from None
    return [
        {
            "seq": event.seq,
            "type": event.type,
            "state_after": event.state_after,
            "at": event.at.isoformat(),
            "actor": event.actor_client_id,
            "payload": event.payload,
        }
        for event in events
    ]
