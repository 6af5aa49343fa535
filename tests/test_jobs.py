"""Scheduled jobs on real databases: what each job changes, that it does it once, and that two
hub processes running the sweep together never suspend a permit twice."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub import jobs
from hub.app import create_app
from hub.audit import AuditEntry
from hub.composition import Hub, build_hub
from hub.db import is_postgresql, unit_of_work
from hub.permits import domain, service
from hub.permits.store import Outbox, Permit, PermitEvent
from hub.settings import Settings
from tests.conftest import ISSUER, TEST_SECRET
from tests.factories import add_permits

TODAY = date(2027, 3, 1)


def _permits(hub: Hub, ids: list[str]) -> list[Permit]:
    with Session(hub.engine) as session:
        return [p for i in ids if (p := session.get(Permit, i)) is not None]


def _events(hub: Hub, event_type: str) -> list[PermitEvent]:
    with Session(hub.engine) as session:
        query = select(PermitEvent).where(col(PermitEvent.type) == event_type)
        return list(session.exec(query.order_by(col(PermitEvent.seq))).all())


def _outboxed(hub: Hub, events: list[PermitEvent]) -> set[int]:
    with Session(hub.engine) as session:
        rows = session.exec(select(Outbox.event_seq)).all()
    return {seq for seq in rows if seq in {e.seq for e in events}}


def _audit_actions(hub: Hub) -> Counter[str]:
    with Session(hub.engine) as session:
        return Counter(session.exec(select(AuditEntry.action)).all())


def _chain_intact(hub: Hub) -> bool:
    with Session(hub.engine) as session:
        return hub.audit.verify(session).intact


def test_sweep_suspends_exactly_the_expired_valid_permits(hub: Hub) -> None:
    expired = add_permits(hub, "valid", expires_on=TODAY - timedelta(days=1))
    expired += add_permits(hub, "valid", expires_on=TODAY - timedelta(days=40), count=2)
    last_day = add_permits(hub, "valid", expires_on=TODAY)  # still valid today [CF §20]
    future = add_permits(hub, "valid", expires_on=TODAY + timedelta(days=100))
    suspended = add_permits(hub, "suspended", expires_on=TODAY - timedelta(days=10))
    cancelled = add_permits(hub, "cancelled", expires_on=TODAY - timedelta(days=10))
    accepted = add_permits(hub, "accepted")

    assert jobs.sweep_expired(hub, TODAY, batch_size=2) == 3

    for permit in _permits(hub, expired):
        assert permit.state == "suspended"
        assert permit.expires_on is not None
        assert permit.suspended_on == permit.expires_on + timedelta(days=1)
        assert permit.version == 2
    untouched = last_day + future + suspended + cancelled + accepted
    assert all(p.version == 1 for p in _permits(hub, untouched))
    assert [p.state for p in _permits(hub, untouched)] == [
        "valid",
        "valid",
        "suspended",
        "cancelled",
        "accepted",
    ]
    events = _events(hub, "suspend")
    assert sorted(e.permit_id for e in events) == sorted(expired)
    assert all(e.actor_client_id == "hub-scheduler" for e in events)
    assert all(e.state_after == "suspended" for e in events)
    assert all(e.payload["from_state"] == "valid" for e in events)
    assert all(e.payload["on"] == TODAY.isoformat() for e in events)
    assert _outboxed(hub, events) == {e.seq for e in events}
    assert _audit_actions(hub)["permit.suspend"] == 3

    assert jobs.sweep_expired(hub, TODAY) == 0
    assert len(_events(hub, "suspend")) == 3
    assert _audit_actions(hub)["permit.suspend"] == 3
    assert _chain_intact(hub)


def test_the_bulk_sweep_writes_what_one_suspension_at_a_window_writes(hub: Hub) -> None:
    """The sweep's set-based path and `service.perform` must leave identical traces."""
    one, other = add_permits(hub, "valid", expires_on=TODAY - timedelta(days=3), count=2)
    with unit_of_work(hub.engine) as session:
        service.perform(
            session,
            hub.lifecycle,
            one,
            domain.Action.SUSPEND,
            expected_version=1,
            actor=jobs.SCHEDULER,
            now=hub.clock.now(),
            today=TODAY,
            details={"by": "expiry-sweep"},
        )
    assert jobs.sweep_expired(hub, TODAY) == 1

    by_one, by_sweep = sorted(_events(hub, "suspend"), key=lambda e: e.permit_id != one)
    assert by_sweep.permit_id == other
    assert by_sweep.payload == by_one.payload
    assert (by_sweep.state_after, by_sweep.actor_client_id) == (
        by_one.state_after,
        by_one.actor_client_id,
    )
    first, second = _permits(hub, [one, other])
    assert (second.state, second.suspended_on, second.version) == (
        first.state,
        first.suspended_on,
        first.version,
    )
    with Session(hub.engine) as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
    written = [(e.action, e.outcome, e.actor_department, e.purpose) for e in entries]
    assert (
        written[-2] == written[-1] == ("permit.suspend", "suspended", "public-security", "registry")
    )
    assert _chain_intact(hub)
    with Session(hub.engine) as session:
        snapshots = {row.permit_id: row.snapshot for row in session.exec(select(Outbox)).all()}
    by_python, by_sql = snapshots[one], snapshots[other]
    assert by_python is not None and by_sql is not None
    assert by_sql["state"] == "suspended" and by_sql["version"] == 2
    assert {**by_sql, "id": one} == by_python  # the SQL-built snapshot is the same object


