"""A holder's access report: every disclosure of their record over a period, which the
acceptance office hands to the person who asks (the right Singapore's Myinfo gives, and
[CF §28, §30] imply: personal information is used only for its purpose, and every use is
accounted for).

Read back from what the hub keeps of each disclosure:
- a granted tap, a look-up that found the holder, a registry read or search by an acceptance
  office, an auditor's search: audit entries whose subject is the holder's keyed hash;
- a page of the changes feed: an audit entry naming the range of events it examined; the page
  held the holder's record when one of their events in that range is of a type the
  department subscribes to (as the feed chose them);
- a push: the relay's delivery of one of the holder's events (the relay records each delivery
  in its own table, not in the audit log).
Which fields left is read from the version of the department's agreement in force at that
moment (hub.publishing.disclosures); a registry read let the whole registry record out.
The report itself is a disclosure, audited with the office's purpose.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditEntry, AuditLog
from hub.auth.domain import Department
from hub.clock import china_day_start
from hub.connectors.config import DepartmentLink
from hub.connectors.store import Delivery
from hub.db import aware
from hub.permits.store import Permit, PermitEvent
from hub.problems import VALIDATION_FAILED, DomainProblem, Problem, Text
from hub.publishing.disclosures import AgreementsThen, disclosed_record

REPORT_ACTION: Final = "access-report"
MAX_DAYS: Final = 3 * 366
"""The longest period one report covers (an office asks again for an earlier one)."""

FEED_ACTION: Final = "exchange.feed"
_FEED_SUBJECT: Final = "permit_event:"


@dataclass(frozen=True)
class Disclosed:
    """One disclosure of the holder's record. `fields` are those the agreement let out, or
    None for the acceptance office's whole registry record."""

    at: datetime
    channel: str  # push, feed, look-up, tap, registry, audit, access-report
    department: str | None
    client: str
    purpose: str | None
    agreement: str | None
    agreement_version: int | None
    fields: tuple[str, ...] | None


@dataclass(frozen=True)
class AccessReport:
    since: date
    until: date
    disclosures: tuple[Disclosed, ...]  # oldest first


def _channel(entry: AuditEntry) -> str | None:
    """How an audit entry about the holder disclosed their record, or None if it did not."""
    if disclosed_record(entry):
        return {"verification.tap": "tap", "exchange.lookup": "look-up"}.get(entry.action)
    if entry.outcome != "disclosed":
        return "audit" if entry.action == "audit.search" and entry.outcome != "found 0" else None
    return "access-report" if entry.action == REPORT_ACTION else "registry"


class PeriodRefused(DomainProblem):
    """A period that runs backwards or spans more than MAX_DAYS."""

    def problem(self) -> Problem:
        wording = Text(
            f"期间须从早到晚，且不超过 {MAX_DAYS} 天",
            f"The period runs forward and spans at most {MAX_DAYS} days",
        )
        return Problem(VALIDATION_FAILED, wording, errors=self.field_errors(wording))


def check_period(since: date, until: date) -> None:
    """`since` on or before `until`, at most MAX_DAYS apart; else PeriodRefused at /until."""
    if since > until or (until - since).days >= MAX_DAYS:
        raise PeriodRefused().at("/until")


def holder_report(
    session: Session,
    audit: AuditLog,
    links: Mapping[Department, DepartmentLink],
    holder: str,
    since: date,
    until: date,
    *,
    purpose: str,
    actor: Actor,
    now: datetime,
) -> AccessReport:
    """The report an office hands over, its making audited with the office's purpose (after
    it is compiled, so it does not list itself)."""
    report = compile_report(session, links, holder, since, until)
    record_report(session, audit, holder, purpose, actor=actor, now=now)
    return report


def compile_report(
    session: Session,
    links: Mapping[Department, DepartmentLink],
    holder: str,
    since: date,
    until: date,
) -> AccessReport:
    """Every disclosure of the holder (their keyed ID hash) from the China-time day `since`
    to `until`, both included, oldest first."""
    start, end = china_day_start(since), china_day_start(until + timedelta(days=1))
    then = AgreementsThen(session, links)
    found = [
        *_audited(session, then, holder, start, end),
        *_feed_pages(session, then, links, holder, start, end),
        *_pushes(session, then, holder, start, end),
    ]
    order = lambda d: (d.at, d.channel, d.department or "")  # noqa: E731 (ties: one order)
    return AccessReport(since, until, tuple(sorted(found, key=order)))


