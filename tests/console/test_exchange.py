"""Exchange health in the console, on both databases: each department's circuit and backlog,
the dead letters with their reason, replayed one by one or all at once, within the person's
department, every replay audited; the page shows no holder's data."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.composition import Hub
from hub.connectors import operations
from hub.connectors.relay import Relay
from hub.connectors.signing import new_secret
from hub.connectors.store import DEAD, Delivery, DepartmentCircuit
from hub.db import unit_of_work
from hub.permits import domain
from tests.conftest import seed_shipped_agreements
from tests.connectors.helpers import act_on, deliveries_of, holders
from tests.console.helpers import browser, hidden_fields, new_staff, sign_in

NEW_PASSWORD = "the receivers are back"


def _dead_letters(hub: Hub, monkeypatch: pytest.MonkeyPatch, *departments: str) -> list[str]:
    """Two holders' issue events fanned out to every push department by the relay, then given
    up on for `departments` (as after a whole retry schedule against a receiver that is down)."""
    seed_shipped_agreements(hub)
    permits = holders(hub, 2)
    for permit_id in permits:
        act_on(hub, permit_id, domain.Action.ISSUE, 1)
    for link in hub.departments.values():
        monkeypatch.setenv(link.secret_env, new_secret())
    relay = Relay(hub.outbound)
    try:
        assert relay.fan_out() == 2
    finally:
        relay.close()
    with unit_of_work(hub.engine) as session:
        session.execute(
            sa.update(Delivery)
            .where(col(Delivery.department).in_(departments))
            .values(status=DEAD, attempts=12, last_error="connection refused")
        )
    return permits


def _signed_in(
    app_client: TestClient, hub: Hub, name: str, role: str, department: str
) -> TestClient:
    given = new_staff(hub, name, role, department=department)
    client = browser(app_client)
    sign_in(client, name, given.password, new_password=NEW_PASSWORD)
    return client


def _operator(app_client: TestClient, hub: Hub, department: str) -> TestClient:
    return _signed_in(app_client, hub, "zhao.lei", "exchange-operator", department)


def test_an_operator_replays_dead_letters_one_or_all(
    app_client: TestClient, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    permits = _dead_letters(hub, monkeypatch, "education")
    client = _operator(app_client, hub, "public-security")
    page = client.get("/console/exchange?lang=en")
    assert page.status_code == 200
    assert "connection refused" in page.text and "Send them all again" in page.text
    for permit_id in permits:
        assert permit_id not in page.text  # which holder is not the operator's business
    dead = [d for d in deliveries_of(hub) if d.status == DEAD]
    assert len(dead) == 2
    csrf = hidden_fields(page)["csrf"]
    first = dead[0]
    one = client.post(
        "/console/exchange/replay",
        data={"csrf": csrf, "event": str(first.event_seq), "department": "education"},
    )
    assert one.status_code == 303 and one.headers["location"] == "/console/exchange?replayed=1"
    assert "1 dead letter(s) sent again." in client.get(one.headers["location"] + "&lang=en").text
    rest = client.post("/console/exchange/replay", data={"csrf": csrf})
    assert rest.headers["location"] == "/console/exchange?replayed=1"
    assert all(d.status != DEAD for d in deliveries_of(hub))
    bad = client.post("/console/exchange/replay", data={"csrf": csrf, "event": "9" * 30})
    assert bad.status_code == 422
    forged = client.post("/console/exchange/replay", data={"event": "1"})
    assert forged.status_code == 403
    with Session(hub.engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == "delivery.replay")
        replays = session.exec(query.order_by(col(AuditEntry.seq))).all()
    assert [(e.actor_client_id, e.outcome) for e in replays] == [
        ("staff:zhao.lei", "1"),
        ("staff:zhao.lei", "1"),
    ]


def test_a_department_operator_sees_and_replays_only_its_own(
    app_client: TestClient, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dead_letters(hub, monkeypatch, "education", "housing")
    client = _operator(app_client, hub, "housing")
    page = client.get("/console/exchange?lang=en")
    assert '<th scope="row">housing</th>' in page.text
    assert "education" not in page.text
    theirs = next(d for d in deliveries_of(hub) if d.department == "education")
    csrf = hidden_fields(page)["csrf"]
    other = client.post(
        "/console/exchange/replay",
        data={"csrf": csrf, "event": str(theirs.event_seq), "department": "education"},
    )
    assert other.headers["location"] == "/console/exchange?replayed=0"
    every = client.post("/console/exchange/replay", data={"csrf": csrf})
    assert every.headers["location"] == "/console/exchange?replayed=2"
    assert {d.department for d in deliveries_of(hub) if d.status == DEAD} == {"education"}


def test_a_window_clerk_is_refused_the_exchange_page(app_client: TestClient, hub: Hub) -> None:
    client = _signed_in(app_client, hub, "li.lei", "window-clerk", "public-security")
    assert client.get("/console/exchange").status_code == 403


def test_deliveries_per_minute_are_counted_and_drawn_within_the_operators_department(
    app_client: TestClient, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dead_letters(hub, monkeypatch)
    now = hub.clock.now()
    with unit_of_work(hub.engine) as session:
        for department, ago in (("housing", 5), ("education", 5), ("education", 125)):
            row = session.exec(
                select(Delivery).where(
                    Delivery.department == department,  # type: ignore[arg-type]
                    Delivery.status != "delivered",  # type: ignore[arg-type]
                )
            ).first()
            assert row is not None
            row.status, row.delivered_at = "delivered", now - timedelta(minutes=ago)
            session.add(row)
    with Session(hub.engine) as session:
        counts = operations.deliveries_per_minute(session, ["education", "housing"], now)
    assert counts["housing"][-6] == 1 and sum(counts["housing"]) == 1
    assert sum(counts["education"]) == 1  # the one two hours ago is not in the last hour

    housing = _operator(app_client, hub, "housing")
    page = housing.get("/console/exchange?lang=en")
    assert (
        "Delivered, last hour" in page.text
        and 'src="/console/exchange/deliveries.svg"' in page.text
    )
    chart = housing.get("/console/exchange/deliveries.svg?lang=en")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/svg+xml"
    assert "Deliveries per minute" in chart.text and "housing" in chart.text
    assert "education" not in chart.text  # another department's traffic is not theirs to see
    assert "<script" not in chart.text and 'href="http' not in chart.text
    window = _signed_in(app_client, hub, "li.lei", "window-clerk", "health")
    assert window.get("/console/exchange/deliveries.svg").status_code == 403


def test_a_failing_department_is_shown_waiting_or_probing(
    app_client: TestClient, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dead_letters(hub, monkeypatch)
    now = hub.clock.now()
    client = _operator(app_client, hub, "public-security")
    for due, shown in (
        (now + timedelta(minutes=5), "Failing (waiting to probe)"),
        (now, "Failing (probing)"),
    ):
        with unit_of_work(hub.engine) as session:
            row = session.get(DepartmentCircuit, "housing") or DepartmentCircuit(
                department="housing", state="open"
            )
            row.state, row.opened_at, row.next_probe_at = "open", now, due
            session.add(row)
        page = client.get("/console/exchange?lang=en")
        housing = page.text.split('<th scope="row">housing</th>')[1].split("</tr>")[0]
        assert shown in housing
