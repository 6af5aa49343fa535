"""Departments that go down, on the hub's clock, on both databases: the reference receiver on
127.0.0.1 behind a switch that makes it answer 503 while "down", and the relay run again and
again as simulated time passes. The switch counts what the department saw, at the hub
clock's time.

A twelve-hour outage loses nothing and needs no staff: the department gets single probes at
its schedule's times, then everything, in order per holder. A delivery is dead only after its
whole schedule. Probes are one at a time across relays. Staff of a department see and replay
only their own department's deliveries; public security, which runs the hub, sees them all.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import Request, Response
from fastapi.testclient import TestClient

from hub.auth.domain import Department
from hub.clock import FixedClock
from hub.composition import Hub
from hub.connectors.config import (
    STANDARD_RETRIES,
    DeliveryMode,
    DepartmentLink,
    RetrySchedule,
    load_departments,
)
from hub.connectors.receiver import create_receiver
from hub.connectors.relay import Relay, RelayPolicy
from hub.connectors.signing import new_secret
from hub.db import INT_MAX, aware
from hub.permits import domain
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient, seed_shipped_agreements
from tests.connectors.helpers import Receiver, act_on, deliveries_of, holders

POLICY = RelayPolicy(timeout_seconds=2.0)
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Switch:
    """A receiver's outage switch and what it saw: each webhook request with the hub clock's
    time and whether the department was down then, and the most requests it held at once
    while down. `hold`, when set, keeps requests waiting until it is set."""

    clock: FixedClock
    down: bool = False
    seen: list[tuple[datetime, bool]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight_down: int = 0
    hold: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)

    def seen_down(self) -> list[datetime]:
        return [at for at, down in self.seen if down]

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not request.url.path.startswith("/webhooks"):
            return await call_next(request)
        self.seen.append((self.clock.now(), self.down))
        self.in_flight += 1
        if self.down:
            self.most_in_flight_down = max(self.most_in_flight_down, self.in_flight)
        self.arrived.set()
        try:
            if self.hold is not None:
                await anyio.to_thread.run_sync(self.hold.wait)
            return Response(status_code=503) if self.down else await call_next(request)
        finally:
            self.in_flight -= 1


@dataclass
class Served:
    """A department's link (every event type), its receiver and the receiver's switch."""

    link: DepartmentLink
    receiver: Receiver
    switch: Switch


def serve(
    department: Department, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Served:
    """The reference receiver of `department`, judging webhook timestamps by the hub's clock."""
    secret = new_secret()
    env = f"HUB_TEST_SECRET_{department.name}"
    monkeypatch.setenv(env, secret)
    app = create_receiver(
        department.value, secret, tmp_path / f"{department.value}.db", clock=clock
    )
    switch = Switch(clock)
    app.middleware("http")(switch)
    receiver = Receiver(app)
    link = DepartmentLink(
        endpoint=f"{receiver.url}/webhooks/holder-records",
        secret_env=env,
        agreement=f"{department.value}-holders",
        delivery=DeliveryMode.PUSH,
        events=("*",),
    )
    return Served(link, receiver, switch)


@pytest.fixture
def agreed(hub: Hub) -> Hub:
    """The shipped agreements, as on a first start with config/agreements."""
    return seed_shipped_agreements(hub)


@pytest.fixture
def education(
    clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Served]:
    served = serve(Department.EDUCATION, clock, tmp_path, monkeypatch)
    yield served
    served.receiver.stop()


def run_until(
    relay: Relay, clock: FixedClock, end: datetime, step: Callable[[], timedelta]
) -> None:
    """Let simulated time pass until `end`, the relay running at every step as the hub's
    relay loop would."""
    while clock.now() < end:
        relay.run_once()
        clock.advance(step())
    relay.run_once()


def staff(app_client: TestClient, register_client: RegisterClient, department: str) -> Any:
    """Headers of a fresh exchange:admin token of `department` (tokens expire as the
    simulated hours pass)."""
    client = register_client(department, ("exchange:admin",))
    return bearer(access_token(app_client, client))


