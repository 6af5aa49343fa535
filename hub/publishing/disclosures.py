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


def disclosures(
    session: Session, links: Mapping[Department, DepartmentLink], entries: Sequence[AuditEntry]
) -> dict[int, Disclosure]:
    """For each entry (by seq) that disclosed a holder record: the agreement version and its
    fields. Entries that disclosed nothing are absent."""
    histories: dict[str, list[Agreement]] = {}
    found: dict[int, Disclosure] = {}
    for entry in entries:
        sent = DISCLOSING.get(entry.action)
        if sent is None or not sent(entry.outcome) or entry.actor_department not in _DEPARTMENTS:
            continue
        department = Department(entry.actor_department)
        link = links.get(department)
        if link is None:
            continue
        if link.agreement not in histories:
            try:
                histories[link.agreement] = agreements.history(session, link.agreement)
            except agreements.AgreementNotFound:
                histories[link.agreement] = []
        at = aware(entry.at)
        then = [row for row in histories[link.agreement] if aware(row.changed_at) <= at]
        if then and isinstance(in_force(then[-1], link, department, china_date(at)), Agreement):
            row = then[-1]
            found[entry.seq] = Disclosure(row.id, row.version, tuple(row.allowed_fields))
    return found
