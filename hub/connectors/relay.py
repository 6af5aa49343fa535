"""The outbox relay: every committed permit event reaches every subscribed department, at
least once, in order per holder, and nothing an agreement does not allow is ever sent.

Two steps, each safe with several hub processes:

1. Fan-out: outbox rows not yet published become one `delivery` row per push department that
   subscribes to the event's type. Row locks make a second relay *wait* for the first's
   fan-out rather than skip it: skipping would let it fan out (and deliver) a holder's later
   events while the earlier one's deliveries do not exist yet (found by the fault tests).
2. Delivery: a worker leases a batch of due deliveries in a short transaction, builds each
   record (the holder record projected by the department's agreement and validated against
   the holder-record version in use), sends it signed per Standard Webhooks with the event id
   as webhook-id, and records the outcomes in another short transaction. No lock is held
   while sending; a worker killed mid-batch leaves leases that expire, and the batch is sent
   again with the same webhook-ids, which the receiver de-duplicates.

Per-holder order: a delivery is due only when no earlier delivery of the same holder to the
same department is still undelivered (pending, leased, or dead), so a later event never
overtakes an earlier one, even across processes.

Outages: a failed delivery is tried again along its department's retry schedule (seconds,
minutes, then hours, spanning more than a day; `RetrySchedule`), each wait up to a tenth
longer at random so that relays do not retry in step. A department whose sends all fail in a
round has its circuit opened (hub.connectors.circuit): the rest of that round's records to it
are not sent, and until it answers it gets one probe at a time, while everything else waits
without spending its schedule. A delivery is dead only when the attempt after its schedule's
last wait has failed, or at once when its record cannot be built; the holder's later
deliveries to that department then wait until staff replay it (/exchange/v1/dead-letters).
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from hub import bulk
from hub.auth.domain import Department
from hub.clock import Clock
from hub.connectors import circuit
from hub.connectors.config import STANDARD_RETRIES, DepartmentLink, RetrySchedule
from hub.connectors.signing import Signer
from hub.connectors.store import DEAD, DELIVERED, PENDING, Delivery
from hub.db import unit_of_work
from hub.ops import metrics, trace
from hub.permits.outbox import OUTBOX
from hub.permits.store import Outbox, PermitEvent
from hub.publishing.publisher import Publisher
from hub.publishing.records import RecordUnavailable
from hub.publishing.terms import Refusal, read_agreement_in_force, read_version_in_use
from hub.text import Text

log = logging.getLogger(__name__)

NOT_AGREED = "no data-sharing agreement in force"
PROGRESS_SECONDS = 10.0
DELIVERY: sa.Table = Delivery.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RelayPolicy:
    batch_size: int = 200
    lease_seconds: float = 30.0
    timeout_seconds: float = 5.0
    senders: int = 16
    retry_schedule: RetrySchedule = STANDARD_RETRIES  # of departments that name none
    jitter: float = 0.1

    def retry_at(self, schedule: RetrySchedule, attempts: int, now: datetime) -> datetime | None:
        """When a delivery that has failed `attempts` times goes again (None: it is dead).
        The jitter only lengthens a wait, so the schedule spans at least what it says."""
        wait = schedule.wait_after(attempts)
        if wait is None:
            return None
        return now + wait * (1 + random.uniform(0, self.jitter))


@dataclass(frozen=True)
class Outgoing:
    event_seq: int
    department: str
    attempts: int
    body: bytes | None  # None: not sendable (the reason is in `error`)
    error: str | None = None
    trace_id: str | None = None  # of the request that recorded the event


@dataclass(frozen=True)
class Outcome:
    item: Outgoing
    delivered: bool
    error: str | None  # why it failed; None when delivered, or when not tried

    @property
    def tried(self) -> bool:
        return self.delivered or self.error is not None

    @property
    def sent(self) -> bool:
        """Tried on the department's endpoint: evidence of whether it answers."""
        return self.tried and self.item.body is not None


@dataclass(frozen=True)
class Outbound:
    """What the relay needs of the hub, and nothing else: the database its outbox is in, the
    clock, and the publisher of holder records (with each department's link). Built once per
    process (`Hub.outbound`)."""

    engine: Engine
    clock: Clock
    publisher: Publisher


