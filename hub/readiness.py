"""Readiness (`/readyz`): may a load balancer send this process requests? Each check says
what it found, and the answer names the ones that failed; `/healthz` stays the process's
liveness alone.

- database: reachable, and at the migration this code carries (a process started against an
  older schema would fail on its first write);
- master key: this process's master secret is the database's (hub.keycheck's check value,
  read, never written here);
- relay: the oldest pending delivery has waited less than `ready_relay_lag_seconds` (only
  where this process runs the relay);
- scheduler: running (only where this process runs it).

Nothing secret is said: no URL, no key, no holder.
"""

from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from hub.connectors.store import PENDING, Delivery
from hub.db import aware
from hub.keycheck import MasterKeyCheck
from hub.migrate import head_revision
from hub.settings import Settings

CHECKS: Final = ("database", "master-key", "relay", "scheduler")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@functools.cache
def _head() -> str | None:
    return head_revision()


def _database(session: Session) -> Check:
    found = session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    head = _head()
    if found != head:
        return Check("database", False, f"schema at {found}, this code needs {head}")
    return Check("database", True, f"reachable, schema at {head}")


def _master_key(session: Session, mine: str) -> Check:
    stored = session.get(MasterKeyCheck, 1)
    if stored is None:
        return Check("master-key", False, "the database has no check value yet")
    if not hmac.compare_digest(stored.check_value, mine):
        return Check("master-key", False, "this process's master secret is not the database's")
    return Check("master-key", True, "the database's")


def _relay(session: Session, settings: Settings, now: datetime) -> Check:
    if not settings.relay_enabled:
        return Check("relay", True, "not run by this process")
    oldest = session.exec(
        select(sa.func.min(col(Delivery.created_at))).where(col(Delivery.status) == PENDING)
    ).first()
    if oldest is None:
        return Check("relay", True, "nothing pending")
    waited = int((now - aware(oldest)).total_seconds())
    limit = settings.ready_relay_lag_seconds
    return Check(
        "relay",
        waited <= limit,
        f"oldest pending delivery waited {waited} s (limit {limit} s)",
    )


def _scheduler(settings: Settings, running: bool | None) -> Check:
    if not settings.scheduler_enabled:
        return Check("scheduler", True, "not run by this process")
    return Check("scheduler", bool(running), "running" if running else "not running")


@dataclass(frozen=True)
class Probe:
    """What the checks read: the database, this process's master-key check value, the
    settings that say what this process runs."""

    engine: Engine
    check_value: str
    settings: Settings


def check(probe: Probe, now: datetime, scheduler_running: bool | None) -> list[Check]:
    """Every check, in CHECKS order; a database that cannot be reached fails the three that
    read it."""
    try:
        with Session(probe.engine) as session:
            found = [
                _database(session),
                _master_key(session, probe.check_value),
                _relay(session, probe.settings, now),
            ]
    except SQLAlchemyError as error:
        reason = f"unreachable ({type(error).__name__})"
        found = [Check(name, False, reason) for name in ("database", "master-key", "relay")]
    return [*found, _scheduler(probe.settings, scheduler_running)]