def _audited(
    session: Session, then: AgreementsThen, holder: str, start: datetime, end: datetime
) -> Iterator[Disclosed]:
    query = select(AuditEntry).where(
        col(AuditEntry.subject) == holder, col(AuditEntry.at) >= start, col(AuditEntry.at) < end
    )
    for entry in session.exec(query.order_by(col(AuditEntry.seq))):
        channel = _channel(entry)
        if channel is None:
            continue
        terms = then.at(entry.actor_department, entry.at) if channel in ("tap", "look-up") else None
        yield Disclosed(
            at=aware(entry.at),
            channel=channel,
            department=entry.actor_department,
            client=entry.actor_client_id,
            purpose=entry.purpose,
            agreement=terms.agreement if terms else None,
            agreement_version=terms.version if terms else None,
            fields=terms.fields if terms else None,
        )


def _events_of(session: Session, holder: str) -> list[tuple[int, str]]:
    query = (
        sa.select(col(PermitEvent.seq), col(PermitEvent.type))
        .join(Permit, col(Permit.id) == col(PermitEvent.permit_id))
        .where(col(Permit.citizen_id_hash) == holder)
    )
    return [(seq, kind) for seq, kind in session.execute(query)]


def _range(subject: str | None) -> tuple[int, int] | None:
    if not subject or not subject.startswith(_FEED_SUBJECT):
        return None
    first, _, last = subject.removeprefix(_FEED_SUBJECT).partition("..")
    if not (first.isdigit() and last.isdigit()):
        return None
    return int(first), int(last)


def _feed_pages(
    session: Session,
    then: AgreementsThen,
    links: Mapping[Department, DepartmentLink],
    holder: str,
    start: datetime,
    end: datetime,
) -> Iterator[Disclosed]:
    events = _events_of(session, holder)
    if not events:
        return
    query = select(AuditEntry).where(
        col(AuditEntry.action) == FEED_ACTION,
        col(AuditEntry.at) >= start,
        col(AuditEntry.at) < end,
        col(AuditEntry.subject).startswith(_FEED_SUBJECT),
    )
    for entry in session.exec(query.order_by(col(AuditEntry.seq))):
        span, link = _range(entry.subject), _link(links, entry.actor_department)
        if span is None or link is None or not disclosed_record(entry):
            continue
        if any(span[0] <= seq <= span[1] and link.subscribes_to(kind) for seq, kind in events):
            terms = then.at(entry.actor_department, entry.at)
            yield Disclosed(
                at=aware(entry.at),
                channel="feed",
                department=entry.actor_department,
                client=entry.actor_client_id,
                purpose=entry.purpose,
                agreement=terms.agreement if terms else None,
                agreement_version=terms.version if terms else None,
                fields=terms.fields if terms else None,
            )


def _link(
    links: Mapping[Department, DepartmentLink], department: str | None
) -> DepartmentLink | None:
    try:
        return links.get(Department(department or ""))
    except ValueError:
        return None


def _pushes(
    session: Session, then: AgreementsThen, holder: str, start: datetime, end: datetime
) -> Iterator[Disclosed]:
    query = (
        sa.select(col(Delivery.department), col(Delivery.delivered_at))
        .join(Permit, col(Permit.id) == col(Delivery.permit_id))
        .where(
            col(Permit.citizen_id_hash) == holder,
            col(Delivery.delivered_at) >= start,
            col(Delivery.delivered_at) < end,
        )
    )
    for department, delivered_at in session.execute(query):
        terms = then.at(department, delivered_at)
        yield Disclosed(
            at=aware(delivered_at),
            channel="push",
            department=department,
            client="hub-relay",
            purpose=terms.purpose if terms else None,
            agreement=terms.agreement if terms else None,
            agreement_version=terms.version if terms else None,
            fields=terms.fields if terms else None,
        )


def record_report(
    session: Session, audit: AuditLog, holder: str, purpose: str, *, actor: Actor, now: datetime
) -> None:
    """The report discloses the holder's history to the office: audited like any read."""
    audit.record(session, actor.did(REPORT_ACTION, "disclosed", holder, purpose), now)
