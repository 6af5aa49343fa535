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
overtakes an earlier one, even across processes. A failed delivery waits with exponential
backoff and jitter; after `max_attempts` it is dead, and the holder's later deliveries to that
department wait until staff replay it (/exchange/v1/dead-letters).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from hub import bulk
from hub.auth.domain import Department
from hub.connectors.config import DepartmentLink
from hub.connectors.exchange import HOLDER_RECORD, exchangeable_version
from hub.connectors.records import holder_record
from hub.connectors.signing import Signer
from hub.connectors.store import DEAD, DELIVERED, PENDING, Delivery
from hub.db import unit_of_work
from hub.permits.identity import CitizenIdUnreadable
from hub.permits.service import permit_snapshot
from hub.permits.store import Outbox, Permit, PermitEvent, Registration
from hub.schemas import agreements
from hub.schemas.store import Agreement
from hub.schemas.validation import schema_uri

if TYPE_CHECKING:
    from hub.app import Hub

log = logging.getLogger(__name__)

DELIVERY: sa.Table = Delivery.__table__  # type: ignore[attr-defined]
OUTBOX: sa.Table = Outbox.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RelayPolicy:
    batch_size: int = 200
    lease_seconds: float = 30.0
    timeout_seconds: float = 5.0
    max_attempts: int = 8
    backoff_seconds: float = 1.0
    backoff_cap_seconds: float = 600.0
    senders: int = 16

    def retry_after(self, attempts: int) -> float:
        """Exponential with "equal jitter": half the delay fixed, half random, so receivers
        recovering from an outage are not hit by every relay at the same instant."""
        growth: float = 2.0 ** (attempts - 1)
        delay = min(self.backoff_cap_seconds, self.backoff_seconds * growth)
        return delay / 2 + random.uniform(0, delay / 2)


@dataclass(frozen=True)
class Outgoing:
    event_seq: int
    department: str
    attempts: int
    body: bytes | None  # None: not sendable (the reason is in `error`)
    error: str | None = None


@dataclass(frozen=True)
class Outcome:
    item: Outgoing
    delivered: bool
    error: str | None