def test_bulk_moves_leave_refused_permits_untouched(hub: Hub) -> None:
    (permit_id,) = add_permits(hub, "valid", expires_on=TODAY)  # its last valid day: not expired
    with unit_of_work(hub.engine) as session:
        query = sa.select(*service.CLAIM_COLUMNS).where(col(Permit.id) == permit_id)
        claimed = session.execute(query).all()
        refused = service.perform_claimed(
            session,
            hub.lifecycle,
            claimed,
            domain.Action.SUSPEND,
            actor=jobs.SCHEDULER,
            now=hub.clock.now(),
            today=TODAY,
            details={},
        )
        with pytest.raises(ValueError, match="changes cards"):
            service.perform_claimed(
                session,
                hub.lifecycle,
                claimed,
                domain.Action.REPLACE,
                actor=jobs.SCHEDULER,
                now=hub.clock.now(),
                today=TODAY,
                details={},
            )
    assert [(found, refusal.refusal.code) for found, refusal in refused] == [
        (permit_id, "permit-not-expired")
    ]
    (permit,) = _permits(hub, [permit_id])
    assert (permit.state, permit.version) == ("valid", 1)
    assert _events(hub, "suspend") == []


def test_endorsement_reminder_once_per_expiry(hub: Hub) -> None:
    # Chifeng: endorsement in the 30 days before expiry, and on it [CF §20].
    opens_today = add_permits(hub, "valid", expires_on=TODAY + timedelta(days=30))
    inside = add_permits(hub, "valid", expires_on=TODAY + timedelta(days=10))
    closes_today = add_permits(hub, "valid", expires_on=TODAY)
    not_yet = add_permits(hub, "valid", expires_on=TODAY + timedelta(days=31))
    expired = add_permits(hub, "valid", expires_on=TODAY - timedelta(days=1))
    suspended = add_permits(hub, "suspended", expires_on=TODAY + timedelta(days=5))

    assert jobs.remind_endorsement(hub, TODAY, batch_size=2) == 3

    reminders = _events(hub, jobs.REMINDER)
    assert sorted(e.permit_id for e in reminders) == sorted(opens_today + inside + closes_today)
    first = next(e for e in reminders if e.permit_id == opens_today[0])
    assert first.payload["expires_on"] == (TODAY + timedelta(days=30)).isoformat()
    assert first.payload["window_opens"] == TODAY.isoformat()
    assert first.state_after == "valid"
    assert _outboxed(hub, reminders) == {e.seq for e in reminders}
    everyone = opens_today + inside + closes_today + not_yet + expired + suspended
    assert all(p.version == 1 for p in _permits(hub, everyone))
    assert [p.state for p in _permits(hub, everyone)] == ["valid"] * 5 + ["suspended"]

    assert jobs.remind_endorsement(hub, TODAY) == 0
    assert jobs.remind_endorsement(hub, TODAY + timedelta(days=1)) == 1  # not_yet's opens
    assert len(_events(hub, jobs.REMINDER)) == 4

    # Endorsed: a new expiry date is a new reminder when its window opens, and only then.
    with unit_of_work(hub.engine) as session:
        permit = session.get(Permit, inside[0])
        assert permit is not None
        permit.expires_on = date(2028, 3, 11)
        session.add(permit)
    assert jobs.remind_endorsement(hub, TODAY + timedelta(days=2)) == 0
    assert jobs.remind_endorsement(hub, date(2028, 2, 10)) == 1
    assert jobs.remind_endorsement(hub, date(2028, 2, 11)) == 0
    assert Counter(e.permit_id for e in _events(hub, jobs.REMINDER))[inside[0]] == 2
    assert _audit_actions(hub)[f"permit.{jobs.REMINDER}"] == 5
    assert _chain_intact(hub)


