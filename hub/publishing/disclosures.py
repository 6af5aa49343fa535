"""What a disclosure in the audit log let out: the fields, never the values.

A granted tap, a look-up that found the holder and a page of the feed each sent a holder
record projected by the department's agreement in force at that moment. Agreement versions
are immutable and stamped with when they were made, so the fields are read back from the
version of the agreement the department's exchange link names that was the latest at the
entry's time and in force on its day (`terms.in_force`, as the publisher decided then).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlmodel import Session

from hub.audit import AuditEntry
from hub.auth.domain import Department
from hub.clock import china_date
from hub.connectors.config import DepartmentLink
from hub.db import aware
from hub.publishing.terms import in_force
from hub.schemas import agreements
from hub.schemas.store import Agreement

DISCLOSING: Final[Mapping[str, Callable[[str], bool]]] = {
    "verification.tap": lambda outcome: outcome == "grant",
    "exchange.lookup": lambda outcome: outcome == "found",
    "exchange.feed": lambda outcome: outcome.isdigit() and int(outcome) > 0,
}
"""The audited actions that send a holder record, and the outcomes with which they did."""

_DEPARTMENTS: Final = {department.value for department in Department}


@dataclass(frozen=True)
class Disclosure:
    agreement: str
    version: int
    fields: tuple[str, ...]
    purpose: str  # the agreement's, which the department received the record for


class AgreementsThen:
    """The version of a department's agreement a record sent at a moment was projected by:
    each agreement's history read once, however many moments are asked about."""

    def __init__(self, session: Session, links: Mapping[Department, DepartmentLink]) -> None:
        self._session, self._links = session, links
        self._histories: dict[str, list[Agreement]] = {}

    def at(self, department: str | None, moment: datetime) -> Disclosure | None:
        """The agreement version the publisher used then; None when the department is not
        one the hub exchanges with, or no agreement was in force."""
        if department not in _DEPARTMENTS:
            return None
        owner = Department(department)
        link = self._links.get(owner)
        if link is None:
            return None
        history = self._history(link.agreement)
        at = aware(moment)
        then = [row for row in history if aware(row.changed_at) <= at]
        if then and isinstance(in_force(then[-1], link, owner, china_date(at)), Agreement):
            row = then[-1]
            return Disclosure(row.id, row.version, tuple(row.allowed_fields), row.purpose)
        return None

    def _history(self, agreement: str) -> list[Agreement]:
        if agreement not in self._histories:
            try:
                self._histories[agreement] = agreements.history(self._session, agreement)
            except agreements.AgreementNotFound:
                self._histories[agreement] = []
        return self._histories[agreement]


def disclosed_record(entry: AuditEntry) -> bool:
    """Whether the audited action sent a holder record (DISCLOSING)."""
    sent = DISCLOSING.get(entry.action)
    return sent is not None and sent(entry.outcome)


def disclosures(
    session: Session, links: Mapping[Department, DepartmentLink], entries: Sequence[AuditEntry]
) -> dict[int, Disclosure]:
    """For each entry (by seq) that disclosed a holder record: the agreement version and its
    fields. Entries that disclosed nothing are absent."""
    then = AgreementsThen(session, links)
    found: dict[int, Disclosure] = {}
    for entry in entries:
        if disclosed_record(entry):
            disclosure = then.at(entry.actor_department, entry.at)
            if disclosure is not None:
                found[entry.seq] = disclosure
    return found