def arrivals(received: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Each holder's event numbers, in the order they arrived."""
    arrived: dict[str, list[int]] = {}
    for row in received:
        record = row["record"]
        arrived.setdefault(record["permit"]["id"], []).append(int(record["event"]["id"]))
    return arrived


def test_a_department_down_for_twelve_hours_gets_everything_in_order_with_no_staff(
    agreed: Hub,
    clock: FixedClock,
    education: Served,
    app_client: TestClient,
    register_client: RegisterClient,
) -> None:
    permits = holders(agreed, 6)
    for permit_id in permits[:3]:
        act_on(agreed, permit_id, domain.Action.ISSUE, 1)
    relay = Relay(agreed.outbound, links={Department.EDUCATION: education.link}, policy=POLICY)
    # Life goes on during the outage: (time after it began, permit, action, permit version).
    story = [
        (timedelta(minutes=1), permits[0], domain.Action.CANCEL, 2),
        (timedelta(hours=2), permits[3], domain.Action.ISSUE, 1),
        (timedelta(hours=3), permits[1], domain.Action.CANCEL, 2),
        (timedelta(hours=5), permits[4], domain.Action.ISSUE, 1),
        (timedelta(hours=8), permits[5], domain.Action.ISSUE, 1),
        (timedelta(hours=9), permits[3], domain.Action.CANCEL, 2),
        (timedelta(hours=11), permits[4], domain.Action.CANCEL, 2),
    ]
    went_down = clock.now()

    def step() -> timedelta:
        """Ten seconds in the outage's first hour, five minutes after."""
        return timedelta(seconds=10 if clock.now() - went_down < timedelta(hours=1) else 300)

    def live(until: timedelta) -> None:
        """The story's events up to `until` into the outage, each at its time."""
        for after, permit_id, action, version in story:
            if clock.now() <= went_down + after <= went_down + until:
                run_until(relay, clock, went_down + after, step)
                act_on(agreed, permit_id, action, version)
        run_until(relay, clock, went_down + until, step)

    try:
        assert relay.run_once() == 3
        education.switch.down = True
        live(timedelta(hours=6))
        headers = staff(app_client, register_client, "education")
        (state,) = app_client.get("/exchange/v1/departments", headers=headers).json()
        assert (state["state"], state["last_error"]) == ("open", "HTTP 503")
        assert state["last_success_at"] == went_down.isoformat()
        assert state["backlog"] == 4  # cancellations of holders 0 and 1, issues of 3 and 4
        assert state["oldest_pending_age_seconds"] == (6 * 60 - 1) * 60
        assert state["dead_letters"] == 0

        live(timedelta(hours=12))
        education.switch.down = False
        came_back = clock.now()
        run_until(relay, clock, came_back + timedelta(hours=2), step)
    finally:
        relay.close()

    # While down: single probes, each at least its round's wait after the one before (a
    # tenth more for the deliveries' jitter, a step more for the loop's granularity).
    probes = education.switch.seen_down()
    assert education.switch.most_in_flight_down == 1
    assert probes[0] == went_down + timedelta(minutes=1)
    for failures, (before, after) in enumerate(itertools.pairwise(probes), start=1):
        wait = STANDARD_RETRIES.probe_wait(failures)
        assert wait <= after - before <= wait * 1.1 + timedelta(minutes=5), (failures, probes)
    assert 12 <= len(probes) <= 17  # 5 s, 1, 5, 15 and 30 min, then hourly, in 12 h
    assert came_back - probes[-1] <= timedelta(hours=1.1)

    # Then everything, once, in per-holder order, within the hour; no dead letter, no replay.
    deliveries = deliveries_of(agreed)
    assert len(deliveries) == 3 + len(story)
    assert {d.status for d in deliveries} == {"delivered"}
    last = max(aware(d.delivered_at) for d in deliveries if d.delivered_at is not None)
    assert last <= came_back + timedelta(hours=1.1, minutes=5)
    received = education.receiver.received()
    got = sorted(int(row["webhook_id"].removeprefix("evt_")) for row in received)
    assert got == [d.event_seq for d in deliveries]
    assert all(order == sorted(order) for order in arrivals(received).values())
    assert [len(arrivals(received)[permit_id]) for permit_id in permits] == [2, 2, 1, 2, 2, 1]
    # Every attempt is a request the department saw: what waited behind the circuit spent
    # nothing of its schedule.
    assert sum(d.attempts for d in deliveries) == len(deliveries) + len(probes)
    headers = staff(app_client, register_client, "education")
    assert app_client.get("/exchange/v1/dead-letters", headers=headers).json() == []
    (state,) = app_client.get("/exchange/v1/departments", headers=headers).json()
    assert (state["state"], state["backlog"], state["oldest_pending_age_seconds"]) == (
        "closed",
        0,
        None,
    )


def test_a_delivery_is_dead_only_after_its_whole_schedule(
    agreed: Hub,
    clock: FixedClock,
    education: Served,
    app_client: TestClient,
    register_client: RegisterClient,
) -> None:
    """Education's own schedule: three attempts twelve hours apart. Down for good, its
    delivery is tried three times and is dead only then, a day after the first; the holder's
    later event waits behind it until staff replay it."""
    schedule = RetrySchedule.model_validate(["PT12H", "PT12H"])
    link = education.link.model_copy(update={"retry_schedule": schedule})
    education.switch.down = True
    (permit_id,) = holders(agreed, 1)
    act_on(agreed, permit_id, domain.Action.ISSUE, 1)
    relay = Relay(agreed.outbound, links={Department.EDUCATION: link}, policy=POLICY)
    first = clock.now()

    def step() -> timedelta:
        return timedelta(minutes=30)

    try:
        relay.run_once()
        act_on(agreed, permit_id, domain.Action.CANCEL, 2)
        run_until(relay, clock, first + timedelta(hours=23, minutes=30), step)
        assert [d.status for d in deliveries_of(agreed)] == ["pending", "pending"]
        run_until(relay, clock, first + timedelta(hours=30), step)
    finally:
        relay.close()

    tried = education.switch.seen_down()
    assert len(tried) == schedule.attempts == 3
    for before, after in itertools.pairwise(tried):
        assert timedelta(hours=12) <= after - before <= timedelta(hours=13.2, minutes=30)
    issue, cancel = deliveries_of(agreed)
    assert (issue.status, issue.attempts) == ("dead", 3)
    assert (cancel.status, cancel.attempts) == ("pending", 0)

    headers = staff(app_client, register_client, "education")
    (dead,) = app_client.get("/exchange/v1/dead-letters", headers=headers).json()
    assert (dead["event_seq"], dead["attempts"], dead["waiting_behind"]) == (issue.event_seq, 3, 1)
    assert dead["last_attempt_at"] == tried[2].isoformat()
    assert "last_attempt_due" not in dead

    education.switch.down = False
    replay = f"/exchange/v1/dead-letters/{issue.event_seq}/education/replay"
    assert app_client.post(replay, headers=headers).json() == {"replayed": 1}
    relay = Relay(agreed.outbound, links={Department.EDUCATION: link}, policy=POLICY)
    try:
        relay.run_once()  # the replay is probed at once, not twelve hours later
    finally:
        relay.close()
    assert [d.status for d in deliveries_of(agreed)] == ["delivered", "delivered"]
    types = [row["record"]["event"]["type"] for row in education.receiver.received()]
    assert types == ["issue", "cancel"]


def test_an_open_circuit_lets_one_probe_at_a_time_across_relays(
    agreed: Hub, clock: FixedClock, education: Served
) -> None:
    """Two relays, as in two hub processes (each its own worker and leases). While one's
    probe is in flight, the other sends the department nothing, though deliveries are due."""
    education.switch.down = True
    for permit_id in holders(agreed, 3):
        act_on(agreed, permit_id, domain.Action.ISSUE, 1)
    links = {Department.EDUCATION: education.link}
    first = Relay(agreed.outbound, links=links, policy=POLICY)
    second = Relay(agreed.outbound, links=links, policy=POLICY)
    try:
        first.run_once()  # the round that finds the department down opens the circuit
        opened = len(education.switch.seen)
        clock.advance(STANDARD_RETRIES.probe_wait(1) * 1.1)
        education.switch.hold, education.switch.arrived = threading.Event(), threading.Event()
        probing = threading.Thread(target=first.run_once)
        probing.start()
        assert education.switch.arrived.wait(timeout=10)
        assert second.run_once() == 0  # the probe is in flight: nothing else goes
        education.switch.hold.set()
        probing.join(timeout=10)
        assert len(education.switch.seen) == opened + 1
        assert second.run_once() == 0  # the probe failed: the next is a minute away
        clock.advance(STANDARD_RETRIES.probe_wait(2) * 1.1)
        assert second.run_once() == 1
        assert len(education.switch.seen) == opened + 2
        education.switch.down = False
        clock.advance(STANDARD_RETRIES.probe_wait(3) * 1.1)
        assert first.run_once() == 3  # the probe, then the other two in a batch
    finally:
        first.close()
        second.close()
    assert {d.status for d in deliveries_of(agreed)} == {"delivered"}


def test_staff_of_a_department_see_and_replay_only_its_own_deliveries(
    agreed: Hub,
    clock: FixedClock,
    app_client: TestClient,
    register_client: RegisterClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = {
        department: serve(department, clock, tmp_path, monkeypatch)
        for department in (Department.EDUCATION, Department.HOUSING)
    }
    for department in served.values():
        department.switch.down = True
    for permit_id in holders(agreed, 2):
        act_on(agreed, permit_id, domain.Action.ISSUE, 1)
    brief = RelayPolicy(timeout_seconds=2.0, retry_schedule=RetrySchedule.model_validate([1]))
    relay = Relay(agreed.outbound, links={name: d.link for name, d in served.items()}, policy=brief)
    try:
        for _ in range(8):  # two attempts each; one probe per department a round
            relay.run_once()
            clock.advance(timedelta(seconds=2))
    finally:
        relay.close()
        for department in served.values():
            department.receiver.stop()
    dead = {(d.department, d.event_seq) for d in deliveries_of(agreed) if d.status == "dead"}
    assert len(dead) == 4
    housing = staff(app_client, register_client, "housing")
    operator = staff(app_client, register_client, "public-security")

    def listed(headers: Any, query: str = "") -> set[tuple[str, int]]:
        letters = app_client.get(f"/exchange/v1/dead-letters{query}", headers=headers).json()
        return {(letter["department"], letter["event_seq"]) for letter in letters}

    assert listed(housing) == {pair for pair in dead if pair[0] == "housing"}
    assert listed(housing, "?department=education") == set()
    assert listed(operator) == dead
    assert listed(operator, "?department=education") == {p for p in dead if p[0] == "education"}

    rows = app_client.get("/exchange/v1/departments", headers=housing).json()
    assert [(r["department"], r["state"], r["dead_letters"]) for r in rows] == [
        ("housing", "open", 2)
    ]
    rows = app_client.get("/exchange/v1/departments", headers=operator).json()
    assert {r["department"] for r in rows} == {d.value for d in agreed.departments}
    assert {r["department"]: r["dead_letters"] for r in rows}["education"] == 2

    theirs = min(seq for department, seq in dead if department == "education")
    replay = f"/exchange/v1/dead-letters/{theirs}/education/replay"
    refused = app_client.post(replay, headers=housing)
    assert refused.status_code == 404
    assert refused.json()["type"] == "/problems/dead-letter-not-found"
    too_big = f"/exchange/v1/dead-letters/{INT_MAX + 1}/housing/replay"
    assert app_client.post(too_big, headers=housing).status_code == 422
    every = "/exchange/v1/dead-letters/replay"
    assert app_client.post(every, headers=housing).json() == {"replayed": 2}
    other = app_client.post(f"{every}?department=education", headers=housing)
    assert other.json() == {"replayed": 0}
    after = {(d.department, d.status) for d in deliveries_of(agreed)}
    assert after == {("education", "dead"), ("housing", "pending")}
    assert app_client.post(replay, headers=operator).json() == {"replayed": 1}


def test_a_department_the_hub_does_not_know_is_refused_as_the_openapi_enum_says(
    app_client: TestClient, register_client: RegisterClient, agreed: Hub
) -> None:
    operator = staff(app_client, register_client, "public-security")
    listed = app_client.get("/exchange/v1/dead-letters?department=nowhere", headers=operator)
    assert listed.status_code == 422, listed.text
    assert [e["parameter"] for e in listed.json()["errors"]] == ["department"]
    replay = app_client.post("/exchange/v1/dead-letters/1/nowhere/replay", headers=operator)
    assert replay.status_code == 422, replay.text
    assert [e["parameter"] for e in replay.json()["errors"]] == ["department"]
    every = app_client.post("/exchange/v1/dead-letters/replay?department=nowhere", headers=operator)
    assert every.status_code == 422, every.text
    paths = app_client.get("/openapi.json").json()["paths"]
    (named,) = paths["/exchange/v1/dead-letters/{event_seq}/{department}/replay"]["post"][
        "parameters"
    ][1:]
    assert named["schema"]["$ref"] == "#/components/schemas/Department"
    known = app_client.post("/exchange/v1/dead-letters/1/housing/replay", headers=operator)
    assert known.status_code == 404 and known.json()["type"] == "/problems/dead-letter-not-found"


def test_a_department_may_name_its_schedule_but_not_one_shorter_than_a_day(
    tmp_path: Path,
) -> None:
    entry = """
[departments.housing]
endpoint = "http://127.0.0.1:9/webhooks/holder-records"
secret_env = "HUB_TEST_UNUSED_SECRET"
agreement = "housing-holders"
delivery = "push"
events = ["*"]
retry_schedule = {schedule}
"""
    path = tmp_path / "departments.toml"
    path.write_text(entry.format(schedule='["PT1M", "PT1H", "P1D"]'), encoding="utf-8")
    schedule = load_departments(path)[Department.HOUSING].retry_schedule
    assert schedule is not None
    assert (schedule.attempts, schedule.span) == (4, timedelta(days=1, hours=1, minutes=1))
    assert [schedule.wait_after(n) for n in (1, 3, 4)] == [
        timedelta(minutes=1),
        timedelta(days=1),
        None,
    ]
    assert schedule.probe_wait(9) == timedelta(days=1)  # an open circuit keeps probing
    path.write_text(entry.format(schedule='["PT5S", "PT10H"]'), encoding="utf-8")
    with pytest.raises(ValueError, match=r"departments\.housing\.retry_schedule: .*at least 1 day"):
        load_departments(path)
    path.write_text(entry.format(schedule='["five minutes"]'), encoding="utf-8")
    with pytest.raises(ValueError, match=r"departments\.housing\.retry_schedule"):
        load_departments(path)
    shipped = load_departments(ROOT / "config" / "departments.toml")
    assert all(link.retry_schedule is None for link in shipped.values())


def test_the_standard_schedule_spans_more_than_a_day_in_seconds_minutes_then_hours() -> None:
    assert STANDARD_RETRIES.span >= timedelta(days=1)
    assert STANDARD_RETRIES.root[:3] == (
        timedelta(seconds=5),
        timedelta(minutes=1),
        timedelta(minutes=5),
    )
    assert max(STANDARD_RETRIES.root) == timedelta(hours=1)
    now = datetime(2026, 3, 2, 1, 0).astimezone()
    for attempts in range(1, STANDARD_RETRIES.attempts):
        wait = STANDARD_RETRIES.root[attempts - 1]
        due = {POLICY.retry_at(STANDARD_RETRIES, attempts, now) for _ in range(20)}
        assert all(at is not None and wait <= at - now <= wait * 1.1 for at in due)
        assert len(due) > 1  # jittered
    assert POLICY.retry_at(STANDARD_RETRIES, STANDARD_RETRIES.attempts, now) is None
