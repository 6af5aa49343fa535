"""Routes of the permit registry under /registry/v1, for acceptance-office systems."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hub.auth.guard import GuardedRoute, principal_of, requires
from hub.deps import CurrentHub, DbSession
from hub.permits import domain, service
from hub.permits.store import Permit
from hub.problems import Problem, Text, problem_type

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
