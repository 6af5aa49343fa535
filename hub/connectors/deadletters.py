"""The dead-letter list: deliveries that failed `max_attempts` times or could not be built,
for staff (scope exchange:admin) to inspect and replay once the cause is fixed.

A replay makes the delivery pending again with a fresh count, and it goes out with its
original webhook-id; the holder's later deliveries to that department, held back meanwhile to
keep their order, follow it.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from sqlmodel import col

from hub.audit import Actor
from hub.auth.guard import GuardedRoute, principal_of, requires
from hub.connectors.store import DEAD, PENDING, Delivery
from hub.db import rfc3339
from hub.deps import CurrentHub, DbSession
from hub.permits.store import PermitEvent
from hub.problems import Problem, Text, problem_type

router = APIRouter(prefix="/exchange/v1", tags=["Exchange"], route_class=GuardedRoute)

DEAD_LETTER_NOT_FOUND = problem_type(
    "dead-letter-not-found", 404, "死信不存在", "No such dead letter"
)


@router.get("/dead-letters", summary="Deliveries that gave up, oldest first")
@requires("exchange:admin")
def list_dead_letters(
    session: DbSession,
    department: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    query = (
        sa.select(Delivery, col(PermitEvent.type))
        .join(PermitEvent, col(PermitEvent.seq) == col(Delivery.event_seq))
        .where(col(Delivery.status) == DEAD)
        .order_by(col(Delivery.event_seq))
        .limit(limit)
    )
    if department is not None:
        query = query.where(col(Delivery.department) == department)
    return [
        {
            "event_seq": delivery.event_seq,
            "event_type": event_type,
            "department": delivery.department,
            "permit_id": delivery.permit_id,
            "attempts": delivery.attempts,
            "last_error": delivery.last_error,
            "created_at": rfc3339(delivery.created_at),
            "last_attempt_due": rfc3339(delivery.next_attempt_at),
        }
        for delivery, event_type in session.execute(query).all()
    ]


@router.post(
    "/dead-letters/{event_seq}/{department}/replay",
    summary="Send a dead letter again (same webhook-id)",
    responses={404: {"description": "No dead delivery of this event to this department"}},
)
@requires("exchange:admin")
def replay_dead_letter(
    request: Request,
    event_seq: Annotated[int, Path(ge=1)],
    department: Annotated[str, Path(max_length=64)],
    session: DbSession,
    hub: CurrentHub,
) -> dict[str, Any]:
    replayed = _replay(session, hub, request, [(event_seq, department)])
    if not replayed:
        raise Problem(
            DEAD_LETTER_NOT_FOUND,
            Text(
                f"事件 {event_seq} 发往 {department} 的投递不在死信中",
                f"No dead delivery of event {event_seq} to {department}",
            ),
        )
    return {"replayed": replayed}


@router.post("/dead-letters/replay", summary="Send every dead letter (of a department) again")
@requires("exchange:admin")
def replay_all(
    request: Request,
    session: DbSession,
    hub: CurrentHub,
    department: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    query = sa.select(col(Delivery.event_seq), col(Delivery.department)).where(
        col(Delivery.status) == DEAD
    )
    if department is not None:
        query = query.where(col(Delivery.department) == department)
    keys = [(row.event_seq, row.department) for row in session.execute(query).all()]
    return {"replayed": _replay(session, hub, request, keys) if keys else 0}


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
    principal = principal_of(request)
    actor = Actor(principal.client_id, principal.department.value)
    hub.audit.record(session, actor.did("delivery.replay", str(count), None, "dead-letters"), now)
    return count
