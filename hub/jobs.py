"""Scheduled jobs: the daily expiry sweep, endorsement reminders, overdue-issuance flags, and
the settling of declaration deadlines that were judged on Monday-Friday alone.

Each job works in batches, one transaction per batch, and claims its batch with row locks:
`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so two hub processes running the same job
at the same time split the work instead of doing it twice (DESIGN.md, "Storage"). On SQLite
every transaction starts with BEGIN IMMEDIATE, which already serialises writers, and SQLAlchemy
leaves the FOR UPDATE clause out. A job re-checks, under the lock and with a fresh statement,
that its work has not been done meanwhile; so every job is idempotent: run it twice on the same
day and the second run does nothing.

Every change goes through the permit service, so it writes the permit_event, the outbox row and
the audit entry in the same transaction as the state (DESIGN.md, "event-sourced-lite").
`build_scheduler` runs the jobs daily at 00:05 China time, and signs a checkpoint of the audit
chains for the departments every `audit_checkpoint_minutes`; `run_daily_jobs` runs the daily
jobs once.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from sqlmodel import Session, col, select

from hub import checkpoints, partitions
from hub.audit import Actor
from hub.auth.keys import active_key
from hub.clock import china_day_start
from hub.composition import Hub
from hub.connectors.checkpoints import publish as publish_checkpoints
from hub.db import unit_of_work
from hub.ops import metrics, trace
from hub.permits import domain, service
from hub.permits.store import Permit, PermitEvent, Registration

log = logging.getLogger(__name__)

TIMEZONE = "Asia/Shanghai"
SCHEDULER = Actor("hub-scheduler", "public-security")
REMINDER = "endorsement-reminder"
OVERDUE = "issuance-overdue"
DEFAULT_BATCH = 500
EARLIEST_YEAR = 1900
"""No arrival is older: the hub refuses birth dates before 1900 (hub.permits.identity)."""
SWEEP_BATCH = 5000
SWEEP_WORKERS = 2


Claimed = TypeVar("Claimed", Permit, Registration)


def _claim(
    session: Session,
    model: type[Claimed],
    where: Sequence[sa.ColumnExpressionArgument[bool]],
    after: str,
    batch_size: int,
) -> list[Claimed]:
    """Lock up to `batch_size` rows of `model` matching `where` with ids after `after`,
    skipping rows another transaction holds. Keyset order by id, so a run always ends."""
    query = (
        select(model)
        .where(*where, col(model.id) > after)
        .order_by(col(model.id))
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    return list(session.exec(query).all())


def _run_batches(
    hub: Hub,
    model: type[Claimed],
    where: Sequence[sa.ColumnExpressionArgument[bool]],
    batch_size: int,
    handle: Callable[[Session, Claimed, datetime], bool],
) -> int:
    """Claim batches of rows and `handle` each (True when it did the work), one unit of work
    per batch; returns how many were handled. An exception rolls back its own batch (earlier
    batches stay committed) and ends the run."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    done, after = 0, ""
    while True:
        with unit_of_work(hub.engine) as session:
            rows = _claim(session, model, where, after, batch_size)
            now = hub.clock.now()
            handled = sum(handle(session, row, now) for row in rows)
        done += handled
        if len(rows) < batch_size:
            return done
        after = rows[-1].id


def _has_event(session: Session, permit_id: str, event_type: str, **payload: str) -> bool:
    """Whether the permit already has an event of this type whose payload has these values.

    A statement of its own, issued after the row lock: under READ COMMITTED it sees what
    another process committed while this one waited, so work is never repeated.
    """
    query = select(PermitEvent.payload).where(
        col(PermitEvent.permit_id) == permit_id, col(PermitEvent.type) == event_type
    )
    return any(
        all(found.get(key) == value for key, value in payload.items())
        for found in session.exec(query).all()
    )


