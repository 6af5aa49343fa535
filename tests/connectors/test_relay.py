"""The outbox relay against real receivers on 127.0.0.1, on both databases: every event to
every subscribed department, only agreed fields, in order per holder, retries, dead letters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.audit import Actor
from hub.auth.domain import Department
from hub.composition import Hub
from hub.connectors.config import DeliveryMode, DepartmentLink
from hub.connectors.receiver import create_receiver
from hub.connectors.relay import Relay, RelayPolicy
from hub.connectors.signing import new_secret
from hub.db import unit_of_work
from hub.permits import domain
from hub.schemas import agreements
from hub.schemas import domain as schema_domain
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient, seed_shipped_agreements
from tests.connectors.helpers import Receiver, act_on, deliveries_of, holders

FAST = RelayPolicy(timeout_seconds=2.0)


@pytest.fixture
def seeded(hub: Hub) -> Hub:
    """The shipped agreements, as on a first start with config/agreements."""
    seed_shipped_agreements(hub)
    return hub


Links = dict[Department, DepartmentLink]


@pytest.fixture
def receivers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Links, dict[str, Receiver]]]:
    """Education and housing, each with a receiver; education takes every event type."""
    links: Links = {}
    running: dict[str, Receiver] = {}
    for department, events in ((Department.EDUCATION, ("*",)), (Department.HOUSING, ("issue",))):
        secret = new_secret()
        env = f"HUB_TEST_SECRET_{department.name}"
        monkeypatch.setenv(env, secret)
        app = create_receiver(department.value, secret, tmp_path / f"{department.value}.db")
        running[department.value] = Receiver(app)
        links[department] = DepartmentLink(
            endpoint=f"{running[department.value].url}/webhooks/holder-records",
            secret_env=env,
            agreement=f"{department.value}-holders",
            delivery=DeliveryMode.BOTH,
            events=events,
        )
    yield links, running
    for receiver in running.values():
        receiver.stop()


def _issue(hub: Hub, count: int) -> list[str]:
    ids = holders(hub, count)
    for permit_id in ids:
        act_on(hub, permit_id, domain.Action.ISSUE, 1)
    return ids


def test_every_event_reaches_every_subscriber_with_only_agreed_fields(
    seeded: Hub, receivers: tuple[Links, dict[str, Receiver]]
) -> None:
    links, running = receivers
    permits = _issue(seeded, 3)
    act_on(seeded, permits[0], domain.Action.CANCEL, 2)
    relay = Relay(seeded.outbound, links=links, policy=FAST)
    try:
        assert relay.run_once() == 3 + 1 + 3  # education: 3 issues + 1 cancel; housing: issues
    finally:
        relay.close()

    education = running["education"].received()
    housing = running["housing"].received()
    assert len(education) == 4 and len(housing) == 3
    assert {r["webhook_id"] for r in housing} < {r["webhook_id"] for r in education}
    record = education[0]["record"]
    assert record["event"]["id"] == education[0]["webhook_id"].removeprefix("evt_")
    assert set(record["holder"]) == {"citizen_id", "name", "current_region"}
    assert set(record["permit"]) <= {
        "id",
        "jurisdiction",
        "state",
        "valid_from",
        "expires_on",
        "residence_start",
    }
    assert len(record["holder"]["citizen_id"]) == 18
    cancelled = [r["record"] for r in education if r["record"]["event"]["type"] == "cancel"]
    assert cancelled[0]["permit"]["state"] == "cancelled"
    issued = [r["record"] for r in education if r["record"]["permit"]["id"] == permits[0]]
    assert [r["permit"]["state"] for r in issued] == ["valid", "cancelled"]  # as of each event
    assert {d.status for d in deliveries_of(seeded)} == {"delivered"}
    relay = Relay(seeded.outbound, links=links, policy=FAST)
    try:
        assert relay.run_once() == 0  # nothing is sent twice
    finally:
        relay.close()


def test_without_an_agreement_in_force_nothing_is_sent_until_replayed(
    seeded: Hub,
    receivers: tuple[Links, dict[str, Receiver]],
    app_client: TestClient,
    register_client: RegisterClient,
) -> None:
    links, running = receivers
    with unit_of_work(seeded.engine) as session:
        current = agreements.latest(session, "education-holders")
        terms = agreements.terms_of(current)
        suspended = schema_domain.AgreementTerms(
            **{**terms.__dict__, "status": schema_domain.AgreementStatus.SUSPENDED}
        )
        agreements.amend(
            session,
            seeded.schemas,
            seeded.audit,
            "education-holders",
            suspended,
            expected_version=current.version,
            actor=Actor("governance", "public-security"),
            now=seeded.clock.now(),
        )
    _issue(seeded, 1)
    relay = Relay(seeded.outbound, links=links, policy=FAST)
    try:
        relay.run_once()
    finally:
        relay.close()
    assert running["education"].received() == []
    assert len(running["housing"].received()) == 1
    education = [d for d in deliveries_of(seeded) if d.department == "education"]
    assert [(d.status, d.last_error) for d in education] == [
        ("dead", "no data-sharing agreement in force")
    ]

    staff = bearer(
        access_token(app_client, register_client("public-security", ("exchange:admin",)))
    )
    listed = app_client.get("/exchange/v1/dead-letters", headers=staff).json()
    assert [(d["department"], d["event_type"]) for d in listed] == [("education", "issue")]
    replay = f"/exchange/v1/dead-letters/{listed[0]['event_seq']}/education/replay"
    no_scope = bearer(access_token(app_client, register_client("education", ("exchange:feed",))))
    assert app_client.post(replay, headers=no_scope).status_code == 403
    with unit_of_work(seeded.engine) as session:  # governance restores the agreement
        agreements.amend(
            session,
            seeded.schemas,
            seeded.audit,
            "education-holders",
            terms,
            expected_version=current.version + 1,
            actor=Actor("governance", "public-security"),
            now=seeded.clock.now(),
        )
    assert app_client.post(replay, headers=staff).json() == {"replayed": 1}
    assert app_client.post(replay, headers=staff).status_code == 404
    relay = Relay(seeded.outbound, links=links, policy=FAST)
    try:
        relay.run_once()
    finally:
        relay.close()
    assert [r["record"]["event"]["type"] for r in running["education"].received()] == ["issue"]
    assert app_client.get("/exchange/v1/dead-letters", headers=staff).json() == []
