"""Retention (hub.retention): closed months of deliveries and window decisions go to files with
manifests and leave the database, the statistics of those months stay as they were, a month
with deliveries pending stays, and the audit log is untouched. On PostgreSQL the months are
partitions (hub.partitions), dropped whole; rows a default partition holds go too."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from hub import partitions, statistics
from hub.audit import Actor
from hub.clock import FixedClock
from hub.composition import Hub
from hub.connectors.store import Delivery
from hub.db import unit_of_work
from hub.partitions import Month
from hub.permits.store import Permit, PermitEvent
from hub.retention import Archived, Held, NotClosed, archive
from hub.verification.store import WindowDecision
from tests.commands import assert_one_sentence, hub_env, run_hub
from tests.factories import add_registration, new_card, new_permit

NOW = datetime(2026, 12, 6, 2, tzinfo=UTC)
PERIOD = statistics.Period("2025-01", "2026-12")


def _at(day: str, hour: int = 2) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


def _decision(serial: str, decision: str, at: datetime) -> WindowDecision:
    return WindowDecision(
        id=str(uuid.uuid4()),
        client_id="window-1",
        department="health",
        service="basic-public-health",
        card_serial=serial,
        decision=decision,
        reasons=["card-ended"] if decision == "deny" else [],
        offline=False,
        decided_at=at,
        recorded_at=at,
    )


def _delivery(session: Session, permit: Permit, created: datetime, status: str) -> None:
    event = PermitEvent(
        permit_id=permit.id,
        type="issue",
        payload={},
        state_after="valid",
        actor_client_id="t",
        at=created,
    )
    session.add(event)
    session.flush()
    assert event.seq is not None
    session.add(
        Delivery(
            event_seq=event.seq,
            department="housing",
            permit_id=permit.id,
            status=status,
            next_attempt_at=created,
            created_at=created,
            delivered_at=None if status == "pending" else _at(created.date().isoformat(), 3),
        )
    )


@pytest.fixture
def held(hub: Hub, clock: FixedClock) -> Hub:
    """Decisions in March 2025 (before any month partition: the default's) and October 2026,
    deliveries made in September 2026 (one delivered in October, China time) and one of
    November still pending, a decision of this month."""
    clock.set(NOW)
    partitions.ensure(hub.engine, _at("2026-09-10"), ahead=3)
    with unit_of_work(hub.engine) as session:
        holder = uuid.uuid4().hex * 2
        permit = new_permit(add_registration(session, holder), holder, "valid")
        permit.jurisdiction = "chifeng"
        session.add(permit)
        session.flush()
        session.add(new_card("CF0000000009", permit.id, date(2026, 8, 1)))
        session.flush()
        for serial, decision, at in (
            ("CF0000000009", "grant", _at("2025-03-04")),
            ("CF0000000009", "grant", _at("2026-10-05")),
            ("CF0000000009", "deny", _at("2026-10-31", 17)),  # 1 November in China
            ("XX1", "deny", _at("2026-10-05")),
            ("CF0000000009", "grant", _at("2026-12-05")),
        ):
            session.add(_decision(serial, decision, at))
        _delivery(session, permit, _at("2026-09-20"), "delivered")
        _delivery(session, permit, _at("2026-09-30", 15), "delivered")  # delivered 1 Oct China
        _delivery(session, permit, _at("2026-11-02"), "pending")
        hub.audit.record(session, Actor("t", "health").did("x", "y", holder, "z"), NOW)
    return hub


def _figures(hub: Hub) -> dict[str, list[dict[str, object]]]:
    with Session(hub.engine) as session:
        figures = statistics.compute(session, PERIOD, ["chifeng"], only=("taps", "pushes"))
    return figures.tables


def _lines(path: Path) -> list[dict[str, object]]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def test_closed_months_go_to_files_and_their_statistics_stay(held: Hub, tmp_path: Path) -> None:
    before = _figures(held)
    assert sum(row["count"] for row in before["taps"]) == 5  # type: ignore[misc]

    done = archive(held.engine, held.audit, Month(2026, 12), tmp_path, NOW)

    by_month = {(o.table, str(o.month)): o for o in done}
    assert by_month["delivery", "2026-11"] == Held("delivery", Month(2026, 11), 1)
    kept = {key: o.rows for key, o in by_month.items() if isinstance(o, Archived) and o.rows}
    assert kept == {
        ("delivery", "2026-09"): 2,
        ("verification_decision", "2025-03"): 1,
        ("verification_decision", "2026-10"): 2,
        ("verification_decision", "2026-11"): 1,
    }
    october = tmp_path / "verification_decision-2026-10.jsonl.gz"
    manifest = json.loads((tmp_path / "verification_decision-2026-10.manifest.json").read_text())
    assert manifest["rows"] == 2 and manifest["file"] == october.name
    assert manifest["sha256"] == hashlib.sha256(october.read_bytes()).hexdigest()
    assert sorted(line["card_serial"] for line in _lines(october)) == ["CF0000000009", "XX1"]
    delivered = _lines(tmp_path / "delivery-2026-09.jsonl.gz")
    assert [line["status"] for line in delivered] == ["delivered", "delivered"]

    with Session(held.engine) as session:
        left = session.execute(sa.select(WindowDecision.decided_at)).scalars().all()  # type: ignore[call-overload]
        statuses = session.execute(sa.select(Delivery.status)).scalars().all()  # type: ignore[call-overload]
        assert held.audit.verify(session).intact
        actions = session.execute(
            sa.text("SELECT purpose FROM audit_log WHERE action = 'retention.archive'")
        ).scalars()
        assert set(actions) >= {"verification_decision 2026-10", "delivery 2026-09"}
    assert len(left) == 1 and statuses == ["pending"]
    assert _figures(held) == before

    if partitions.partitioned(held.engine):
        with held.engine.connect() as connection:
            decisions = partitions.existing(connection, "verification_decision")
            deliveries = partitions.existing(connection, "delivery")
        assert Month(2026, 10) not in decisions and Month(2026, 12) in decisions
        assert Month(2026, 9) not in deliveries and Month(2026, 11) in deliveries


def test_a_decision_reported_late_for_an_archived_month_is_archived_on_its_own(
    held: Hub, tmp_path: Path
) -> None:
    archive(held.engine, held.audit, Month(2026, 12), tmp_path, NOW)
    before = _figures(held)
    with unit_of_work(held.engine) as session:
        session.add(_decision("CF0000000009", "grant", _at("2026-10-07")))
    assert _figures(held) != before

    done = archive(held.engine, held.audit, Month(2026, 12), tmp_path, NOW)

    [again] = [o for o in done if isinstance(o, Archived) and o.rows]
    assert again.file == tmp_path / "verification_decision-2026-10.2.jsonl.gz"
    assert len(_lines(again.file)) == 1
    october = [row for row in _figures(held)["taps"] if row["month"] == "2026-10"]
    assert [(row["jurisdiction"], row["decision"], row["count"]) for row in october] == [
        ("chifeng", "grant", 2),  # one archived before, one now
        (None, "deny", 1),
    ]


def test_only_months_that_have_ended(held: Hub, tmp_path: Path) -> None:
    with pytest.raises(NotClosed):
        archive(held.engine, held.audit, Month(2027, 1), tmp_path / "archive", NOW)
    assert not (tmp_path / "archive").exists()


def test_the_command_archives_and_says_what_it_kept(
    held: Hub, database_url: str, tmp_path: Path
) -> None:
    env = hub_env(database_url)
    ran = run_hub("retention", "archive", "--before", "2026-11", "--to", str(tmp_path), env=env)
    assert ran.returncode == 0, ran.stderr
    assert "verification_decision 2026-10: 2 rows archived" in ran.stdout
    assert "delivery 2026-09: 2 rows archived (delivery-2026-09.jsonl.gz)" in ran.stdout

    for month in ("2027-13", "next"):
        wrong = run_hub("retention", "archive", "--before", month, "--to", "x", env=env)
        assert_one_sentence(wrong, "YYYY-MM")


def test_a_month_with_deliveries_pending_is_kept(
    held: Hub, database_url: str, tmp_path: Path
) -> None:
    env = hub_env(database_url)
    ran = run_hub("retention", "archive", "--before", "2026-12", "--to", str(tmp_path), env=env)
    assert ran.returncode == 1
    assert "delivery 2026-11: kept, 1 still pending" in ran.stderr
    assert not (tmp_path / "delivery-2026-11.jsonl.gz").exists()
