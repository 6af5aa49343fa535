"""Delivery administration for staff (scope exchange:admin): each push department's circuit
and backlog, and the dead-letter list, to inspect and replay once the cause is fixed.

A department's staff see and replay only their own department's deliveries; another
department's dead letter is a 404, as if it did not exist. Public security runs the hub, and
its operators see every department.

A replay makes the delivery pending again with a fresh schedule, and it goes out with its
original webhook-id, at once (an open circuit probes now rather than wait); the holder's
later deliveries to that department, held back meanwhile to keep their order
(`waiting_behind` in the list), follow it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeVarTuple

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import Select
from sqlalchemy.orm import aliased
from sqlmodel import col

from hub.auth.domain import Department
from hub.auth.guard import GuardedRoute, actor_of, principal_of, requires
from hub.connectors import circuit
from hub.connectors.problems import DEAD_LETTER_NOT_FOUND
from hub.connectors.store import DEAD, PENDING, Delivery
from hub.connectors.views import DeadLetter, DepartmentDeliveries, Replayed
from hub.db import INT_MAX, rfc3339
from hub.deps import CurrentHub, DbSession
from hub.permits.store import PermitEvent
from hub.problems import Problem, Text

router = APIRouter(prefix="/exchange/v1", tags=["Exchange"], route_class=GuardedRoute)

Columns = TypeVarTuple("Columns")
DepartmentFilter = Annotated[
    Department | None,
    Query(description="Only this department (yours, unless you run the hub)"),
]


def _scope(request: Request) -> str | None:
    """The one department whose deliveries the caller may see; None: every department (public
    security runs the hub)."""
    own = principal_of(request).department
    return None if own is Department.PUBLIC_SECURITY else own.value


def _of(query: Select[*Columns], *departments: str | None) -> Select[*Columns]:
    """`query` narrowed to each department given (the caller's scope, the one asked for)."""
    for department in departments:
        if department is not None:
            query = query.where(col(Delivery.department) == department)
    return query


def _rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


@router.get("/departments", summary="Each push department's circuit and backlog")
@requires("exchange:admin")
def list_departments(
    request: Request, session: DbSession, hub: CurrentHub
) -> list[DepartmentDeliveries]:
    """The push departments the caller may see (its own; every one for public security)."""
    scope = _scope(request)
    departments = [
        dept.value
        for dept, link in hub.departments.items()
        if link.pushes and scope in (None, dept.value)
    ]
    now = hub.clock.now()
    return [
        DepartmentDeliveries(
            department=state.department,
            state=state.state,
            failed_rounds=state.failures,
            open_since=_rfc3339(state.opened_at),
            next_probe_at=_rfc3339(state.next_probe_at),
            last_success_at=_rfc3339(state.last_success_at),
            last_failure_at=_rfc3339(state.last_failure_at),
            last_error=state.last_error,
            backlog=state.backlog,
            oldest_pending_age_seconds=(
                None
                if state.oldest_pending_at is None
                else max(0, int((now - state.oldest_pending_at).total_seconds()))
            ),
            dead_letters=state.dead_letters,
        )
        for state in circuit.department_states(session, departments)
    ]


@router.get("/dead-letters", summary="Deliveries that gave up, oldest first")
@requires("exchange:admin")
def list_dead_letters(
    request: Request,
    session: DbSession,
    department: DepartmentFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetter]:
    """Those the caller may see (its department's; every one for public security)."""
    later = aliased(Delivery)
    waiting_behind = (
        sa.select(sa.func.count())
        .select_from(later)
        .where(
            col(later.department) == col(Delivery.department),
            col(later.permit_id) == col(Delivery.permit_id),
            col(later.event_seq) > col(Delivery.event_seq),
            col(later.status) == PENDING,
        )
        .scalar_subquery()
    )
    query = (
        sa.select(Delivery, col(PermitEvent.type), waiting_behind)
        .join(PermitEvent, col(PermitEvent.seq) == col(Delivery.event_seq))
        .where(col(Delivery.status) == DEAD)
        .order_by(col(Delivery.event_seq), col(Delivery.department))
        .limit(limit)
    )
    query = _of(query, _scope(request), department and department.value)
    return [
        DeadLetter(
            event_seq=delivery.event_seq,
            event_type=event_type,
            department=delivery.department,
            permit_id=delivery.permit_id,
            attempts=delivery.attempts,
            last_error=delivery.last_error,
            created_at=rfc3339(delivery.created_at),
            last_attempt_at=_rfc3339(delivery.last_attempt_at),
            waiting_behind=behind,
        )
        for delivery, event_type, behind in session.execute(query).all()
    ]


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
    visible = _scope(request) in (None, department.value)
    replayed = _replay(session, hub, request, [(event_seq, department.value)]) if visible else 0
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
    query = sa.select(col(Delivery.event_seq), col(Delivery.department)).where(
        col(Delivery.status) == DEAD
    )
    query = _of(query, _scope(request), department and department.value)
    keys = [(row.event_seq, row.department) for row in session.execute(query).all()]
    return Replayed(replayed=_replay(session, hub, request, keys) if keys else 0)


def _replay(
    session: DbSession, hub: CurrentHub, request: Request, keys: list[tuple[int, str]]
) -> int:
    now = hub.clock.now()
    result = session.execute(
        sa.update(Delivery)
        .where(
            sa.tuple_(col(Delivery.event_seq), col(Delivery.department)).in_(keys),
            col(Delivery.status) == DEAD,
        )
        .values(status=PENDING, attempts=0, next_attempt_at=now, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    circuit.probe_now(session, {department for _, department in keys}, now)
    actor = actor_of(request)
    hub.audit.record(session, actor.did("delivery.replay", str(count), None, "dead-letters"), now)
    return count
