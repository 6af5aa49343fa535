"""What a holder record asked for on demand needs from governance, remembered per process.

A look-up or a tap builds one record against the department's agreement in force and the
holder-record version in use. Reading both for every request cost two queries and the
parsing of a schema definition, about a fifth of a tap's work at the hub, for facts that
change a few times a year. So each process remembers them, as it remembers clients and
keys (hub.auth.state): a change this process commits is seen by its next request (a session
hook notes every commit that wrote an agreement or a schema version), one that another
process commits within FRESH_FOR seconds. What is in force *today* is still decided per
request, from the remembered row.

The relay and the changes feed read both afresh per batch: there the two queries are shared
by many records.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from hub.auth.domain import Department
from hub.connectors import exchange
from hub.connectors.config import DepartmentLink
from hub.schemas.store import Agreement, SchemaVersion

if TYPE_CHECKING:
    from hub.composition import Hub

FRESH_FOR: Final = 1.0
"""Seconds a remembered row is used before it is read again (another process's change)."""

_WROTE_GOVERNANCE: Final = "hub.wrote-governance"
_commits = itertools.count(1)
_last_commit = 0
"""Bumped after every commit in this process that wrote an agreement or a schema version."""


@event.listens_for(OrmSession, "after_flush")
def _note_governance(session: OrmSession, _context: Any) -> None:
    # Still the flush's own new and dirty objects here (SQLAlchemy's after_flush).
    written = itertools.chain(session.new, session.dirty, session.deleted)
    if any(isinstance(row, Agreement | SchemaVersion) for row in written):
        session.info[_WROTE_GOVERNANCE] = True


@event.listens_for(OrmSession, "after_commit")
def _governance_committed(session: OrmSession) -> None:
    global _last_commit
    if session.info.pop(_WROTE_GOVERNANCE, False):
        _last_commit = next(_commits)


@event.listens_for(OrmSession, "after_rollback")
def _governance_rolled_back(session: OrmSession) -> None:
    session.info.pop(_WROTE_GOVERNANCE, None)


Value = TypeVar("Value")


@dataclass(frozen=True)
class _Kept(Generic[Value]):
    value: Value
    commit: int  # _last_commit when it was read: a later local commit makes it stale
    read_at: float  # time.monotonic()


class _Memo(Generic[Value]):
    def __init__(self, fresh_for: float) -> None:
        self._fresh_for = fresh_for
        self._kept: dict[str, _Kept[Value]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, read: Callable[[], Value]) -> Value:
        kept, now = self._kept.get(key), time.monotonic()
        if (
            kept is not None
            and kept.commit == _last_commit
            and now - kept.read_at < self._fresh_for
        ):
            return kept.value
        commit = _last_commit  # before reading: a commit during the read makes it stale
        value = read()
        with self._lock:
            self._kept[key] = _Kept(value, commit, now)
        return value


class ExchangeTerms:
    """The memo of one hub process."""

    def __init__(self, fresh_for: float = FRESH_FOR) -> None:
        self._agreements: _Memo[Agreement | None] = _Memo(fresh_for)
        self._publishing: _Memo[exchange.Publishing] = _Memo(fresh_for)

    def agreement_in_force(
        self, session: Session, link: DepartmentLink | None, department: Department, today: date
    ) -> Agreement | exchange.Refusal:
        """As exchange.agreement_in_force."""

        def read(agreement_id: str) -> Agreement | None:
            return _detached(session, exchange.latest_agreement(session, agreement_id))

        row = None
        if link is not None:
            row = self._agreements.get(link.agreement, lambda: read(link.agreement))
        return exchange.in_force(row, link, department, today)

    def publishing(self, session: Session, hub: Hub) -> exchange.Publishing:
        """As exchange.publishing; RecordUnavailable, never remembered, while none is in use."""

        def read() -> exchange.Publishing:
            found = exchange.publishing(session, hub)
            _detached(session, found.schema)
            return found

        return self._publishing.get(exchange.HOLDER_RECORD, read)


Row = TypeVar("Row", Agreement, SchemaVersion)


def _detached(session: Session, row: Row | None) -> Row | None:
    """`row` out of the session that read it, so that no later expiry there (a commit of a
    session that expires on commit) empties the copy other requests go on using."""
    if row is not None and row in session:
        session.expunge(row)
    return row