def _no_event(event_type: str, **payload: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """SQL pre-filter matching `_has_event` (which stays the authority, under the lock)."""
    conditions = [
        col(PermitEvent.permit_id) == col(Permit.id),
        col(PermitEvent.type) == event_type,
        *(col(PermitEvent.payload)[key].as_string() == value for key, value in payload.items()),
    ]
    return ~sa.exists().where(*conditions)


class _Batches:
    """Hands out batches of expired permits, in (expires_on, id) order, to several workers.
    Claiming is serialised (so batches never overlap and the keyset always advances); the
    work on a claimed batch is not."""

    ORDER = (col(Permit.expires_on), col(Permit.id))

    def __init__(self, today: date, batch_size: int) -> None:
        self.lock = threading.Lock()
        self.today, self.batch_size = today, batch_size
        self.after: tuple[date, str] | None = None
        self.finished = False

    def claim(self, session: Session) -> list[sa.Row[Any]]:
        """Lock the next batch in this session's transaction; [] when there is none."""
        with self.lock:
            if self.finished:
                return []
            query = (
                sa.select(*service.CLAIM_COLUMNS)
                .where(
                    col(Permit.state) == domain.PermitState.VALID.value,
                    col(Permit.expires_on) < self.today,
                )
                .order_by(*self.ORDER)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
            if self.after is not None:
                query = query.where(sa.tuple_(*self.ORDER) > sa.tuple_(*self.after))
            claimed = list(session.execute(query).all())
            self.finished = len(claimed) < self.batch_size
            if claimed:
                self.after = (claimed[-1].expires_on, claimed[-1].id)
            return claimed


def _suspend_batches(hub: Hub, batches: _Batches) -> int:
    suspended = 0
    try:
        while True:
            with unit_of_work(hub.engine) as session:
                claimed = batches.claim(session)
                refused = service.perform_claimed(
                    session,
                    hub.lifecycle,
                    claimed,
                    domain.Action.SUSPEND,
                    actor=SCHEDULER,
                    now=hub.clock.now(),
                    today=batches.today,
                    details={"by": "expiry-sweep"},
                )
            for permit_id, refusal in refused:
                log.warning("expiry sweep skipped permit %s: %s", permit_id, refusal)
            suspended += len(claimed) - len(refused)
            if not claimed:
                return suspended
    except BaseException:
        batches.finished = True  # the other workers stop after their batch
        raise


def sweep_expired(
    hub: Hub, today: date, batch_size: int = SWEEP_BATCH, workers: int = SWEEP_WORKERS
) -> int:
    """Suspend every valid permit whose last valid day is before `today` [CF §20]: not
    endorsed by expiry, its functions are suspended from the day after. Each suspension writes
    the state, a "suspend" event, an outbox row and an audit entry. Returns how many this
    call suspended.

    Built for a backlog (after a holiday or an outage there may be hundreds of thousands):
    set-based writes per batch (`service.perform_claimed`), batches in (expires_on, id) order
    from a partial index, and `workers` threads, so that one batch's Python work (the state
    machine, the audit MACs) overlaps another's time in the database. Their transactions
    meet only at the audit head, taken last, just before commit.
    """
    if batch_size < 1 or workers < 1:
        raise ValueError("batch_size and workers must be at least 1")
    batches = _Batches(today, batch_size)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep") as pool:
        running = [pool.submit(_suspend_batches, hub, batches) for _ in range(workers)]
        suspended = sum(future.result() for future in running)
    log.info("expiry sweep for %s: %d permits suspended", today, suspended)
    return suspended


def remind_endorsement(hub: Hub, today: date, batch_size: int = DEFAULT_BATCH) -> int:
    """Tell departments and holders, once per permit and expiry date, that the endorsement
    window is open: valid permits whose window opens on or before `today` and is not yet closed
    (an expired one is the sweep's). Writes an "endorsement-reminder" event and its outbox row
    (and an audit entry); the permit's state and version do not change. Returns how many
    reminders this call wrote."""

    def remind(session: Session, permit: Permit, now: datetime) -> bool:
        assert permit.expires_on is not None
        rules = hub.lifecycle.rules_for(permit.jurisdiction)
        opens, closes = domain.endorsement_window(permit.expires_on, rules)
        expires_on = permit.expires_on.isoformat()
        if not opens <= today <= closes or _has_event(
            session, permit.id, REMINDER, expires_on=expires_on
        ):
            return False
        payload = {
            "on": today.isoformat(),
            "expires_on": expires_on,
            "window_opens": opens.isoformat(),
            "window_closes": closes.isoformat(),
            "cite": rules.cite_endorsement,
        }
        service.record_event(session, hub.audit, permit, REMINDER, payload, SCHEDULER, now)
        return True

    # A generous SQL bound; each jurisdiction's own window decides in `remind`.
    horizon = max(
        (
            place.lifecycle_rules().endorsement_window.after(today)
            for place in hub.jurisdictions.values()
        ),
        default=today,
    ) + timedelta(days=3)
    where = [
        col(Permit.state) == domain.PermitState.VALID.value,
        col(Permit.expires_on) >= today,
        col(Permit.expires_on) <= horizon,
        _no_event(REMINDER, expires_on=sa.cast(col(Permit.expires_on), sa.String)),
    ]
    reminded = _run_batches(hub, Permit, where, batch_size, remind)
    log.info("endorsement reminders for %s: %d written", today, reminded)
    return reminded


def flag_overdue_issuance(hub: Hub, today: date, batch_size: int = DEFAULT_BATCH) -> int:
    """Flag, once per permit, an accepted application whose card was due before `today` and is
    still not issued: an "issuance-overdue" event and its outbox row (and an audit entry),
    state and version unchanged. Returns how many permits this call flagged."""

    def flag(session: Session, permit: Permit, now: datetime) -> bool:
        if _has_event(session, permit.id, OVERDUE):
            return False
        payload = {
            "on": today.isoformat(),
            "issue_due_on": permit.issue_due_on.isoformat(),
            "days_overdue": (today - permit.issue_due_on).days,
        }
        service.record_event(session, hub.audit, permit, OVERDUE, payload, SCHEDULER, now)
        return True

    where = [
        col(Permit.state) == domain.PermitState.ACCEPTED.value,
        col(Permit.issue_due_on) < today,
        _no_event(OVERDUE),
    ]
    flagged = _run_batches(hub, Permit, where, batch_size, flag)
    log.info("overdue issuance for %s: %d permits flagged", today, flagged)
    return flagged


def settle_declarations(hub: Hub, today: date, batch_size: int = DEFAULT_BATCH) -> int:
    """Judge again each registration whose declaration deadline ran into a year without a
    known holiday schedule, once the hub knows that year (config/holidays/<year>.toml, read at
    start, or a newer chinese-calendar): its deadline, lateness and residence start, and the
    start of a live permit that took it (`service.settle_declaration`). Returns how many
    registrations this call settled; those still unknown wait for a later run.

    Only registrations whose provisional deadline falls in a year the calendar now knows are
    claimed, so the daily run costs nothing while a year's schedule is still missing.
    """
    known = [year for year in range(EARLIEST_YEAR, today.year + 2) if hub.calendar.is_known(year)]

    def settle(session: Session, registration: Registration, now: datetime) -> bool:
        return service.settle_declaration(
            session,
            hub.lifecycle,
            hub.jurisdictions[registration.jurisdiction],
            registration,
            actor=SCHEDULER,
            now=now,
            today=today,
        )

    where = [
        col(Registration.declaration_provisional),
        sa.extract("year", col(Registration.declaration_due_on)).in_(known),
    ]
    settled = _run_batches(hub, Registration, where, batch_size, settle)
    log.info("declaration deadlines for %s: %d registrations settled", today, settled)
    return settled


def create_partitions(hub: Hub, today: date) -> int:
    """The partitions of `today`'s month and the months ahead not there yet (PostgreSQL;
    hub.partitions): made daily, so that a hub running for months never lacks one."""
    ahead = hub.settings.partition_months_ahead
    return len(partitions.ensure(hub.engine, china_day_start(today), ahead))


JOBS: dict[str, Callable[[Hub, date], int]] = {
    "expiry-sweep": sweep_expired,
    "endorsement-reminders": remind_endorsement,
    "overdue-issuance": flag_overdue_issuance,
    "declaration-deadlines": settle_declarations,
    "partitions": create_partitions,
}


def run_job(hub: Hub, name: str, day: date) -> int:
    """Run one daily job for `day`, observed (`_observed`); returns its count."""
    return _observed(name, f"for {day}", lambda: JOBS[name](hub, day))


def _observed(name: str, what: str, job: Callable[[], int]) -> int:
    """Run a job in a trace of its own, logged, counted and timed (hub.ops.metrics)."""
    started = time.perf_counter()
    outcome = "failed"
    with trace.tracing():
        log.info("job %s %s started", name, what, extra={"job": name})
        try:
            count = job()
            outcome = "done"
        finally:
            elapsed = time.perf_counter() - started
            metrics.JOB_RUNS.labels(name, outcome).inc()
            metrics.JOB_DURATION.labels(name).observe(elapsed)
            log.info(
                "job %s %s %s in %.1f s",
                name,
                what,
                outcome,
                elapsed,
                extra={"job": name, "outcome": outcome, "duration_s": round(elapsed, 3)},
            )
    return count


CHECKPOINT = "audit-checkpoint"


def checkpoint_audit(hub: Hub) -> int:
    """Sign a checkpoint of the audit chains, when anything was appended since the last, and
    send every push department the checkpoints it has not acknowledged (hub.checkpoints);
    returns how many checkpoints this run signed (0 or 1)."""
    with unit_of_work(hub.engine) as session:
        key = active_key(session, hub.key_password)
        if key is None:
            raise RuntimeError("no active signing key: run `hub db upgrade`")
        signed = checkpoints.sign(session, key, hub.settings.issuer, hub.clock.now())
    links = {
        department.value: link for department, link in hub.outbound.publisher.departments.items()
    }
    with httpx.Client(timeout=5.0) as client:
        publish_checkpoints(hub.engine, hub.clock, links, client)
    return int(signed is not None)


def run_checkpoint(hub: Hub) -> int:
    return _observed(CHECKPOINT, "now", lambda: checkpoint_audit(hub))


def run_daily_jobs(hub: Hub, today: date | None = None) -> dict[str, int]:
    """Run the jobs once, in order (the sweep first), for `today` (default: the hub's clock);
    returns each job's count by name."""
    day = today or hub.clock.today()
    return {name: run_job(hub, name, day) for name in JOBS}


def _daily(hub: Hub, name: str) -> Callable[[], int]:
    def run() -> int:
        return run_job(hub, name, hub.clock.today())

    run.__name__ = run.__qualname__ = JOBS[name].__name__
    return run


def build_scheduler(hub: Hub) -> BackgroundScheduler:
    """A scheduler (not started) with each daily job at 00:05 China time and the audit
    checkpoint every `audit_checkpoint_minutes`. A daily run missed while
    the process was down is made up once (coalesced) within the day; a job never overlaps
    itself in one process, and row locks keep two processes from repeating each other's work.
    The caller starts it (`start()`) and stops it (`shutdown()`)."""
    scheduler = BackgroundScheduler(timezone=TIMEZONE)
    for name in JOBS:
        scheduler.add_job(
            _daily(hub, name),
            CronTrigger(hour=0, minute=5, timezone=TIMEZONE),
            id=name,
            name=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=23 * 3600,
            replace_existing=True,
        )
    scheduler.add_job(
        functools.partial(run_checkpoint, hub),
        IntervalTrigger(minutes=hub.settings.audit_checkpoint_minutes),
        id=CHECKPOINT,
        name=CHECKPOINT,
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )
    return scheduler