def test_overdue_issuance_flagged_once(hub: Hub) -> None:
    overdue = add_permits(hub, "accepted", issue_due_on=TODAY - timedelta(days=1), count=3)
    due_today = add_permits(hub, "accepted", issue_due_on=TODAY)
    issued = add_permits(
        hub, "valid", issue_due_on=TODAY - timedelta(days=20), expires_on=date(2028, 1, 1)
    )

    assert jobs.flag_overdue_issuance(hub, TODAY, batch_size=2) == 3
    flags = _events(hub, jobs.OVERDUE)
    assert sorted(e.permit_id for e in flags) == sorted(overdue)
    assert all(e.payload["days_overdue"] == 1 for e in flags)
    assert all(e.state_after == "accepted" for e in flags)
    assert _outboxed(hub, flags) == {e.seq for e in flags}
    assert all(p.version == 1 for p in _permits(hub, overdue + due_today + issued))

    assert jobs.flag_overdue_issuance(hub, TODAY) == 0
    assert jobs.flag_overdue_issuance(hub, TODAY + timedelta(days=1)) == 1  # due_today's turn
    assert jobs.flag_overdue_issuance(hub, TODAY + timedelta(days=30)) == 0
    assert len(_events(hub, jobs.OVERDUE)) == 4
    assert _chain_intact(hub)


def test_run_daily_jobs_runs_each_for_the_clock_s_day(hub: Hub) -> None:
    today = hub.clock.today()
    add_permits(hub, "valid", expires_on=today - timedelta(days=1))
    add_permits(hub, "valid", expires_on=today + timedelta(days=3))
    add_permits(hub, "accepted", issue_due_on=today - timedelta(days=3))
    expected = {
        "expiry-sweep": 1,
        "endorsement-reminders": 1,
        "overdue-issuance": 1,
        "declaration-deadlines": 0,  # nothing provisional (tests/permits/test_registry_dates.py)
        "partitions": 0,  # the hub made this month's and the next when it started
    }
    assert jobs.run_daily_jobs(hub) == expected
    assert jobs.run_daily_jobs(hub) == dict.fromkeys(expected, 0)


def test_scheduler_runs_each_job_daily_at_five_past_midnight_china_time(hub: Hub) -> None:
    scheduler = jobs.build_scheduler(hub)
    scheduler.start(paused=True)
    try:
        found = {job.id: job for job in scheduler.get_jobs()}
        checkpoint = found.pop(jobs.CHECKPOINT)
        assert set(found) == set(jobs.JOBS)
        assert checkpoint.trigger.interval == timedelta(
            minutes=hub.settings.audit_checkpoint_minutes
        )
        assert checkpoint.coalesce is True and checkpoint.max_instances == 1
        for job in found.values():
            assert job.coalesce is True
            assert job.max_instances == 1
            assert str(job.trigger.timezone) == "Asia/Shanghai"
            run_at = job.next_run_time
            assert (run_at.hour, run_at.minute, run_at.utcoffset()) == (0, 5, timedelta(hours=8))
            assert run_at > datetime.now(UTC) >= run_at - timedelta(days=1)
        add_permits(hub, "valid", expires_on=hub.clock.today() - timedelta(days=1))
        assert found["expiry-sweep"].func() == 1  # the job asks the hub's clock for the day
    finally:
        scheduler.shutdown(wait=False)


