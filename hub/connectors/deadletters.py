"""Delivery administration for staff (scope exchange:admin): each push department's circuit
and backlog, and the dead-letter list, to inspect and replay once the cause is fixed
(hub.connectors.operations). Another department's dead letter is a 404, as if it did not
exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from hub import paging
from hub.auth.domain import Department
from hub.auth.guard import GuardedRoute, actor_of, principal_of, requires
from hub.connectors import operations
from hub.connectors.problems import DEAD_LETTER_NOT_FOUND
from hub.connectors.views import DeadLetter, DepartmentDeliveries, Replayed
from hub.db import INT_MAX
from hub.deps import CurrentHub, DbSession
from hub.problems import Problem, Text

router = APIRouter(prefix="/exchange/v1", tags=["Exchange"], route_class=GuardedRoute)

DepartmentFilter = Annotated[
    Department | None,
    Query(description="Only this department (yours, unless you run the hub)"),
]


def _scope(request: Request) -> str | None:
    return operations.scope_of(principal_of(request))


@router.get("/departments", summary="Each push department's circuit and backlog")
@requires("exchange:admin")
def list_departments(
    request: Request, session: DbSession, hub: CurrentHub
) -> list[DepartmentDeliveries]:
    """The push departments the caller may see (its own; every one for public security)."""
    return operations.department_health(session, hub.departments, _scope(request), hub.clock.now())


@router.get(
    "/dead-letters",
    summary="Deliveries that gave up, oldest first, a page at a time",
    description=paging.DESCRIPTION,
    responses={200: {"headers": paging.LINK_HEADER}},
)
@requires("exchange:admin")
def list_dead_letters(
    request: Request,
    response: Response,
    session: DbSession,
    department: DepartmentFilter = None,
    after: paging.After = None,
    limit: paging.Limit = paging.PAGE_DEFAULT,
) -> list[DeadLetter]:
    """Those the caller may see (its department's; every one for public security)."""
    key = None
    if after is not None:
        seq, owner = paging.parts(after, 2)
        key = (paging.int_part(seq), owner)
    found = operations.dead_letters(
        session, _scope(request), department and department.value, limit + 1, key
    )
    if len(found) > limit:
        last = found[limit - 1]
        response.headers.update(
            paging.next_link(request, paging.cursor(last.event_seq, last.department), limit)
        )
    return found[:limit]


@router.post(
    "/dead-letters/{event_seq}/{department}/replay",
    summary="Send a dead letter again (same webhook-id)",
    responses={404: {"description": "No dead delivery of this event to this department"}},
)
@requires("exchange:admin")
def replay_dead_letter(
    request: Request,
    event_seq: Annotated[int, Path(ge=1, le=INT_MAX)],
    department: Department,
    session: DbSession,
    hub: CurrentHub,
) -> Replayed:
    keys = [(event_seq, department.value)]
    replayed = operations.replay(
        session, hub.audit, actor_of(request), hub.clock.now(), keys, _scope(request)
    )
    if not replayed:
        raise Problem(
            DEAD_LETTER_NOT_FOUND,
            Text(
                f"事件 {event_seq} 发往 {department.value} 的投递不在死信中",
                f"No dead delivery of event {event_seq} to {department.value}",
            ),
        )
    return Replayed(replayed=replayed)


@router.post("/dead-letters/replay", summary="Send every dead letter (of a department) again")
@requires("exchange:admin")
def replay_all(
    request: Request,
    session: DbSession,
    hub: CurrentHub,
    department: DepartmentFilter = None,
) -> Replayed:
    scope = _scope(request)
    keys = operations.dead_letter_keys(session, scope, department and department.value)
    now = hub.clock.now()
    return Replayed(
        replayed=operations.replay(session, hub.audit, actor_of(request), now, keys, scope)
    )
