"""Finding a case: the registrations (and their permits) an acceptance office may work on.

An office finds people only in the jurisdictions it serves (`hub clients add --jurisdiction`,
`hub staff add --jurisdiction`), by what a person brings to the counter: the citizen ID (looked
up by its keyed hash, never in clear), a receipt number, the serial of any card ever made for
the permit (a lost one too), or a name with a birth date. Every search is audited with the
purpose the clerk gives: one entry per holder it disclosed, or one saying it found nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditLog
from hub.auth.store import jurisdictions_of
from hub.card.store import Card
from hub.permits.problems import NO_JURISDICTION
from hub.permits.store import Permit, Registration
from hub.problems import DomainProblem, Problem, Text

SEARCH_ACTION: Final = "registration.search"
PAGE_DEFAULT: Final = 20
PAGE_MAX: Final = 100


@dataclass(frozen=True)
class Criteria:
    """One way of finding a person; the API checks exactly one is given (a name needs its
    birth date: names repeat)."""

    citizen_id_hash: str | None = None
    receipt_number: str | None = None
    card_serial: str | None = None
    name: str | None = None
    birth_date: date | None = None

    @property
    def kind(self) -> str:
        """What was searched by, as the audit names it (never the value searched for)."""
        if self.citizen_id_hash:
            return "citizen-id"
        if self.receipt_number:
            return "receipt-number"
        if self.card_serial:
            return "card-serial"
        return "name-and-birth-date"


@dataclass(frozen=True)
class Hit:
    registration: Registration
    permits: tuple[Permit, ...]  # newest first


@dataclass(frozen=True)
class Found:
    hits: tuple[Hit, ...]
    after: str | None  # the cursor of the next page, if there is one


class NoJurisdiction(DomainProblem, PermissionError):
    """The caller serves no jurisdiction, so it may find nobody."""

    def problem(self) -> Problem:
        return Problem(
            NO_JURISDICTION,
            Text(
                "您的账户未分配任何辖区，无法查找居住证；请联系管理员分配辖区",
                "Your account serves no jurisdiction, so it can find no permit;"
                " ask an administrator to assign one",
            ),
        )


def served_by(session: Session, caller: str) -> frozenset[str]:
    """The jurisdictions the caller serves as an acceptance office; NoJurisdiction if none."""
    served = jurisdictions_of(session, caller)
    if not served:
        raise NoJurisdiction()
    return served


def _matching(criteria: Criteria) -> sa.ColumnElement[bool]:
    permits = select(Permit.registration_id)
    if criteria.citizen_id_hash:
        return col(Registration.citizen_id_hash) == criteria.citizen_id_hash
    if criteria.receipt_number:
        chosen = permits.where(col(Permit.receipt_number) == criteria.receipt_number)
    elif criteria.card_serial:
        chosen = permits.join(Card, col(Card.permit_id) == col(Permit.id)).where(
            col(Card.serial) == criteria.card_serial
        )
    else:
        return sa.and_(
            col(Registration.name) == criteria.name,
            col(Registration.birth_date) == criteria.birth_date,
        )
    return col(Registration.id).in_(chosen.scalar_subquery())


def find(
    session: Session,
    audit: AuditLog,
    criteria: Criteria,
    *,
    purpose: str,
    after: str | None,
    limit: int,
    actor: Actor,
    now: datetime,
) -> Found:
    """A page of registrations matching `criteria` in the caller's jurisdictions, ordered by
    id (a stable keyset: `after` is the last id of the page before), each with its permits;
    the search audited with `purpose`. NoJurisdiction for a caller who serves none."""
    served = served_by(session, actor.client_id)
    query = select(Registration).where(
        col(Registration.jurisdiction).in_(sorted(served)), _matching(criteria)
    )
    if after is not None:
        query = query.where(col(Registration.id) > after)
    rows = list(session.exec(query.order_by(col(Registration.id)).limit(limit + 1)).all())
    page, more = rows[:limit], len(rows) > limit
    hits = tuple(Hit(row, _permits_of(session, row.id)) for row in page)
    _audit(session, audit, criteria, hits, purpose=purpose, actor=actor, now=now)
    return Found(hits, page[-1].id if more else None)


def _permits_of(session: Session, registration_id: str) -> tuple[Permit, ...]:
    query = select(Permit).where(col(Permit.registration_id) == registration_id)
    newest = query.order_by(col(Permit.accepted_on).desc(), col(Permit.id))
    return tuple(session.exec(newest).all())


def _audit(
    session: Session,
    audit: AuditLog,
    criteria: Criteria,
    hits: Sequence[Hit],
    *,
    purpose: str,
    actor: Actor,
    now: datetime,
) -> None:
    """One entry per holder disclosed, the keyed hash of their ID as subject, so that the
    holder's access report finds it; one entry without a subject when nobody was found. The
    outcome names what was searched by, never the value."""
    action, outcome = f"{SEARCH_ACTION}.by-{criteria.kind}", "disclosed"
    holders = list(dict.fromkeys(hit.registration.citizen_id_hash for hit in hits))
    events = [actor.did(action, outcome, holder, purpose) for holder in holders]
    audit.record_many(session, events or [actor.did(action, "none", None, purpose)], now)
