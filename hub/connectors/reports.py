"""Reports by employers, property managers, agencies and landlords coming in through the
exchange [CF §6-9]: a `reporter` client files documents of `report.hire` or `report.tenancy`,
validated against the schema registry like a department's proofs, for the one organisation
and jurisdiction it was registered with; the registry keeps them (hub.permits.reports).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlmodel import Session

from hub.audit import Actor
from hub.auth.domain import ReporterRole
from hub.auth.store import OAuthClient
from hub.connectors.exchange import DocumentInvalid, Exchange, document_version, unreadable
from hub.connectors.problems import REPORT_INVALID, REPORT_NOT_OWNED
from hub.permits import reports
from hub.permits.identity import InvalidCitizenId, citizen_id_problem, parse_citizen_id
from hub.permits.jurisdictions import Jurisdiction
from hub.permits.store import ThirdPartyReport
from hub.problems import DomainProblem, Problem, Text
from hub.schemas import service
from hub.schemas.validation import Issue

REPORT: Final = "/report"
REPORT_SUBJECTS: Final[Mapping[str, tuple[str, frozenset[ReporterRole]]]] = {
    "report.hire": (
        "hire",
        frozenset({ReporterRole.EMPLOYER, ReporterRole.AGENCY}),  # [CF §6, §8]
    ),
    "report.tenancy": (
        "tenancy",
        frozenset(
            {ReporterRole.PROPERTY_MANAGER, ReporterRole.LANDLORD, ReporterRole.AGENCY}
        ),  # [CF §7-9]
    ),
}
"""Each report subject: the kind of report it is, and who owes it."""

_REPORT_READS: Final = {
    "report_id": "text",
    "region": "text",
    "address": "text",
    "occurred_on": "date",
    "person/citizen_id": "text",
    "person/name": "text",
}
_OUTSIDE: Final = Issue(
    "/region",
    "region",
    "is outside the jurisdiction you report to",
    "不在您报告的受理机构辖区内",
)


class ReportNotYours(DomainProblem):
    """The caller is no reporter, or its organisation does not owe this kind of report."""

    def __init__(self, why: Text) -> None:
        super().__init__(why.en)
        self.why = why
        self.at("/subject")

    def problem(self) -> Problem:
        return Problem(REPORT_NOT_OWNED, self.why, errors=self.field_errors(self.why))


@dataclass(frozen=True)
class Desks:
    """The exchange's (schemas, clock, vault, audit) and the registry's (calendar) bundles."""

    exchange: Exchange
    registry: reports.Desk


def _reporter(session: Session, actor: Actor, subject: str) -> tuple[reports.Reporter, str]:
    """The caller's organisation, and the jurisdiction it reports to."""
    client = session.get(OAuthClient, actor.client_id)
    if client is None or not client.organisation_code or not client.reporter_role:
        raise ReportNotYours(
            Text("本客户端不代表任何报告单位", "Your client reports for no organisation")
        )
    role = ReporterRole(client.reporter_role)
    if role not in REPORT_SUBJECTS[subject][1]:
        raise ReportNotYours(
            Text(f"{role.value} 不报送 {subject}", f"A {role.value} does not file {subject}")
        )
    reporter = reports.Reporter(
        client.client_id, client.organisation_code, client.organisation_name or "", role.value
    )
    return reporter, client.jurisdictions.split()[0]


def submit_report(
    session: Session,
    desks: Desks,
    places: Mapping[str, Jurisdiction],
    actor: Actor,
    subject: str,
    version: int | None,
    document: Any,
) -> tuple[ThirdPartyReport, bool]:
    """File a report for the caller's organisation; True if new. Refusals, each about one
    member: ReportNotYours (first: a stranger learns nothing of the schemas), a version not in
    use or retired, DocumentInvalid, an address outside the reporter's jurisdiction, a refused
    citizen ID, reports.ReportConflict."""
    reporter, served = _reporter(session, actor, subject)
    place = places[served]
    try:
        chosen = document_version(session, subject, version)
        row, issues = service.validate(
            session, desks.exchange.schemas, subject, chosen.version, document
        )
    except (service.SchemaNotInUse, service.VersionRetired) as refused:
        raise refused.at("/schema_version") from None
    issues = issues or unreadable(document, _REPORT_READS)
    if not issues and not any(document["region"].startswith(p) for p in place.divisions):
        issues = [_OUTSIDE]
    if issues:
        raise DocumentInvalid(issues, row, REPORT, REPORT_INVALID, Text("报告", "the report"))
    person = document["person"]
    try:
        citizen_id = parse_citizen_id(person["citizen_id"], today=desks.exchange.clock.today())
    except InvalidCitizenId as error:
        raise citizen_id_problem(error, f"{REPORT}/person/citizen_id") from None
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    data = reports.ReportInput(
        kind=REPORT_SUBJECTS[subject][0],
        report_id=str(document["report_id"]),
        content_hash=hashlib.sha256(f"{subject}\n{canonical}".encode()).hexdigest(),
        citizen_id=citizen_id,
        name=str(person["name"]),
        address=str(document["address"]),
        region=str(document["region"]),
        occurred_on=date.fromisoformat(document["occurred_on"]),
    )
    return reports.file_report(
        session,
        desks.registry,
        place,
        reporter,
        data,
        actor=actor,
        now=desks.exchange.clock.now(),
    )
