"""The circuit breaker of each push department, shared by every relay process through the
database (`department_circuit`).

A round in which every send to a department failed opens its circuit. While it is open no
batch goes to the department: one probe at a time does, at the pace of the department's retry
schedule counted in failed rounds (5 s, 1 min, 5 min, ... then hourly, the last wait
repeating for as long as it stays down). The probe is the department's oldest delivery that is
due and may go (nothing earlier of its holder undelivered), so a record the department refuses
for itself cannot keep a healthy department closed: when it is not due, the next probe is
another record. Any delivered send closes the circuit, and the backlog drains in batches in
per-holder order. Deliveries held back behind an open circuit are not sent, so they spend
nothing of their own schedule: an outage dead-letters only a delivery that was itself tried
through its whole schedule.

Across processes, a probe is claimed under the circuit row's lock (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite runs one writer at a time), and while it is in flight `next_probe_at` is
the end of its lease: no relay probes again before it is answered, or before its lease runs
out if the relay that sent it was killed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from hub.connectors.config import RetrySchedule
from hub.connectors.store import CLOSED, DEAD, OPEN, PENDING, Delivery, DepartmentCircuit
from hub.db import aware

log = logging.getLogger(__name__)

CIRCUIT: sa.Table = DepartmentCircuit.__table__  # type: ignore[attr-defined]


def _insert(session: Session) -> Any:
    """INSERT with ON CONFLICT, which both databases spell the same way in SQLAlchemy."""
    dialect = session.get_bind().dialect.name
    return postgresql.insert(CIRCUIT) if dialect == "postgresql" else sqlite.insert(CIRCUIT)


def open_circuits(session: Session, departments: Iterable[str]) -> dict[str, datetime]:
    """The departments among these whose circuit is open, with their next probe's time."""
    rows = session.execute(
        sa.select(col(DepartmentCircuit.department), col(DepartmentCircuit.next_probe_at)).where(
            col(DepartmentCircuit.department).in_(list(departments)),
            col(DepartmentCircuit.state) == OPEN,
        )
    ).all()
    return {row.department: aware(row.next_probe_at) for row in rows}


def claim_probes(session: Session, departments: Sequence[str], now: datetime) -> list[str]:
    """The open departments among these that are due a probe, their circuit rows locked for
    this transaction; another relay's transaction skips them meanwhile."""
    if not departments:
        return []
    rows = session.execute(
        sa.select(col(DepartmentCircuit.department))
        .where(
            col(DepartmentCircuit.department).in_(departments),
            col(DepartmentCircuit.state) == OPEN,
            col(DepartmentCircuit.next_probe_at) <= now,
        )
        .order_by(col(DepartmentCircuit.department))
        .with_for_update(skip_locked=True)
    ).all()
    return [row.department for row in rows]


def probing(session: Session, department: str, until: datetime) -> None:
    """A probe of `department` is in flight until `until` (its lease)."""
    session.execute(
        sa.update(DepartmentCircuit)
        .where(col(DepartmentCircuit.department) == department)
        .values(next_probe_at=until)
    )


def probe_now(session: Session, departments: Iterable[str], now: datetime) -> None:
    """Staff replayed dead letters to these departments, their cause fixed: an open circuit
    probes at once instead of waiting out its current wait."""
    session.execute(
        sa.update(DepartmentCircuit)
        .where(
            col(DepartmentCircuit.department).in_(list(departments)),
            col(DepartmentCircuit.state) == OPEN,
        )
        .values(next_probe_at=now)
    )


def answered(session: Session, department: str, now: datetime) -> None:
    """A send to `department` was delivered: its circuit is closed."""
    closed = {"state": CLOSED, "failures": 0, "last_success_at": now}
    statement = _insert(session).values(department=department, **closed)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["department"],
            set_={**closed, "opened_at": None, "next_probe_at": None},
        )
    )


def failed(
    session: Session, department: str, error: str, now: datetime, schedule: RetrySchedule
) -> None:
    """Every send to `department` in a round failed: its circuit opens, or stays open with
    its next probe one more wait of the schedule away."""
    opened = {"state": OPEN, "last_failure_at": now, "last_error": error[:512]}
    statement = _insert(session).values(department=department, failures=1, opened_at=now, **opened)
    failures = session.execute(
        statement.on_conflict_do_update(
            index_elements=["department"],
            set_={
                **opened,
                "failures": CIRCUIT.c.failures + 1,
                "opened_at": sa.func.coalesce(CIRCUIT.c.opened_at, now),
            },
        ).returning(CIRCUIT.c.failures)
    ).scalar_one()
    next_probe = now + schedule.probe_wait(failures)
    session.execute(
        sa.update(DepartmentCircuit)
        .where(col(DepartmentCircuit.department) == department)
        .values(next_probe_at=next_probe)
    )
    if failures == 1:
        log.warning("circuit to %s open (%s); next probe at %s", department, error, next_probe)


@dataclass(frozen=True)
class DepartmentState:
    """What staff see of one push department's deliveries (GET /exchange/v1/departments)."""

    department: str
    state: str
    failures: int
    opened_at: datetime | None
    next_probe_at: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    backlog: int
    oldest_pending_at: datetime | None
    dead_letters: int


def department_states(session: Session, departments: Sequence[str]) -> list[DepartmentState]:
    """Each department's circuit and the size and age of its backlog, in the given order."""
    circuits = {
        row.department: row
        for row in session.execute(
            sa.select(DepartmentCircuit).where(col(DepartmentCircuit.department).in_(departments))
        ).scalars()
    }
    counts: dict[tuple[str, str], tuple[int, datetime | None]] = {
        (department, status): (total, oldest)
        for department, status, total, oldest in session.execute(
            sa.select(
                col(Delivery.department),
                col(Delivery.status),
                sa.func.count(),
                sa.func.min(col(Delivery.created_at)),
            )
            .where(
                col(Delivery.department).in_(departments),
                col(Delivery.status).in_([PENDING, DEAD]),
            )
            .group_by(col(Delivery.department), col(Delivery.status))
        )
    }
    states = []
    for department in departments:
        circuit = circuits.get(department) or DepartmentCircuit(department=department, state=CLOSED)
        backlog, oldest = counts.get((department, PENDING), (0, None))
        states.append(
            DepartmentState(
                department=department,
                state=circuit.state,
                failures=circuit.failures,
                opened_at=_aware(circuit.opened_at),
                next_probe_at=_aware(circuit.next_probe_at),
                last_success_at=_aware(circuit.last_success_at),
                last_failure_at=_aware(circuit.last_failure_at),
                last_error=circuit.last_error,
                backlog=backlog,
                oldest_pending_at=_aware(oldest),
                dead_letters=counts.get((department, DEAD), (0, None))[0],
            )
        )
    return states


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else aware(moment)
