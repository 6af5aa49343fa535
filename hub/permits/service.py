"""Use cases of the permit lifecycle: one function per action, one transaction each.

Each change locks the permit row, checks the caller's version (so two windows cannot
overwrite each other), asks the domain's state machine, and writes the new state, a
`permit_event`, an `outbox` row and an audit entry together: nothing is published that was
not committed, and nothing committed goes unpublished.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from hub.audit import AuditEvent, AuditLog
from hub.permits import domain
from hub.permits.store import Card, Outbox, Permit, PermitEvent


@dataclass(frozen=True)
class Actor:
    """Who asked for the change: the OAuth client (an acceptance office's system)."""

    client_id: str
    department: str


class PermitNotFound(LookupError):
    pass


class StaleWrite(Exception):
    """The caller changed a version of the permit that is no longer the current one."""

    def __init__(self, current_version: int) -> None:
        super().__init__(f"the permit is at version {current_version}")
        self.current_version = current_version


# What each card change costs [CF §21]: first issuance and endorsement are free; a lost card
# (replacement) or a damaged one (renewal, old card returned [CF §18]) pays the card cost.
CARD_CHANGES: dict[domain.Action, tuple[str, str, str]] = {
    # action: (reason of the new card, fee, what becomes of the old card)
    domain.Action.ISSUE: ("first-issuance", "free", ""),
    domain.Action.REPLACE: ("replacement", "card-cost", "lost"),
    domain.Action.RENEW: ("renewal", "card-cost", "returned"),
}
CARD_ENDING = {domain.Action.CANCEL: "cancelled", domain.Action.SETTLE: "cancelled"}


def facts_of(permit: Permit) -> domain.PermitFacts:
    return domain.PermitFacts(
        state=domain.PermitState(permit.state),
        residence_start=permit.residence_start,
        valid_from=permit.valid_from,
        expires_on=permit.expires_on,
        suspended_on=permit.suspended_on,
    )


def _lock(session: Session, permit_id: str) -> Permit:
    """The row lock serialises concurrent changes on PostgreSQL; SQLite's BEGIN IMMEDIATE
    already serialises every writer."""
    permit = session.exec(
        select(Permit).where(col(Permit.id) == permit_id).with_for_update()
    ).first()
    if permit is None:
        raise PermitNotFound(permit_id)
    return permit


def new_card_serial(jurisdiction: str, today: date) -> str:
    return f"{jurisdiction[:2].upper()}{today:%y}{secrets.token_hex(6).upper()}"


def _change_cards(
    session: Session, permit: Permit, action: domain.Action, today: date
) -> dict[str, Any]:
    """End the live card and make the new one, as the action requires; say what happened."""
    change: dict[str, Any] = {}
    ending = CARD_CHANGES.get(action, ("", "", ""))[2] or CARD_ENDING.get(action, "")
    if ending and permit.card_serial:
        old = session.get(Card, permit.card_serial)
        if old is not None:
            old.status, old.ended_on = ending, today
            session.add(old)
        change["old_card"] = {"serial": permit.card_serial, "status": ending}
        permit.card_serial = None
    if action in CARD_CHANGES:
        reason, fee, _ = CARD_CHANGES[action]
        serial = new_card_serial(permit.jurisdiction, today)
        session.add(
            Card(
                serial=serial,
                permit_id=permit.id,
                status="live",
                reason=reason,
                fee=fee,
                issued_on=today,
            )
        )
        permit.card_serial = serial
        change["new_card"] = {"serial": serial, "reason": reason, "fee": fee}
    return change


def record_event(
    session: Session,
    audit: AuditLog,
    permit: Permit,
    event_type: str,
    payload: dict[str, Any],
    actor: Actor,
    now: datetime,
) -> PermitEvent:
    """The event, its outbox row and its audit entry, in the caller's transaction."""
    event = PermitEvent(
        permit_id=permit.id,
        type=event_type,
        payload=payload,
        state_after=permit.state,
        actor_client_id=actor.client_id,
        at=now,
    )
    session.add(event)
    session.flush()
    assert event.seq is not None
    session.add(Outbox(event_seq=event.seq, permit_id=permit.id, created_at=now))
    audit.record(
        session,
        AuditEvent(
            actor_client_id=actor.client_id,
            actor_department=actor.department,
            action=f"permit.{event_type}",
            outcome=permit.state,
            subject=permit.citizen_id_hash,
            purpose="registry",
        ),
        now,
    )
    return event


def perform(
    session: Session,
    audit: AuditLog,
    permit_id: str,
    action: domain.Action,
    *,
    expected_version: int,
    actor: Actor,
    now: datetime,
    today: date,
    rules_for: Callable[[str], domain.LifecycleRules],
    details: dict[str, Any] | None = None,
) -> tuple[Permit, PermitEvent]:
    """Apply one lifecycle action under the rules of the permit's jurisdiction; raise
    PermitNotFound, StaleWrite or MoveRefused."""
    permit = _lock(session, permit_id)
    if permit.version != expected_version:
        raise StaleWrite(permit.version)
    transition = domain.move(facts_of(permit), action, today, rules_for(permit.jurisdiction))
    return _commit_transition(
        session, audit, permit, transition, actor=actor, now=now, today=today, details=details
    )


def _commit_transition(
    session: Session,
    audit: AuditLog,
    permit: Permit,
    transition: domain.Transition,
    *,
    actor: Actor,
    now: datetime,
    today: date,
    details: dict[str, Any] | None,
) -> tuple[Permit, PermitEvent]:
    after = transition.after
    permit.state = after.state.value
    permit.valid_from, permit.expires_on = after.valid_from, after.expires_on
    permit.suspended_on, permit.residence_start = after.suspended_on, after.residence_start
    payload: dict[str, Any] = {
        "on": today.isoformat(),
        "from_state": transition.before.value,
        **_change_cards(session, permit, transition.action, today),
        **(details or {}),
    }
    if transition.residence_restarted:
        payload["residence_restarted_on"] = after.residence_start.isoformat()
    if transition.action in CARD_ENDING:
        permit.cancel_reason = str((details or {}).get("reason", transition.action.value))
    permit.version += 1
    permit.updated_at = now
    session.add(permit)
    event = record_event(session, audit, permit, transition.action.value, payload, actor, now)
    return permit, event


def events_of(session: Session, permit_id: str) -> list[PermitEvent]:
    if session.get(Permit, permit_id) is None:
        raise PermitNotFound(permit_id)
    query = select(PermitEvent).where(col(PermitEvent.permit_id) == permit_id)
    return list(session.exec(query.order_by(col(PermitEvent.seq))).all())


def view(permit: Permit) -> dict[str, Any]:
    """The registry's view of a permit (no citizen ID, clear or hashed)."""
    facts = asdict(facts_of(permit))
    return {
        "id": permit.id,
        "jurisdiction": permit.jurisdiction,
        "receipt_number": permit.receipt_number,
        "accepted_on": permit.accepted_on.isoformat(),
        "issue_due_on": permit.issue_due_on.isoformat(),
        "card_serial": permit.card_serial,
        "cancel_reason": permit.cancel_reason,
        "version": permit.version,
        **{
            key: (value.isoformat() if isinstance(value, date) else value)
            for key, value in facts.items()
        },
        "allowed_actions": [a.value for a in domain.allowed_actions(facts_of(permit).state)],
    }
