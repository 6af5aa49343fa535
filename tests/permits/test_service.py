"""Lifecycle use cases on both databases: state, event, outbox and audit in one transaction."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditEntry, AuditLog
from hub.card.store import Card
from hub.clock import WorkingCalendar
from hub.db import unit_of_work
from hub.permits import domain, service
from hub.permits.jurisdictions import load_jurisdictions
from hub.permits.store import Outbox, Permit, PermitEvent
from tests.factories import SHIPPED_JURISDICTIONS, add_registration, new_permit

pytestmark = pytest.mark.new_database  # the rows its services write, counted from none

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
TODAY = date(2026, 11, 25)
ACTOR = Actor("chifeng-office-1", "public-security")
RULES = domain.LifecycleRules(settlement_years=3)
AUDIT = AuditLog(b"k" * 32)
LIFECYCLE = service.Lifecycle(AUDIT, lambda _: RULES, WorkingCalendar())


@pytest.fixture
def permit_id(engine: Engine) -> str:
    with unit_of_work(engine) as session:
        registration = add_registration(session, "a" * 64)
        permit = new_permit(registration, "a" * 64, "accepted")
        session.add(permit)
    return permit.id


def perform(
    engine: Engine, permit_id: str, action: domain.Action, version: int, **kw: object
) -> Permit:
    with unit_of_work(engine) as session:
        permit, _ = service.perform(
            session,
            LIFECYCLE,
            permit_id,
            action,
            expected_version=version,
            actor=ACTOR,
            now=NOW,
            today=kw.pop("today", TODAY),  # type: ignore[arg-type]
            details=kw or None,  # type: ignore[arg-type]
        )
        return permit


def test_issue_writes_state_card_event_outbox_and_audit(engine: Engine, permit_id: str) -> None:
    permit = perform(engine, permit_id, domain.Action.ISSUE, 1)
    assert (permit.state, permit.version) == ("valid", 2)
    assert (permit.valid_from, permit.expires_on) == (TODAY, date(2027, 11, 25))
    with Session(engine) as session:
        card = session.get(Card, permit.card_serial)
        assert card is not None and (card.status, card.reason, card.fee) == (
            "live",
            "first-issuance",
            "free",
        )
        events = session.exec(select(PermitEvent)).all()
        assert [(e.type, e.state_after) for e in events] == [("issue", "valid")]
        assert events[0].payload["new_card"]["serial"] == permit.card_serial
        outbox = session.exec(select(Outbox)).all()
        assert [row.event_seq for row in outbox] == [events[0].seq]
        audit = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        assert [(a.action, a.subject) for a in audit] == [("permit.issue", "a" * 64)]
        assert AUDIT.verify(session).intact


def test_a_stale_version_changes_nothing(engine: Engine, permit_id: str) -> None:
    perform(engine, permit_id, domain.Action.ISSUE, 1)
    with pytest.raises(service.StaleWrite) as stale:
        perform(engine, permit_id, domain.Action.CANCEL, 1)
    assert stale.value.current_version == 2
    with Session(engine) as session:
        permit = session.get(Permit, permit_id)
        assert permit is not None and permit.state == "valid"
        assert len(session.exec(select(PermitEvent)).all()) == 1


def test_an_illegal_move_changes_nothing(engine: Engine, permit_id: str) -> None:
    with pytest.raises(domain.MoveRefused) as refused:
        perform(engine, permit_id, domain.Action.ENDORSE, 1)
    assert refused.value.refusal.code == "illegal-transition"
    with Session(engine) as session:
        assert session.exec(select(PermitEvent)).all() == []
        assert session.exec(select(AuditEntry)).all() == []


def test_replacement_kills_the_lost_card_at_once(engine: Engine, permit_id: str) -> None:
    first = perform(engine, permit_id, domain.Action.ISSUE, 1).card_serial
    second = perform(engine, permit_id, domain.Action.REPLACE, 2).card_serial
    third = perform(engine, permit_id, domain.Action.RENEW, 3).card_serial
    with Session(engine) as session:
        cards = {serial: session.get(Card, serial) for serial in (first, second, third)}
    assert [(c.status, c.reason, c.fee) for c in cards.values() if c] == [
        ("lost", "first-issuance", "free"),
        ("returned", "replacement", "card-cost"),
        ("live", "renewal", "card-cost"),
    ]


def test_card_fees_follow_the_jurisdiction(engine: Engine, permit_id: str) -> None:
    """The charges and the fate of the old card come from the jurisdiction's file."""
    fees = domain.CardFees(
        charges={
            "first-issuance": ("free", "[X §1]"),
            "replacement": ("card-cost", "[X §2]"),
            "renewal": ("free", "[X §3]"),
        },
        old_card_returned_on_renewal=False,
    )
    rules = domain.LifecycleRules(card_fees=fees)
    events = []
    for version, action in enumerate((domain.Action.ISSUE, domain.Action.RENEW), start=1):
        with unit_of_work(engine) as session:
            permit, event = service.perform(
                session,
                service.Lifecycle(AUDIT, lambda _: rules, WorkingCalendar()),
                permit_id,
                action,
                expected_version=version,
                actor=ACTOR,
                now=NOW,
                today=TODAY,
            )
            events.append(event.payload)
    assert events[1]["new_card"]["fee"] == "free"
    assert events[1]["new_card"]["cite"] == "[X §3]"
    assert events[1]["old_card"]["status"] == "superseded"
    assert permit.cancel_reason is None  # a card change is not a cancellation


def test_shipped_fees_reach_the_lifecycle() -> None:
    places = load_jurisdictions(SHIPPED_JURISDICTIONS)
    chifeng = places["chifeng"].lifecycle_rules().card_fees
    assert chifeng.charges["renewal"] == ("card-cost", "[CF §21]")
    assert chifeng.old_card_returned_on_renewal
    mongolia = places["inner-mongolia"].lifecycle_rules().card_fees
    assert mongolia.charges["first-issuance"][0] == "free"
    assert mongolia.charges["replacement"][1].startswith("[IM]")


def test_cancellation_records_the_reason_and_ends_the_card(engine: Engine, permit_id: str) -> None:
    serial = perform(engine, permit_id, domain.Action.ISSUE, 1).card_serial
    permit = perform(engine, permit_id, domain.Action.CANCEL, 2, reason="false-materials")
    assert (permit.state, permit.cancel_reason, permit.card_serial) == (
        "cancelled",
        "false-materials",
        None,
    )
    with Session(engine) as session:
        card = session.get(Card, serial)
        assert card is not None and card.status == "cancelled"
        events = service.events_of(session, permit_id)
    assert [e.type for e in events] == ["issue", "cancel"]
    assert events[1].payload["reason"] == "false-materials"


def test_events_of_an_unknown_permit(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(service.PermitNotFound):
        service.events_of(session, "nope")