# PostgreSQL only (SQLite has no row locks to skip: BEGIN IMMEDIATE serialises whole
# transactions), chosen by parametrising the database fixture, so nothing is skipped.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_sweep_skips_rows_another_transaction_holds(hub: Hub) -> None:
    """PostgreSQL: a permit locked elsewhere is skipped at once, not waited for."""
    assert is_postgresql(hub.engine)
    held = add_permits(hub, "valid", expires_on=TODAY - timedelta(days=1), count=2)
    free = add_permits(hub, "valid", expires_on=TODAY - timedelta(days=1), count=3)
    with hub.engine.connect() as other:
        locking = other.begin()
        locked = sa.select(Permit.id).where(col(Permit.id).in_(held)).with_for_update()  # type: ignore[call-overload]
        assert len(other.execute(locked).all()) == 2
        started = time.monotonic()
        assert jobs.sweep_expired(hub, TODAY, batch_size=2) == 3
        assert time.monotonic() - started < 5
        locking.rollback()
    assert {p.state for p in _permits(hub, held)} == {"valid"}
    assert {p.state for p in _permits(hub, free)} == {"suspended"}
    assert jobs.sweep_expired(hub, TODAY) == 2
    assert Counter(e.permit_id for e in _events(hub, "suspend")) == Counter(held + free)


def _job_in_process(
    database_url: str, key_file: str, job: str, batch_size: int, ready: Any, results: Any
) -> None:
    """Another hub process: its own settings, engine and Hub; waits for its twin, runs `job`."""
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        secret_key_file=Path(key_file),
        issuer=ISSUER,
        default_language="en",
    )
    hub = build_hub(settings)
    try:
        ready.wait(timeout=60)
        results.put(jobs.JOBS[job](hub, TODAY, batch_size))
    except BaseException as exc:
        results.put(repr(exc))
        raise
    finally:
        hub.engine.dispose()


def _run_twice_at_once(settings: Settings, job: str, batch_size: int = 20) -> list[int]:
    """Run `job` in two spawned OS processes released together; each one's count."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(2)
    results = context.Queue()
    args = (settings.database_url, str(settings.secret_key_file), job, batch_size, ready, results)
    workers = [context.Process(target=_job_in_process, args=args) for _ in range(2)]
    for worker in workers:
        worker.start()
    counts = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert all(isinstance(count, int) for count in counts), counts
    return counts


def test_two_processes_never_suspend_a_permit_twice(hub: Hub, settings: Settings) -> None:
    expired = add_permits(hub, "valid", expires_on=TODAY - timedelta(days=1), count=300)
    current = add_permits(hub, "valid", expires_on=TODAY + timedelta(days=60), count=5)

    counts = _run_twice_at_once(settings, "expiry-sweep")

    assert sum(counts) == 300
    if is_postgresql(hub.engine):
        # SKIP LOCKED: both processes claimed batches side by side. (On SQLite BEGIN IMMEDIATE
        # queues whole transactions, and one process often takes every batch.)
        assert min(counts) > 0, counts
    per_permit = Counter(e.permit_id for e in _events(hub, "suspend"))
    assert per_permit == Counter(expired)
    assert {p.state for p in _permits(hub, expired)} == {"suspended"}
    assert {p.version for p in _permits(hub, expired)} == {2}
    assert {p.state for p in _permits(hub, current)} == {"valid"}
    assert len(_outboxed(hub, _events(hub, "suspend"))) == 300
    assert _audit_actions(hub)["permit.suspend"] == 300
    assert _chain_intact(hub)
    assert jobs.sweep_expired(hub, TODAY) == 0


@pytest.mark.parametrize(
    ("job", "event_type"),
    [("endorsement-reminders", jobs.REMINDER), ("overdue-issuance", jobs.OVERDUE)],
)
def test_two_processes_never_notify_twice(
    hub: Hub, settings: Settings, job: str, event_type: str
) -> None:
    """These jobs change no state, so only the lock and the re-check under it stop a repeat."""
    due = add_permits(hub, "valid", expires_on=TODAY + timedelta(days=5), count=150)
    due += add_permits(hub, "accepted", issue_due_on=TODAY - timedelta(days=2), count=150)

    counts = _run_twice_at_once(settings, job)

    assert sum(counts) == 150
    if is_postgresql(hub.engine):
        assert min(counts) > 0, counts
    per_permit = Counter(e.permit_id for e in _events(hub, event_type))
    assert set(per_permit.values()) == {1}
    assert len(per_permit) == 150
    assert len(_outboxed(hub, _events(hub, event_type))) == 150
    assert {p.version for p in _permits(hub, due)} == {1}
    assert _chain_intact(hub)
    assert jobs.JOBS[job](hub, TODAY, 500) == 0


def test_the_app_runs_the_scheduler_when_enabled(settings: Settings, engine: Engine) -> None:
    app = create_app(settings.model_copy(update={"scheduler_enabled": True}), engine=engine)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        running = [t.name for t in threading.enumerate() if "APScheduler" in t.name]
        assert running, "the scheduler thread is not running"
