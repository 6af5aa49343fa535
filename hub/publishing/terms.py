"""What an outgoing holder record is built under: the department's agreement in force and the
holder-record version in use, read afresh or remembered per process.

`read_agreement_in_force` and `read_version_in_use` query the database; the relay and the
changes feed call them once per batch, where the two queries are shared by many records.

A look-up or a tap builds one record. Reading both for every request cost two queries and the
parsing of a schema definition, about a fifth of a tap's work at the hub, for facts that
change a few times a year. So each process remembers them (`Terms.remembered_*`), as it
remembers clients and keys (hub.auth.state): a change this process commits is seen by its next
request (a session hook notes every commit that wrote an agreement or a schema version), one
that another process commits within FRESH_FOR seconds. What is in force *today* is still
decided per request, from the remembered row.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Generic, Literal, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from hub.auth.domain import Department
from hub.connectors.config import DepartmentLink
from hub.publishing.records import HOLDER_RECORD, RecordUnavailable
from hub.schemas import agreements
from hub.schemas.service import Registry, exchangeable_version
from hub.schemas.store import Agreement, SchemaVersion
from hub.schemas.validation import CompiledSchema, schema_uri
from hub.text import Text

RefusalCode = Literal["no-agreement", "pull-not-enabled"]


@dataclass(frozen=True)
class Refusal:
    """Why an exchange was refused, worded about the department, never about a holder."""

    code: RefusalCode
    zh: str
    en: str


@dataclass(frozen=True)
class VersionInUse:
    """The holder-record version every outgoing record of a request or a batch is validated
    against, with its URI and compiled validator, looked up once."""

    schema: SchemaVersion
    uri: str
    validator: CompiledSchema


# --- read afresh -------------------------------------------------------------------------------


def read_agreement_in_force(
    session: Session, link: DepartmentLink | None, department: Department, today: date
) -> Agreement | Refusal:
    """The department's agreement, if it has a link, the agreement exists, is its own and is
    in force today."""
    row = None if link is None else latest_agreement(session, link.agreement)
    return in_force(row, link, department, today)


def latest_agreement(session: Session, agreement_id: str) -> Agreement | None:
    try:
        return agreements.latest(session, agreement_id)
    except agreements.AgreementNotFound:
        return None


def in_force(
    row: Agreement | None, link: DepartmentLink | None, department: Department, today: date
) -> Agreement | Refusal:
    """`row`, the latest version of the agreement `link` names, if it is the department's own
    and in force today; else why not."""
    if link is None:
        return Refusal(
            "no-agreement",
            f"{department.value} 未接入数据交换",
            f"{department.value} has no exchange link with the hub",
        )
    if row is None or row.department != department.value:
        return Refusal(
            "no-agreement",
            f"{department.value} 没有数据共享协议",
            f"{department.value} has no data-sharing agreement",
        )
    if not agreements.terms_of(row).in_force(today):
        return Refusal(
            "no-agreement",
            f"数据共享协议 {row.id} 今日不在有效期内（{row.status}）",
            f"The data-sharing agreement {row.id} is not in force today ({row.status})",
        )
    return row


def read_version_in_use(session: Session, schemas: Registry) -> VersionInUse:
    """The holder-record version in use; RecordUnavailable while there is none."""
    schema = exchangeable_version(session, HOLDER_RECORD)
    if schema is None:
        raise RecordUnavailable(
            Text("持证人记录没有在用的模式版本", "no holder-record version is ACTIVE or DEPRECATED")
        )
    schemas.remember(session, schema)
    validator = schemas.validators.get(schema.subject, schema.version)
    return VersionInUse(schema, schema_uri(schema.subject, schema.version), validator)


# --- remembered per process --------------------------------------------------------------------

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


class Terms:
    """The memo of one hub process."""

    def __init__(self, fresh_for: float = FRESH_FOR) -> None:
        self._agreements: _Memo[Agreement | None] = _Memo(fresh_for)
        self._versions: _Memo[VersionInUse] = _Memo(fresh_for)

    def remembered_agreement_in_force(
        self, session: Session, link: DepartmentLink | None, department: Department, today: date
    ) -> Agreement | Refusal:
        """As `read_agreement_in_force`, from the remembered agreement row."""

        def read(agreement_id: str) -> Agreement | None:
            return _detached(session, latest_agreement(session, agreement_id))

        row = None
        if link is not None:
            row = self._agreements.get(link.agreement, lambda: read(link.agreement))
        return in_force(row, link, department, today)

    def remembered_version_in_use(self, session: Session, schemas: Registry) -> VersionInUse:
        """As `read_version_in_use`; RecordUnavailable, never remembered, while none is in
        use."""

        def read() -> VersionInUse:
            found = read_version_in_use(session, schemas)
            _detached(session, found.schema)
            return found

        return self._versions.get(HOLDER_RECORD, read)


Row = TypeVar("Row", Agreement, SchemaVersion)


def _detached(session: Session, row: Row | None) -> Row | None:
    """`row` out of the session that read it, so that no later expiry there (a commit of a
    session that expires on commit) empties the copy other requests go on using."""
    if row is not None and row in session:
        session.expunge(row)
    return row
