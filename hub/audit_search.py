"""Searching the audit log, for auditors: by holder (the keyed hash of their citizen ID, never
the number), actor, department, action and period, newest first, a page at a time; and the
chain's verification, run on request and itself audited, so the last run is on record.

Every search is a read of personal data about the holders it finds, so it is audited with
its criteria (the holder only as its hash) and the person who searched.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Protocol

from sqlmodel import Session, col, select

from hub.audit import Actor, AuditEntry, AuditLog
from hub.clock import china_day_start

SEARCH: Final = "audit.search"
VERIFY: Final = "audit.verify"
PURPOSE: Final = "audit"
CSV_COLUMNS: Final = (
    "seq",
    "at",
    "actor",
    "department",
    "action",
    "subject",
    "purpose",
    "outcome",
    "agreement",
    "disclosed_fields",
)


@dataclass(frozen=True)
class AuditQuery:
    """What to look for; None or "" leaves a criterion out. Dates are China's calendar days."""

    subject: str | None = None
    actor: str | None = None
    department: str | None = None
    action: str | None = None  # a prefix: "staff." finds every staff action
    since: date | None = None
    until: date | None = None

    def described(self) -> str:
        """The criteria but the holder (whose hash is the search entry's subject), for the
        search's own audit entry."""
        parts = [f"{name}={v}" for name, v in vars(self).items() if v and name != "subject"]
        return " ".join(parts) or "any"


def search(
    session: Session, query: AuditQuery, *, before: int | None, limit: int
) -> tuple[list[AuditEntry], int | None]:
    """One page, newest first, and the cursor of the next (None: this is the last page)."""
    statement = select(AuditEntry).order_by(col(AuditEntry.seq).desc()).limit(limit + 1)
    if before is not None:
        statement = statement.where(col(AuditEntry.seq) < before)
    if query.subject:
        statement = statement.where(col(AuditEntry.subject) == query.subject)
    if query.actor:
        statement = statement.where(col(AuditEntry.actor_client_id) == query.actor)
    if query.department:
        statement = statement.where(col(AuditEntry.actor_department) == query.department)
    if query.action:
        statement = statement.where(col(AuditEntry.action).startswith(query.action))
    if query.since:
        statement = statement.where(col(AuditEntry.at) >= china_day_start(query.since))
    if query.until:
        statement = statement.where(
            col(AuditEntry.at) < china_day_start(query.until + timedelta(days=1))
        )
    rows = list(session.exec(statement).all())
    more = len(rows) > limit
    page = rows[:limit]
    return page, (page[-1].seq if more and page else None)


def record_search(
    session: Session, audit: AuditLog, actor: Actor, query: AuditQuery, found: int, now: datetime
) -> None:
    """The search on record: who, the holder's hash as subject, the other criteria as the
    purpose's detail, and how many entries were shown."""
    purpose = f"{PURPOSE}: {query.described()}"[:256]
    audit.record(session, actor.did(SEARCH, f"found {found}", query.subject, purpose), now)


def verify_chain(session: Session, audit: AuditLog, actor: Actor, now: datetime) -> str:
    """Verify the whole chain; the outcome ("intact: N rows" or where it broke) is audited."""
    report = audit.verify(session)
    outcome = f"intact: {report.rows_checked} rows" if report.intact else f"broken: {report}"
    audit.record(session, actor.did(VERIFY, outcome[:64], None, PURPOSE), now)
    return outcome


def last_verification(session: Session) -> AuditEntry | None:
    statement = (
        select(AuditEntry)
        .where(AuditEntry.action == VERIFY)
        .order_by(col(AuditEntry.seq).desc())
        .limit(1)
    )
    return session.exec(statement).first()


class Disclosed(Protocol):
    """What an entry let out (hub.publishing.disclosures): the agreement version, its fields."""

    @property
    def agreement(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def fields(self) -> tuple[str, ...]: ...


def as_csv(entries: Sequence[AuditEntry], disclosed: Mapping[int, Disclosed]) -> str:
    """The entries as CSV; for a disclosure, the agreement version and the fields it let out
    (pointers, space-separated)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        what = disclosed.get(entry.seq)
        writer.writerow(
            [
                entry.seq,
                entry.at.isoformat(),
                entry.actor_client_id,
                entry.actor_department or "",
                entry.action,
                entry.subject or "",
                entry.purpose or "",
                entry.outcome,
                f"{what.agreement}:{what.version}" if what else "",
                " ".join(what.fields) if what else "",
            ]
        )
    return out.getvalue()
