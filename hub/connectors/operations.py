"""Delivery administration, for the exchange API and the console alike: each push
department's circuit and backlog, the dead letters, and their replay.

Who sees what: a department's staff see and replay only their own department's deliveries;
public security runs the hub, and its operators see every department (`scope_of`).

A replay makes the delivery pending again with a fresh schedule, and it goes out with its
original webhook-id, at once (an open circuit probes now rather than wait); the holder's
later deliveries to that department, held back meanwhile to keep their order
(`waiting_behind`), follow it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVarTuple

import sqlalchemy as sa
from sqlalchemy import Select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from hub.audit import Actor, AuditLog
from hub.auth.domain import Department, Principal
from hub.connectors import circuit
from hub.connectors.store import DEAD, PENDING, Delivery
from hub.connectors.views import DeadLetter, DepartmentDeliveries
from hub.db import aware, rfc3339
from hub.permits.store import PermitEvent

Columns = TypeVarTuple("Columns")


def scope_of(caller: Principal) -> str | None:
    """The one department whose deliveries the caller may see; None: every department (public
    security runs the hub)."""
    own = caller.department
    return None if own is Department.PUBLIC_SECURITY else own.value


def _of(query: Select[*Columns], *departments: str | None) -> Select[*Columns]:
    """`query` narrowed to each department given (the caller's scope, the one asked for)."""
    for department in departments:
        if department is not None:
            query = query.where(col(Delivery.department) == department)
    return query


def _rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


def push_departments(links: Mapping[Department, Any], scope: str | None) -> list[str]:
    """The departments the hub pushes to, within `scope` (all for None)."""
    return [
        dept.value for dept, link in links.items() if link.pushes and scope in (None, dept.value)
    ]


def department_health(
    session: Session, links: Mapping[Department, Any], scope: str | None, now: datetime
) -> list[DepartmentDeliveries]:
    """The push departments in `scope` (all for None): circuit, backlog, dead letters."""
    departments = push_departments(links, scope)
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


def deliveries_per_minute(
    session: Session, departments: Iterable[str], now: datetime, minutes: int = 60
) -> dict[str, list[int]]:
    """Deliveries made to each department in each of the last `minutes` whole minutes,
    oldest first (the minute now running is the last)."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    counts = {department: [0] * minutes for department in departments}
    query = sa.select(col(Delivery.department), col(Delivery.delivered_at)).where(
        col(Delivery.delivered_at) >= start,
        col(Delivery.department).in_(list(counts)),
    )
    for department, delivered_at in session.execute(query):
        minute = int((aware(delivered_at) - start).total_seconds() // 60)
        if 0 <= minute < minutes:
            counts[department][minute] += 1
    return counts


def dead_letters(
    session: Session,
    scope: str | None,
    department: str | None,
    limit: int,
    after: tuple[int, str] | None = None,
) -> list[DeadLetter]:
    """Deliveries that gave up, oldest first (by event, then department), after the (event
    seq, department) given, each with how many wait behind it."""
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
    if after is not None:
        key = sa.tuple_(col(Delivery.event_seq), col(Delivery.department))
        query = query.where(key > sa.tuple_(*after))
    query = _of(query, scope, department)
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


def dead_letter_keys(
    session: Session, scope: str | None, department: str | None
) -> list[tuple[int, str]]:
    query = sa.select(col(Delivery.event_seq), col(Delivery.department)).where(
        col(Delivery.status) == DEAD
    )
    query = _of(query, scope, department)
    return [(row.event_seq, row.department) for row in session.execute(query).all()]


def replay(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    now: datetime,
    keys: Iterable[tuple[int, str]],
    scope: str | None,
) -> int:
    """Make these dead letters pending again (those in `scope`); how many were. Audited."""
    wanted = [(seq, department) for seq, department in keys if scope in (None, department)]
    if not wanted:
        return 0
    result = session.execute(
        sa.update(Delivery)
        .where(
            sa.tuple_(col(Delivery.event_seq), col(Delivery.department)).in_(wanted),
            col(Delivery.status) == DEAD,
        )
        .values(status=PENDING, attempts=0, next_attempt_at=now, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    circuit.probe_now(session, {department for _, department in wanted}, now)
    audit.record(session, actor.did("delivery.replay", str(count), None, "dead-letters"), now)
    return count