class Relay:
    """One process's relay. `links` are the departments it pushes to, with their secrets (by
    default every department that takes pushes)."""

    def __init__(
        self,
        outbound: Outbound,
        *,
        policy: RelayPolicy | None = None,
        links: Mapping[Department, DepartmentLink] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.outbound = outbound
        self.policy = policy or RelayPolicy()
        every = outbound.publisher.departments if links is None else links
        self.links = {dept.value: link for dept, link in every.items() if link.pushes}
        self.signers = {dept: Signer(link.secret()) for dept, link in self.links.items()}
        self.schedules = {
            dept: link.retry_schedule or self.policy.retry_schedule
            for dept, link in self.links.items()
        }
        self.worker = f"relay-{uuid.uuid4().hex[:12]}"
        self.client = client or httpx.Client(
            timeout=self.policy.timeout_seconds,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )
        self._pool = ThreadPoolExecutor(max_workers=self.policy.senders, thread_name_prefix="send")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()

    # --- fan-out ------------------------------------------------------------------------

    def fan_out(self) -> int:
        """Turn unpublished outbox rows into deliveries; returns how many rows it published."""
        now = self.outbound.clock.now()
        with unit_of_work(self.outbound.engine) as session:
            rows = session.execute(
                sa.select(col(Outbox.event_seq), col(Outbox.permit_id), col(PermitEvent.type))
                .join(PermitEvent, col(PermitEvent.seq) == col(Outbox.event_seq))
                .where(col(Outbox.published_at).is_(None))
                .order_by(col(Outbox.event_seq))
                .limit(self.policy.batch_size * 5)
                .with_for_update(of=OUTBOX)  # wait, not skip: keeps holders' order
            ).all()
            deliveries = [
                {"event_seq": seq, "department": department, "permit_id": permit_id}
                for seq, permit_id, event_type in rows
                for department, link in self.links.items()
                if link.subscribes_to(event_type)
            ]
            bulk.insert_rows(
                session,
                DELIVERY,
                deliveries,
                constants={
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                },
            )
            bulk.update_rows(
                session,
                OUTBOX,
                "event_seq",
                [{"event_seq": row.event_seq} for row in rows],
                constants={"published_at": now},
            )
        return len(rows)

    # --- delivery -----------------------------------------------------------------------

    def deliver_once(self) -> int:
        """Lease, build, send and record one batch; returns how many deliveries were tried."""
        batch = self._lease()
        if not batch:
            return 0
        failing: set[str] = set()  # departments that failed in this round
        outcomes = list(self._pool.map(functools.partial(self._send, failing=failing), batch))
        self._record(outcomes)
        return sum(outcome.tried for outcome in outcomes)

    def _lease(self) -> list[Outgoing]:
        """A batch to the departments whose circuit is closed, and one probe to each open
        department that is due one."""
        now = self.outbound.clock.now()
        lease_until = now + timedelta(seconds=self.policy.lease_seconds)
        with unit_of_work(self.outbound.engine) as session:
            held = circuit.open_circuits(session, self.links)
            flowing = [department for department in self.links if department not in held]
            claimed = []
            if flowing:
                claimed = list(session.execute(_due(flowing, now, self.policy.batch_size)))
            due = sorted(department for department, at in held.items() if at <= now)
            for department in circuit.claim_probes(session, due, now):
                probe = session.execute(_due([department], now, 1)).first()
                if probe is not None:
                    claimed.append(probe)
                    circuit.probing(session, department, lease_until)
            if not claimed:
                return []
            keys = [(row.event_seq, row.department) for row in claimed]
            session.execute(
                sa.update(Delivery)
                .where(sa.tuple_(col(Delivery.event_seq), col(Delivery.department)).in_(keys))
                .values(lease_until=lease_until, leased_by=self.worker)
                .execution_options(synchronize_session=False)
            )
            return self._build(session, claimed)

    def _build(self, session: Session, claimed: Sequence[sa.Row[Any]]) -> list[Outgoing]:
        """Each leased delivery's body: the event's holder record (built as the feed builds
        it), projected by the department's agreement and valid against the version in use;
        or the reason it cannot be sent."""
        today, publisher = self.outbound.clock.today(), self.outbound.publisher
        try:
            version = read_version_in_use(session, publisher.schemas)
        except RecordUnavailable as unavailable:
            return [_unsendable(row, unavailable) for row in claimed]
        records = publisher.event_records(
            session, version, sorted({row.event_seq for row in claimed})
        )
        agreed = {
            department: read_agreement_in_force(
                session, self.links[department], Department(department), today
            )
            for department in {row.department for row in claimed}
        }
        out = []
        for row in claimed:
            agreement, record = agreed[row.department], records[row.event_seq]
            try:
                if isinstance(agreement, Refusal):
                    raise RecordUnavailable(Text("没有在有效期内的数据共享协议", NOT_AGREED))
                if isinstance(record, RecordUnavailable):
                    raise record
                view = publisher.for_department(
                    version, agreement, record, today, str(row.event_seq)
                )
            except RecordUnavailable as unavailable:
                out.append(_unsendable(row, unavailable))
                continue
            body = json.dumps(view, ensure_ascii=False, separators=(",", ":")).encode()
            out.append(
                Outgoing(row.event_seq, row.department, row.attempts, body, trace_id=row.trace_id)
            )
        return out

    def _send(self, item: Outgoing, failing: set[str]) -> Outcome:
        """Send one record, unless its department already failed in this round: then it is
        not tried, and waits for the department's circuit like the rest of its backlog."""
        if item.body is None:
            return Outcome(item, False, item.error)
        if item.department in failing:
            return Outcome(item, False, None)
        link = self.links[item.department]
        headers = self.signers[item.department].headers(
            f"evt_{item.event_seq}", item.body, self.outbound.clock.now()
        )
        headers["traceparent"] = trace.child_of(item.trace_id)
        try:
            answer = self.client.post(link.endpoint, content=item.body, headers=headers)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        else:
            if answer.is_success:
                return Outcome(item, True, None)
            error = f"HTTP {answer.status_code}"
        failing.add(item.department)
        return Outcome(item, False, error)

    def _record(self, outcomes: Sequence[Outcome]) -> None:
        """Each outcome on its delivery, then each department's round on its circuit (in
        department order, the order every relay locks circuit rows in)."""
        now = self.outbound.clock.now()
        delivered = [(o.item.event_seq, o.item.department) for o in outcomes if o.delivered]
        untried = [(o.item.event_seq, o.item.department) for o in outcomes if not o.tried]
        with unit_of_work(self.outbound.engine) as session:
            if delivered:
                session.execute(
                    self._leased(delivered)
                    .values(
                        status=DELIVERED,
                        delivered_at=now,
                        last_attempt_at=now,
                        attempts=col(Delivery.attempts) + 1,
                        lease_until=None,
                        last_error=None,
                    )
                    .execution_options(synchronize_session=False)
                )
            if untried:
                session.execute(
                    self._leased(untried)
                    .values(lease_until=None)
                    .execution_options(synchronize_session=False)
                )
            counted = {outcome.item: "delivered" for outcome in outcomes if outcome.delivered}
            for outcome in outcomes:
                if outcome.tried and not outcome.delivered:
                    died = self._failed(session, outcome, now)
                    counted[outcome.item] = "dead" if died else "failed"
            rounds: dict[str, list[Outcome]] = {}
            for outcome in outcomes:
                if outcome.sent:
                    rounds.setdefault(outcome.item.department, []).append(outcome)
            for department, sent in sorted(rounds.items()):
                if any(outcome.delivered for outcome in sent):
                    circuit.answered(session, department, now)
                else:
                    error = sent[-1].error or "failed"
                    circuit.failed(session, department, error, now, self.schedules[department])
        for item, how in counted.items():
            metrics.DELIVERIES.labels(item.department, how).inc()

    def _leased(self, keys: list[tuple[int, str]]) -> sa.Update:
        """An UPDATE of these deliveries, as long as this worker still holds their lease."""
        return sa.update(Delivery).where(
            sa.tuple_(col(Delivery.event_seq), col(Delivery.department)).in_(keys),
            col(Delivery.leased_by) == self.worker,
        )

    def _failed(self, session: Session, outcome: Outcome, now: datetime) -> bool:
        """Record a failed attempt; True when the delivery is now dead."""
        attempts = outcome.item.attempts + 1
        schedule = self.schedules[outcome.item.department]
        retry_at = (
            None if outcome.item.body is None else self.policy.retry_at(schedule, attempts, now)
        )
        values: dict[str, Any] = {
            "status": DEAD if retry_at is None else PENDING,
            "attempts": attempts,
            "last_attempt_at": now,
            "lease_until": None,
            "last_error": (outcome.error or "failed")[:500],
        }
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        session.execute(
            self._leased([(outcome.item.event_seq, outcome.item.department)])
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if retry_at is None:
            log.warning(
                "delivery of event %s to %s is dead after %s attempt(s): %s",
                outcome.item.event_seq,
                outcome.item.department,
                attempts,
                outcome.error,
            )
        return retry_at is None

    # --- the loop -----------------------------------------------------------------------

    def run_once(self) -> int:
        """Fan out and deliver until nothing is due; returns deliveries attempted. Draining a
        backlog (after an outage, say) logs its progress every PROGRESS_SECONDS."""
        total, started = 0, time.monotonic()
        reported = started
        while True:
            published = self.fan_out()
            sent = self.deliver_once()
            total += sent
            if not published and not sent:
                break
            if time.monotonic() - reported >= PROGRESS_SECONDS:
                reported = time.monotonic()
                self._progress("draining", total, reported - started)
        if reported > started:
            self._progress("drained", total, time.monotonic() - started)
        return total

    def _progress(self, doing: str, tried: int, seconds: float) -> None:
        with Session(self.outbound.engine) as session:
            pending = session.execute(
                sa.select(sa.func.count()).where(
                    col(Delivery.status) == PENDING, col(Delivery.department).in_(self.links)
                )
            ).scalar_one()
        log.info(
            "relay %s: %d deliveries tried in %.0f s, %d pending",
            doing,
            tried,
            seconds,
            pending,
            extra={"tried": tried, "pending": pending},
        )

    def run(self, stop: threading.Event, idle_seconds: float = 0.2) -> None:
        """Until `stop` is set: work while there is work, then poll every `idle_seconds`.
        An error (the database restarting, say) is logged and the loop goes on."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("relay round failed; retrying")
            stop.wait(idle_seconds)


def _unsendable(row: sa.Row[Any], why: RecordUnavailable) -> Outgoing:
    """A leased delivery whose record cannot be built, with the reason."""
    return Outgoing(row.event_seq, row.department, row.attempts, None, why.text.en, row.trace_id)


def _due(
    departments: Sequence[str], now: datetime, limit: int
) -> sa.Select[int, str, int, str | None]:
    """The oldest due deliveries to these departments that may go without overtaking an
    earlier one of their holder, locked (skipping rows another relay has locked)."""
    earlier = aliased(Delivery)
    overtaking = (
        sa.select(sa.literal(1))
        .select_from(earlier)
        .where(
            col(earlier.department) == col(Delivery.department),
            col(earlier.permit_id) == col(Delivery.permit_id),
            col(earlier.event_seq) < col(Delivery.event_seq),
            col(earlier.status) != DELIVERED,
        )
    )
    return (
        sa.select(
            col(Delivery.event_seq),
            col(Delivery.department),
            col(Delivery.attempts),
            col(Outbox.trace_id),
        )
        .join(Outbox, col(Outbox.event_seq) == col(Delivery.event_seq))
        .where(
            col(Delivery.status) == PENDING,
            col(Delivery.next_attempt_at) <= now,
            sa.or_(col(Delivery.lease_until).is_(None), col(Delivery.lease_until) < now),
            col(Delivery.department).in_(departments),
            ~sa.exists(overtaking),
        )
        .order_by(col(Delivery.event_seq))
        .limit(limit)
        .with_for_update(skip_locked=True, of=DELIVERY)
    )


def start_relay(outbound: Outbound) -> tuple[Relay, threading.Event, threading.Thread]:
    """A relay thread for the app's lifespan; stop it with `stop_relay`."""
    relay = Relay(outbound)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), name="relay", daemon=True)
    thread.start()
    return relay, stop, thread


def stop_relay(relay: Relay, stop: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    thread.join(timeout=30)
    relay.close()