class Relay:
    """One process's relay. `links` are the departments it pushes to, with their secrets."""

    def __init__(
        self,
        hub: Hub,
        *,
        policy: RelayPolicy | None = None,
        links: Mapping[Department, DepartmentLink] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.hub = hub
        self.policy = policy or RelayPolicy()
        every = hub.departments if links is None else links
        self.links = {dept.value: link for dept, link in every.items() if link.pushes}
        self.signers = {dept: Signer(link.secret()) for dept, link in self.links.items()}
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
        now = self.hub.clock.now()
        with unit_of_work(self.hub.engine) as session:
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
        """Lease, build, send and record one batch; returns how many were attempted."""
        batch = self._lease()
        if not batch:
            return 0
        outcomes = list(self._pool.map(self._send, batch))
        self._record(outcomes)
        return len(outcomes)

    def _lease(self) -> list[Outgoing]:
        now = self.hub.clock.now()
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
        due = (
            sa.select(col(Delivery.event_seq), col(Delivery.department), col(Delivery.attempts))
            .where(
                col(Delivery.status) == PENDING,
                col(Delivery.next_attempt_at) <= now,
                sa.or_(col(Delivery.lease_until).is_(None), col(Delivery.lease_until) < now),
                col(Delivery.department).in_(list(self.links)),
                ~sa.exists(overtaking),
            )
            .order_by(col(Delivery.event_seq))
            .limit(self.policy.batch_size)
            .with_for_update(skip_locked=True, of=DELIVERY)
        )
        with unit_of_work(self.hub.engine) as session:
            claimed = session.execute(due).all()
            if not claimed:
                return []
            keys = [(row.event_seq, row.department) for row in claimed]
            session.execute(
                sa.update(Delivery)
                .where(sa.tuple_(col(Delivery.event_seq), col(Delivery.department)).in_(keys))
                .values(
                    lease_until=now + timedelta(seconds=self.policy.lease_seconds),
                    leased_by=self.worker,
                )
                .execution_options(synchronize_session=False)
            )
            return self._build(session, claimed, now)

    def _build(
        self, session: Session, claimed: Sequence[sa.Row[Any]], now: datetime
    ) -> list[Outgoing]:
        """Each leased delivery's signed-ready body: projected, validated, or refused."""
        seqs = sorted({row.event_seq for row in claimed})
        events = {
            event.seq: event
            for event in session.exec(select(PermitEvent).where(col(PermitEvent.seq).in_(seqs)))
        }
        snapshots = dict(
            session.execute(
                sa.select(col(Outbox.event_seq), col(Outbox.snapshot)).where(
                    col(Outbox.event_seq).in_(seqs)
                )
            ).all()
        )
        permit_ids = {event.permit_id for event in events.values()}
        permits = {
            permit.id: permit
            for permit in session.exec(select(Permit).where(col(Permit.id).in_(permit_ids)))
        }
        registration_ids = {permit.registration_id for permit in permits.values()}
        registrations = {
            registration.id: registration
            for registration in session.exec(
                select(Registration).where(col(Registration.id).in_(registration_ids))
            )
        }
        schema = exchangeable_version(session, HOLDER_RECORD)
        agreed = self._agreements(session)
        today = self.hub.clock.today()
        validator = None
        if schema is not None:
            self.hub.schemas.remember(session, schema)
            validator = self.hub.schemas.validators.get(schema.subject, schema.version)
        out = []
        for row in claimed:

            def refused(error: str, row: sa.Row[Any] = row) -> Outgoing:
                return Outgoing(row.event_seq, row.department, row.attempts, None, error)

            agreement = agreed.get(row.department)
            if schema is None or validator is None:
                out.append(refused("no holder-record version is ACTIVE"))
                continue
            if agreement is None or not agreements.terms_of(agreement).in_force(today):
                out.append(refused("no data-sharing agreement in force"))
                continue
            event = events[row.event_seq]
            permit = permits[event.permit_id]
            registration = registrations[permit.registration_id]
            try:
                citizen_id = self.hub.vault.open(registration.citizen_id_sealed).value
            except CitizenIdUnreadable as unreadable:  # never send a record without its holder
                out.append(refused(f"citizen ID unreadable: {unreadable}"))
                continue
            record = holder_record(
                schema_uri=schema_uri(schema.subject, schema.version),
                schema_version=schema.version,
                event_seq=event.seq or 0,
                event_type=event.type,
                at=event.at,
                snapshot=snapshots.get(row.event_seq) or permit_snapshot(permit),
                registration=registration,
                citizen_id=citizen_id,
            )
            projected = self.hub.projections.project(agreement, schema.definition, record, today)
            issues = validator.errors(projected.record)
            if issues:
                where = ", ".join(issue.pointer or "/" for issue in issues[:5])
                out.append(
                    refused(f"record invalid against {schema.subject}:{schema.version} at {where}")
                )
                continue
            body = json.dumps(projected.record, ensure_ascii=False, separators=(",", ":"))
            out.append(Outgoing(row.event_seq, row.department, row.attempts, body.encode()))
        return out

    def _agreements(self, session: Session) -> dict[str, Agreement]:
        found = {}
        for department, link in self.links.items():
            try:
                row = agreements.latest(session, link.agreement)
            except agreements.AgreementNotFound:
                continue
            if row.department == department:  # an agreement is only ever its own department's
                found[department] = row
        return found

    def _send(self, item: Outgoing) -> Outcome:
        if item.body is None:
            return Outcome(item, False, item.error)
        link = self.links[item.department]
        headers = self.signers[item.department].headers(
            f"evt_{item.event_seq}", item.body, self.hub.clock.now()
        )
        try:
            answer = self.client.post(link.endpoint, content=item.body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(item, False, f"{type(exc).__name__}: {exc}"[:500])
        if answer.is_success:
            return Outcome(item, True, None)
        return Outcome(item, False, f"HTTP {answer.status_code}")

    def _record(self, outcomes: Iterable[Outcome]) -> None:
        now = self.hub.clock.now()
        delivered = [(o.item.event_seq, o.item.department) for o in outcomes if o.delivered]
        with unit_of_work(self.hub.engine) as session:
            if delivered:
                session.execute(
                    sa.update(Delivery)
                    .where(
                        sa.tuple_(col(Delivery.event_seq), col(Delivery.department)).in_(delivered),
                        col(Delivery.leased_by) == self.worker,
                    )
                    .values(
                        status=DELIVERED,
                        delivered_at=now,
                        attempts=col(Delivery.attempts) + 1,
                        lease_until=None,
                        last_error=None,
                    )
                    .execution_options(synchronize_session=False)
                )
            for outcome in outcomes:
                if not outcome.delivered:
                    self._failed(session, outcome, now)

    def _failed(self, session: Session, outcome: Outcome, now: datetime) -> None:
        attempts = outcome.item.attempts + 1
        final = outcome.item.body is None or attempts >= self.policy.max_attempts
        session.execute(
            sa.update(Delivery)
            .where(
                col(Delivery.event_seq) == outcome.item.event_seq,
                col(Delivery.department) == outcome.item.department,
                col(Delivery.leased_by) == self.worker,
            )
            .values(
                status=DEAD if final else PENDING,
                attempts=attempts,
                next_attempt_at=now + timedelta(seconds=self.policy.retry_after(attempts)),
                lease_until=None,
                last_error=(outcome.error or "failed")[:500],
            )
            .execution_options(synchronize_session=False)
        )
        if final:
            log.warning(
                "delivery of event %s to %s is dead: %s",
                outcome.item.event_seq,
                outcome.item.department,
                outcome.error,
            )

    # --- the loop -----------------------------------------------------------------------

    def run_once(self) -> int:
        """Fan out and deliver until nothing is due; returns deliveries attempted."""
        total = 0
        while True:
            published = self.fan_out()
            sent = self.deliver_once()
            total += sent
            if not published and not sent:
                return total

    def run(self, stop: threading.Event, idle_seconds: float = 0.2) -> None:
        """Until `stop` is set: work while there is work, then poll every `idle_seconds`.
        An error (the database restarting, say) is logged and the loop goes on."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("relay round failed; retrying")
            stop.wait(idle_seconds)


def start_relay(hub: Hub) -> tuple[Relay, threading.Event, threading.Thread]:
    """A relay thread for the app's lifespan; stop it with `stop_relay`."""
    relay = Relay(hub)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), name="relay", daemon=True)
    thread.start()
    return relay, stop, thread


def stop_relay(relay: Relay, stop: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    thread.join(timeout=30)
    relay.close()
