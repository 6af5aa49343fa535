"""Delivery under faults, with every party a real process on 127.0.0.1.

Receivers answer 500, time out, close connections, die with SIGKILL and come back; relays die
with SIGKILL mid-batch, two run at once, and one stalls in the middle of its fan-out.
Whatever happens, when the faults end every
event has reached every department that subscribes to its type, exactly once in the
department's store (a repeat is only ever counted as a duplicate of the same webhook-id), and
each holder's events arrived in the order they happened.

PostgreSQL only: several processes share the database, which is what the relay's row locks
and leases are for (SQLite would serialise them whole). The database is chosen by
parametrising its fixture, so nothing is skipped. Events are produced through the real
services in this process; the relays and receivers read and write the same database.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub.composition import Hub
from hub.connectors.config import PARTNERS
from hub.connectors.receiver import read_received
from hub.connectors.relay import RelayPolicy
from hub.connectors.signing import new_secret
from hub.connectors.store import CLOSED, DELIVERED, OPEN, PENDING, Delivery, DepartmentCircuit
from hub.db import is_postgresql, unit_of_work
from hub.permits import domain
from hub.permits.store import Outbox, Permit, PermitEvent
from tests.commands import hub_env
from tests.conftest import seed_shipped_agreements
from tests.connectors.helpers import act_on, holders
from tests.connectors.processes import HUB, Process, Processes, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
ALL_EVENTS = ["issue", "endorse", "suspend", "replace", "renew", "change-address", "cancel"]
SUBSCRIPTIONS = {
    "hr-social-security": [*ALL_EVENTS, "settle"],
    "housing": ["issue", "cancel"],  # not endorse: what it does not take must not reach it
    "education": ["issue", "endorse", "suspend", "change-address", "cancel", "settle"],
    "health": ["issue", "endorse", "suspend", "change-address", "cancel", "settle"],
    "civil-affairs": ["issue", "endorse", "suspend", "change-address", "cancel", "settle"],
}
DRAIN_SECONDS = 40.0

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@dataclass
class Exchange:
    """The hub's database, the five departments' ports and stores, and the processes."""

    hub: Hub
    processes: Processes
    ports: dict[str, int]
    stores: dict[str, Path]
    receivers: dict[str, Process] = field(default_factory=dict)
    relays: list[Process] = field(default_factory=list)

    def url(self, department: str) -> str:
        return f"http://127.0.0.1:{self.ports[department]}"

    def serve(self, *departments: str) -> None:
        """The shipped receivers (`hub department serve`), all started before any is waited
        for, since each takes a second to import."""
        started = {
            department: self.processes.start(
                f"{department}-{self.ports[department]}",
                HUB,
                *("department", "serve", "--department", department),
                *("--port", str(self.ports[department]), "--store", str(self.stores[department])),
            )
            for department in departments
        }
        for department, process in started.items():
            self.processes.wait_healthy(process, self.ports[department])
            self.receivers[department] = process

    def replace(self, department: str) -> None:
        """SIGKILL whatever answers on the department's port; serve it again on the same port
        and the same store."""
        self.receivers.pop(department).kill()
        self.serve(department)

    def received(self, department: str) -> list[dict[str, Any]]:
        return read_received(self.url(department))

    def deliveries(self) -> list[Delivery]:
        with Session(self.hub.engine) as session:
            query = select(Delivery).order_by(col(Delivery.event_seq), col(Delivery.department))
            return list(session.exec(query).all())

    def events(self) -> list[tuple[int, str, str]]:
        """(seq, permit id, type) of every event, in the order they happened."""
        with Session(self.hub.engine) as session:
            query = sa.select(
                col(PermitEvent.seq), col(PermitEvent.permit_id), col(PermitEvent.type)
            ).order_by(col(PermitEvent.seq))
            return [(seq, permit_id, kind) for seq, permit_id, kind in session.execute(query)]

    def expected(self) -> set[tuple[str, int]]:
        """(department, event seq) for every event its subscription takes."""
        return {
            (department, seq)
            for seq, _, kind in self.events()
            for department, events in SUBSCRIPTIONS.items()
            if kind in events
        }

    def stored_but_unrecorded(self, *departments: str) -> set[tuple[str, int]]:
        """Deliveries a receiver kept while the database still says pending: the relay has
        not learnt of them, and if it never does they must come again, as duplicates of the
        same webhook-id. The stores are read first: a delivery in both was kept before the
        database was read, and was still unrecorded then."""
        kept = {
            (department, int(row["webhook_id"].removeprefix("evt_")))
            for department in departments or tuple(self.receivers)
            for row in self.received(department)
        }
        return kept & self.pending()

    def pending(self) -> set[tuple[str, int]]:
        return {(d.department, d.event_seq) for d in self.deliveries() if d.status == PENDING}

    def status(self) -> str:
        """What is left to do, and the relays' last words, for a timeout's message."""
        counts: dict[tuple[str, str, str | None], int] = defaultdict(int)
        for d in self.deliveries():
            if d.status != DELIVERED:
                counts[(d.department, d.status, (d.last_error or "")[:80])] += 1
        relays = "\n".join(f"--- {r.name}:\n{r.output(1500)}" for r in self.relays)
        return f"undelivered: {dict(counts)}\n{relays}"

    def drain(self, timeout: float = DRAIN_SECONDS) -> None:
        """Wait until every outbox row is fanned out and every delivery is delivered."""
        expected = len(self.expected())

        def done() -> bool:
            with Session(self.hub.engine) as session:
                unpublished = session.execute(
                    sa.select(sa.func.count()).where(col(Outbox.published_at).is_(None))
                ).scalar_one()
            rows = self.deliveries()
            return not unpublished and len(rows) == expected and all_delivered(rows)

        try:
            wait_for(done, "every delivery to be delivered", timeout=timeout, every=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.status()}") from None

    def assert_everything_arrived(self) -> dict[tuple[str, int], int]:
        """Every subscribed event at every department, once, in per-holder order; returns the
        duplicates each receiver counted, by (department, event seq)."""
        self.drain()
        events = {seq: (permit_id, kind) for seq, permit_id, kind in self.events()}
        expected = self.expected()
        assert {(d.department, d.event_seq) for d in self.deliveries()} == expected
        duplicates: dict[tuple[str, int], int] = {}
        for department in SUBSCRIPTIONS:
            rows = self.received(department)
            seqs = [int(row["webhook_id"].removeprefix("evt_")) for row in rows]
            assert len(seqs) == len(set(seqs)), f"{department} stored a webhook-id twice"
            assert {(department, seq) for seq in seqs} == {
                pair for pair in expected if pair[0] == department
            }, f"{department} did not get exactly its subscribed events"
            for seq, row in zip(seqs, rows, strict=True):
                record = row["record"]
                # The record is the event its webhook-id names: a resend under another id
                # would be stored as a second row about the same event, caught here.
                assert record["event"]["id"] == str(seq)
                assert (record["permit"]["id"], record["event"]["type"]) == events[seq]
                duplicates[(department, seq)] = row["duplicates"]
            arrived: dict[str, list[int]] = defaultdict(list)
            for seq in seqs:
                arrived[events[seq][0]].append(seq)
            for permit_id, order in arrived.items():
                assert order == sorted(order), f"{department}: {permit_id} out of order {order}"
        return duplicates


def all_delivered(rows: Sequence[Delivery]) -> bool:
    return all(d.status == DELIVERED for d in rows)


@pytest.fixture
def exchange(hub: Hub, database_url: str, tmp_path: Path) -> Iterator[Exchange]:
    """Five departments on free ports in a departments file of this test, their secrets in
    the environment of every process started, and the shipped agreements in the database."""
    assert is_postgresql(hub.engine)
    seed_shipped_agreements(hub)
    ports = {department.value: free_port() for department in PARTNERS}
    secrets: dict[str, str] = {}
    lines = []
    for department, events in SUBSCRIPTIONS.items():
        variable = "HUB_WEBHOOK_SECRET_" + department.upper().replace("-", "_")
        secrets[variable] = new_secret()
        lines += [
            f"[departments.{department}]",
            f'endpoint = "http://127.0.0.1:{ports[department]}/webhooks/holder-records"',
            f'secret_env = "{variable}"',
            f'agreement = "{department}-holders"',
            'delivery = "push"',
            f"events = {json.dumps(events)}",  # a JSON array of strings is TOML
            "",
        ]
    departments_file = tmp_path / "departments.toml"
    departments_file.write_text("\n".join(lines), encoding="utf-8")
    environment = hub_env(
        database_url,
        HUB_DEPARTMENTS_FILE=str(departments_file),
        HUB_AGREEMENTS_DIR=str(ROOT / "config" / "agreements"),
        HUB_RELAY_ENABLED="false",
        HUB_SCHEDULER_ENABLED="false",
        **secrets,
    )
    (tmp_path / "logs").mkdir()
    processes = Processes(tmp_path / "logs", environment)
    stores = {department: tmp_path / f"received-{department}.db" for department in ports}
    try:
        yield Exchange(hub, processes, ports, stores)
    finally:
        processes.close()


def live(hub: Hub, permits: Sequence[str], first: int = 0) -> None:
    """Each holder's story, told event after event through the services: issued; every third
    endorsed in the window before expiry; every fourth then cancelled."""
    for n, permit_id in enumerate(permits, start=first):
        version = 1
        act_on(hub, permit_id, domain.Action.ISSUE, version)
        version += 1
        if n % 3 == 0:
            with unit_of_work(hub.engine) as session:  # the window opens 30 days before expiry
                permit = session.get(Permit, permit_id)
                assert permit is not None
                permit.expires_on = hub.clock.today() + timedelta(days=10)
                session.add(permit)
            act_on(hub, permit_id, domain.Action.ENDORSE, version)
            version += 1
        if n % 4 == 0:
            act_on(hub, permit_id, domain.Action.CANCEL, version)


def test_a_department_answering_500_is_probed_not_hammered_and_gets_everything_once_back(
    exchange: Exchange,
) -> None:
    """While health refuses every delivery, the round that finds it failing opens its circuit:
    from then on it gets one probe at a time, and the records held back behind the circuit
    (every holder's later ones, and most first ones) are never tried. Restarted healthy on
    the same port, health gets them all, in order."""
    hub = exchange.hub
    exchange.receivers["health"] = exchange.processes.receiver(
        "health", exchange.ports["health"], exchange.stores["health"], fail_with=500
    )
    exchange.serve("hr-social-security", "housing", "education", "civil-affairs")
    permits = holders(hub, 80)
    live(hub, permits)
    exchange.relays.append(exchange.processes.relay("relay"))

    def probed_while_refusing() -> bool:
        rows = exchange.deliveries()
        others = [d for d in rows if d.department != "health"]
        state = circuit_of(hub, "health")
        return (
            len(rows) == len(exchange.expected())
            and all_delivered(others)
            and state is not None
            and state.state == OPEN
            and state.failures >= 4  # the round that opened it, then three probes
        )

    wait_for(probed_while_refusing, "health's circuit to open and be probed three times")
    health = [d for d in exchange.deliveries() if d.department == "health"]
    state = circuit_of(hub, "health")  # read after the deliveries: no fewer rounds than they show
    assert state is not None and state.last_error == "HTTP 500"
    assert {d.status for d in health} == {PENDING}
    # Every attempt was in the opening round (at most one per sender at once) or a probe.
    tried = sum(d.attempts for d in health)
    assert tried <= RelayPolicy().senders + state.failures - 1
    first_of_holder = {min(d.event_seq for d in health if d.permit_id == p) for p in permits}
    later = [d for d in health if d.event_seq not in first_of_holder]
    assert later and all(d.attempts == 0 for d in later)  # held back, never tried
    assert exchange.received("health") == []

    exchange.replace("health")
    exchange.assert_everything_arrived()
    state = circuit_of(hub, "health")
    assert state is not None and (state.state, state.failures) == (CLOSED, 0)


def circuit_of(hub: Hub, department: str) -> DepartmentCircuit | None:
    with Session(hub.engine) as session:
        return session.get(DepartmentCircuit, department)


def test_timeouts_and_closed_connections_then_a_good_receiver_on_the_same_port(
    exchange: Exchange,
) -> None:
    """Education's port is held by a server that hangs up on half the connections and never
    answers the other half; the relay's timeout ends those. A good receiver then takes the
    port over and everything arrives."""
    hub = exchange.hub
    port = exchange.ports["education"]
    exchange.receivers["education"] = exchange.processes.misbehaving("education-bad", port)
    exchange.serve("hr-social-security", "housing", "health", "civil-affairs")
    permits = holders(hub, 60)
    live(hub, permits)
    exchange.relays.append(exchange.processes.relay("relay", batch_size=40, timeout_seconds=0.5))

    def both_faults_seen() -> bool:
        errors = " ".join(
            d.last_error or "" for d in exchange.deliveries() if d.department == "education"
        )
        return "ReadTimeout" in errors and "RemoteProtocolError" in errors

    wait_for(both_faults_seen, "education deliveries to time out and to be hung up on")
    exchange.replace("education")
    exchange.assert_everything_arrived()


def test_a_receiver_killed_mid_stream_keeps_what_it_stored_and_counts_the_repeats(
    exchange: Exchange,
) -> None:
    """Civil affairs answers slowly and is SIGKILLed while records are in flight; events go
    on happening while it is down. Restarted on the same store, it ends with every record
    once: whatever it kept but never acknowledged comes again under the same webhook-id."""
    hub = exchange.hub
    exchange.receivers["civil-affairs"] = exchange.processes.receiver(
        "civil-affairs",
        exchange.ports["civil-affairs"],
        exchange.stores["civil-affairs"],
        answer_after=0.5,
    )
    exchange.serve("hr-social-security", "housing", "education", "health")
    permits = holders(hub, 80)
    live(hub, permits[:40])
    exchange.relays.append(exchange.processes.relay("relay"))

    wait_for(
        lambda: exchange.stored_but_unrecorded("civil-affairs"),
        "a civil-affairs record kept but not yet acknowledged",
    )
    exchange.receivers.pop("civil-affairs").kill()
    unacknowledged = kept_in(exchange.stores["civil-affairs"], "civil-affairs") & exchange.pending()
    assert unacknowledged  # it answers 0.5 s after keeping a record: ample time to kill it

    live(hub, permits[40:], first=40)  # life goes on while the department is down

    def refused_connection() -> bool:
        return any(
            "ConnectError" in (d.last_error or "")
            for d in exchange.deliveries()
            if d.department == "civil-affairs"
        )

    wait_for(refused_connection, "the relay to find civil affairs down")
    exchange.serve("civil-affairs")
    duplicates = exchange.assert_everything_arrived()
    assert all(duplicates[pair] >= 1 for pair in unacknowledged)


def kept_in(store: Path, department: str) -> set[tuple[str, int]]:
    """What a dead receiver's SQLite store holds, read straight from the file."""
    with sqlite3.connect(store) as connection:
        rows = connection.execute("SELECT webhook_id FROM deliveries").fetchall()
    return {(department, int(webhook_id.removeprefix("evt_"))) for (webhook_id,) in rows}


def test_a_relay_killed_mid_batch_is_taken_over_after_its_leases_expire(
    exchange: Exchange,
) -> None:
    """SIGKILL a relay while its batch is in flight (HR answers slowly, so records are kept
    before the relay hears back). Its leases stay; a new relay waits them out and sends those
    deliveries again under the same webhook-ids: each counted once more as a duplicate, none
    stored twice, none lost."""
    hub = exchange.hub
    slow = "hr-social-security"
    exchange.receivers[slow] = exchange.processes.receiver(
        slow, exchange.ports[slow], exchange.stores[slow], answer_after=0.5
    )
    exchange.serve("housing", "education", "health", "civil-affairs")
    permits = holders(hub, 80)
    live(hub, permits)
    first = exchange.processes.relay("relay-1", lease_seconds=3.0, batch_size=100)
    exchange.relays.append(first)

    def mid_batch() -> bool:
        delivered = sum(d.status == DELIVERED for d in exchange.deliveries())
        return delivered >= 50 and bool(exchange.stored_but_unrecorded(slow))

    wait_for(mid_batch, "a batch in flight after some deliveries")
    first.kill()
    killed_at = datetime.now().astimezone()
    orphaned = exchange.stored_but_unrecorded()
    leases = {
        (d.department, d.event_seq): d.lease_until
        for d in exchange.deliveries()
        if d.lease_until is not None
    }
    assert orphaned
    assert all(pair in leases and leases[pair] > killed_at for pair in orphaned)

    second = exchange.processes.relay("relay-2", lease_seconds=3.0, batch_size=100)
    exchange.relays.append(second)
    duplicates = exchange.assert_everything_arrived()
    assert all(duplicates[pair] >= 1 for pair in orphaned)
    after = {(d.department, d.event_seq): d for d in exchange.deliveries()}
    for pair in orphaned:  # sent again only once the dead relay's lease had run out
        delivered_at = after[pair].delivered_at
        assert delivered_at is not None and delivered_at >= leases[pair]


def test_two_relays_at_once_lose_nothing_and_keep_each_holders_order(
    exchange: Exchange,
) -> None:
    """A fault-test relay with small batches and the shipped `hub relay` work the same
    outbox while events keep coming: both deliver, nothing is lost, and at every department
    each holder's events arrive in ascending order."""
    hub = exchange.hub
    exchange.serve(*SUBSCRIPTIONS)
    permits = holders(hub, 120)
    exchange.relays.append(exchange.processes.relay("relay-small", batch_size=5))
    shipped = exchange.processes.start("relay-shipped", HUB, "relay")
    exchange.relays.append(shipped)
    wait_for(lambda: "delivering to" in shipped.output() or not shipped.alive, "hub relay")
    assert shipped.alive, shipped.output()

    live(hub, permits)  # while both relays poll the outbox
    exchange.assert_everything_arrived()
    workers = {d.leased_by for d in exchange.deliveries()}
    assert len(workers) == 2, workers


def test_a_relay_slow_in_its_fan_out_is_not_overtaken_by_another(exchange: Exchange) -> None:
    """Another relay's fan-out transaction holds a holder's first outbox row (locked, not yet
    turned into deliveries: a relay paused mid-fan-out by a long batch, the CPU or the network).
    The relay process must not fan out and deliver that holder's later events meanwhile: they
    would reach the departments before the first one."""
    hub = exchange.hub
    exchange.serve(*SUBSCRIPTIONS)
    permits = holders(hub, 20)
    live(hub, permits)  # the first holder is issued, endorsed and cancelled
    first, *later = [seq for seq, permit_id, _ in exchange.events() if permit_id == permits[0]]
    assert later

    def waiting_or_overtaken() -> bool:
        with hub.engine.connect() as connection:
            waiting = connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        overtaken = any(
            d.event_seq in later and d.status == DELIVERED for d in exchange.deliveries()
        )
        return bool(waiting) or overtaken

    with hub.engine.connect() as other:
        fanning_out = other.begin()
        other.execute(
            sa.select(col(Outbox.event_seq)).where(col(Outbox.event_seq) == first).with_for_update()
        )
        exchange.relays.append(exchange.processes.relay("relay"))
        wait_for(waiting_or_overtaken, "the relay to wait for the locked outbox row")
        fanning_out.rollback()
    exchange.assert_everything_arrived()
