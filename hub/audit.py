"""Append-only, hash-chained audit log.

Each row carries an HMAC over its content and the previous row's MAC, so altering, deleting or
inserting a row breaks the chain at that row; because the MAC is keyed (a key derived from the
master secret), someone with write access to the database alone cannot re-forge the chain
after tampering. A one-row `audit_head` holds the last sequence number and MAC: it is the lock
that serialises appenders (a row lock on PostgreSQL, BEGIN IMMEDIATE on SQLite) and it reveals
rows cut off the tail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, select

GENESIS = "0" * 64


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    actor_client_id: str = Field(max_length=128)
    actor_department: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=64)
    subject: str | None = Field(default=None, max_length=128)
    purpose: str | None = Field(default=None, max_length=256)
    outcome: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    row_hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    row_hash: str = Field(default=GENESIS, max_length=64)


@dataclass(frozen=True)
class AuditEvent:
    """What happened. `subject` is a keyed hash (SubjectHasher) of a citizen ID or an opaque,
    non-personal identifier such as a client id; never a clear citizen ID."""

    actor_client_id: str
    action: str
    outcome: str
    actor_department: str | None = None
    subject: str | None = None
    purpose: str | None = None


def _utc(moment: datetime) -> datetime:
    """Both databases keep microseconds; SQLite drops the zone, so compare in naive UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _mac(key: bytes, entry: AuditEntry) -> str:
    content = [
        entry.seq,
        _utc(entry.at).isoformat(timespec="microseconds"),
        entry.actor_client_id,
        entry.actor_department,
        entry.action,
        entry.subject,
        entry.purpose,
        entry.outcome,
        entry.prev_hash,
    ]
    message = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditLog:
    """Writes and checks the chain with the audit key (Keyring.derive("audit-chain"))."""

    key: bytes

    def record(self, session: Session, event: AuditEvent, at: datetime) -> AuditEntry:
        """Append within the caller's transaction, so the entry commits with what it records."""
        session.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
        head = session.exec(select(AuditHead).where(AuditHead.id == 1)).one()
        entry = AuditEntry(
            seq=head.seq,
            at=_utc(at),
            actor_client_id=event.actor_client_id,
            actor_department=event.actor_department,
            action=event.action,
            subject=event.subject,
            purpose=event.purpose,
            outcome=event.outcome,
            prev_hash=head.row_hash,
            row_hash="",
        )
        entry.row_hash = _mac(self.key, entry)
        head.row_hash = entry.row_hash
        session.add(entry)
        session.add(head)
        session.flush()
        return entry

    def verify(self, session: Session) -> VerifyReport:
        rows = session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()  # type: ignore[arg-type]
        head = session.exec(select(AuditHead).where(AuditHead.id == 1)).one()
        return check_chain(self.key, rows, head)


class FindingKind(StrEnum):
    ALTERED = "altered"
    DELETED = "deleted"
    INSERTED = "inserted"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    seq: int
    explanation: str


@dataclass(frozen=True)
class VerifyReport:
    rows_checked: int
    finding: Finding | None

    @property
    def intact(self) -> bool:
        return self.finding is None


def check_chain(key: bytes, entries: Iterable[AuditEntry], head: AuditHead) -> VerifyReport:
    """Walk the chain and name the first row where it breaks.

    A row whose own MAC fails is *altered* when its neighbours still link through it, and
    *inserted* when the chain links around it; a genuine row that does not link to its
    predecessor (or skips sequence numbers) marks rows *deleted* before it.
    """
    rows = list(entries)
    previous_hash, expected_seq = GENESIS, 1
    for index, row in enumerate(rows):
        following = rows[index + 1].prev_hash if index + 1 < len(rows) else head.row_hash
        if not hmac.compare_digest(_mac(key, row), row.row_hash):
            if following == row.row_hash:
                return VerifyReport(index, Finding(FindingKind.ALTERED, row.seq, "content changed"))
            return VerifyReport(
                index, Finding(FindingKind.INSERTED, row.seq, "row not written by the hub")
            )
        if row.seq != expected_seq or row.prev_hash != previous_hash:
            missing = f"rows {expected_seq}..{row.seq - 1}" if row.seq > expected_seq else "a row"
            return VerifyReport(
                index, Finding(FindingKind.DELETED, row.seq, f"{missing} missing before it")
            )
        previous_hash, expected_seq = row.row_hash, row.seq + 1
    if head.seq > expected_seq - 1:
        return VerifyReport(
            len(rows),
            Finding(FindingKind.DELETED, expected_seq, f"rows {expected_seq}..{head.seq} missing"),
        )
    if head.seq != expected_seq - 1 or head.row_hash != previous_hash:
        return VerifyReport(
            len(rows), Finding(FindingKind.ALTERED, head.seq, "the chain head does not match")
        )
    return VerifyReport(len(rows), None)
