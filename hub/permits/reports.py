"""Reports by employers, property managers, agencies and landlords [CF §6-9], on the registry's
side: each report is kept; one about a registered person becomes a proof on file (once-only:
the office need not ask the person again), one about a person with no registration puts them
on the office's worklist until they register. Lateness is counted on the official calendar.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditLog
from hub.clock import WorkingCalendar, china_date
from hub.permits import applications
from hub.permits.identity import CitizenId, CitizenIdVault
from hub.permits.jurisdictions import Jurisdiction
from hub.permits.problems import REPORT_CONFLICT
from hub.permits.service import audit_disclosure
from hub.permits.store import Registration, ThirdPartyReport
from hub.problems import DomainProblem, Problem, Text

REPORT_PURPOSE: Final = "third-party-report"
PROOF_KINDS: Final = {"hire": "hire-report", "tenancy": "tenancy-report"}
"""The proof on file a matched report becomes (eligibility.PROOF_KINDS knows both)."""
OPEN, ON_FILE = "open", "on-file"  # and "registered", set by registration (service)


@dataclass(frozen=True)
class Reporter:
    client_id: str
    organisation_code: str
    organisation_name: str
    role: str


@dataclass(frozen=True)
class ReportInput:
    kind: str  # hire, tenancy
    report_id: str
    content_hash: str
    citizen_id: CitizenId
    name: str
    address: str
    region: str
    occurred_on: date


class ReportConflict(DomainProblem):
    """The reporter used this report id before for another report (not repeated: an id may
    be anything the reporter chose)."""

    def problem(self) -> Problem:
        return Problem(
            REPORT_CONFLICT,
            Text(
                "该报告编号已用于内容不同的另一份报告", "This report id was used for another report"
            ),
            errors=self.field_errors(Text("报告编号重复", "report id reused")),
        )


@dataclass(frozen=True)
class Desk:
    """What filing a report needs: the audit log, the vault and the working-day calendar."""

    audit: AuditLog
    vault: CitizenIdVault
    calendar: WorkingCalendar


def file_report(
    session: Session,
    desk: Desk,
    place: Jurisdiction,
    reporter: Reporter,
    data: ReportInput,
    *,
    actor: Actor,
    now: datetime,
) -> tuple[ThirdPartyReport, bool]:
    """Keep the report (True if new; the same again is the one kept, another under the same
    id a ReportConflict); match it to the person's registration in the place or put them on
    the worklist. Audited with the person's keyed hash."""
    kept = session.exec(
        select(ThirdPartyReport).where(
            col(ThirdPartyReport.organisation_code) == reporter.organisation_code,
            col(ThirdPartyReport.report_id) == data.report_id,
        )
    ).first()
    holder = desk.vault.lookup_hash(data.citizen_id)
    if kept is not None:
        if kept.content_hash != data.content_hash:
            raise ReportConflict().at("/report/report_id")
        desk.audit.record(
            session, actor.did("exchange.report", "repeat", holder, REPORT_PURPOSE), now
        )
        return kept, False
    report_duty = next(
        (d for d in place.registration.third_party_reports if d.who == reporter.role), None
    )
    received = china_date(now)
    due = (
        report_duty.within.due_after(data.occurred_on, desk.calendar).due
        if report_duty and report_duty.within
        else None
    )
    declare = place.registration.declare_within
    row = ThirdPartyReport(
        id=str(uuid.uuid4()),
        kind=data.kind,
        organisation_code=reporter.organisation_code,
        organisation_name=reporter.organisation_name,
        reporter_role=reporter.role,
        reporter_client_id=reporter.client_id,
        report_id=data.report_id,
        content_hash=data.content_hash,
        jurisdiction=place.code,
        citizen_id_hash=holder,
        citizen_id_sealed=desk.vault.seal(data.citizen_id),
        name=data.name,
        address=data.address,
        region=data.region,
        occurred_on=data.occurred_on,
        report_due_on=due,
        reported_late=due is not None and received > due,
        declare_by=declare.within.due_after(data.occurred_on, desk.calendar).due
        if declare
        else None,
        status=OPEN,
        received_at=now,
    )
    if _registered(session, holder, place.code):
        proof, _ = applications.record_proof(
            session,
            desk.audit,
            applications.ProofInput(
                citizen_id_hash=holder,
                kind=PROOF_KINDS[data.kind],
                source_department="public-security",
                source_proof_id=f"{reporter.organisation_code}/{data.report_id}",
                valid_from=data.occurred_on,
                valid_to=None,
                details={
                    "organisation": reporter.organisation_name,
                    "organisation_code": reporter.organisation_code,
                    "address": data.address,
                    "region": data.region,
                },
            ),
            actor=actor,
            now=now,
        )
        row.status, row.proof_id, row.resolved_at = ON_FILE, proof.id, now
    session.add(row)
    outcome = "on-file" if row.status == ON_FILE else "worklist"
    desk.audit.record(session, actor.did("exchange.report", outcome, holder, REPORT_PURPOSE), now)
    return row, True


def _registered(session: Session, holder: str, jurisdiction: str) -> bool:
    query = select(Registration.id).where(
        col(Registration.citizen_id_hash) == holder, col(Registration.jurisdiction) == jurisdiction
    )
    return session.exec(query.limit(1)).first() is not None


def worklist(
    session: Session,
    audit: AuditLog,
    served: frozenset[str],
    *,
    after: tuple[date, str] | None,
    limit: int,
    actor: Actor,
    now: datetime,
) -> tuple[list[ThirdPartyReport], bool]:
    """A page of the open reports in the jurisdictions served, the earliest declaration due
    first (so the overdue lead); whether more follow. Each person listed is an audited read."""
    due = sa.func.coalesce(col(ThirdPartyReport.declare_by), date.max)
    query = select(ThirdPartyReport).where(
        col(ThirdPartyReport.status) == OPEN,
        col(ThirdPartyReport.jurisdiction).in_(sorted(served)),
    )
    if after is not None:
        query = query.where(sa.tuple_(due, col(ThirdPartyReport.id)) > sa.tuple_(*after))
    rows = list(session.exec(query.order_by(due, col(ThirdPartyReport.id)).limit(limit + 1)))
    page = rows[:limit]
    holders = list(dict.fromkeys(row.citizen_id_hash for row in page))
    audit_disclosure(session, audit, "worklist", holders, actor=actor, now=now)
    return page, len(rows) > limit
