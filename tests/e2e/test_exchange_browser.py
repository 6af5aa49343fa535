"""Exchange health in Debian's headless Chromium: housing's receiver is down, its deliveries
end as dead letters; it comes back, an operator sends the dead letter again from the page, the
relay delivers it, and the page shows no dead letter and the delivery in its last hour and
chart. Nothing on the page names the holder; nothing is fetched from outside the hub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from hub.clock import FixedClock
from hub.composition import Hub
from hub.connectors.receiver import create_receiver
from hub.connectors.relay import Relay
from hub.connectors.signing import new_secret
from hub.connectors.store import DEAD, Delivery
from hub.db import unit_of_work
from hub.permits import domain
from hub.settings import Settings
from tests.conftest import seed_shipped_agreements
from tests.connectors.helpers import Receiver, act_on, deliveries_of, holders
from tests.console.helpers import new_staff
from tests.e2e.browser import Browser
from tests.e2e.served import served

PASSWORD = "白日依山尽，黄河入海流。欲穷千里目"
SECRET_ENV = "HUB_TEST_SECRET_HOUSING"


@pytest.fixture
def housing(
    clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Receiver]:
    """Housing's reference receiver, judging webhook times by the hub's clock; down at first."""
    secret = new_secret()
    monkeypatch.setenv(SECRET_ENV, secret)
    receiver = Receiver(create_receiver("housing", secret, tmp_path / "housing.db", clock=clock))
    receiver.stop()
    yield receiver
    receiver.stop()


@pytest.fixture
def live(
    settings: Settings, engine: Engine, clock: FixedClock, housing: Receiver, tmp_path: Path
) -> Iterator[tuple[Hub, str]]:
    """The hub on loopback, pushing to housing only."""
    departments = tmp_path / "departments.toml"
    departments.write_text(
        f"""[departments.housing]
endpoint = "{housing.url}/webhooks/holder-records"
secret_env = "{SECRET_ENV}"
agreement = "housing-holders"
delivery = "push"
events = ["*"]
""",
        encoding="utf-8",
    )
    with served(settings, engine, clock, departments_file=departments) as hub_and_address:
        yield hub_and_address


def test_a_dead_letter_is_sent_again_from_the_page_once_the_receiver_is_back(
    live: tuple[Hub, str], housing: Receiver
) -> None:
    hub, base = live
    seed_shipped_agreements(hub)
    (permit_id,) = holders(hub, 1)
    act_on(hub, permit_id, domain.Action.ISSUE, 1)
    relay = Relay(hub.outbound)
    try:
        assert relay.fan_out() == 1
        relay.deliver_once()  # the receiver is down: refused
        assert [d.attempts for d in deliveries_of(hub)] == [1]
        with unit_of_work(hub.engine) as session:  # as after the whole retry schedule
            session.execute(sa.update(Delivery).values(status=DEAD))
        housing.start()

        operator = new_staff(hub, "zhao.lei", "exchange-operator")
        browser = Browser(base)
        try:
            browser.open("/")
            browser.submit(name="zhao.lei", password=operator.password)
            browser.submit(password=PASSWORD, confirm=PASSWORD)
            browser.open("/console/exchange")
            assert "全部重新发送" in browser.text() and "housing" in browser.text()
            browser.screenshot("exchange-dead-letter")
            browser.click("td form button[type='submit']")
            assert browser.path() == "/console/exchange?replayed=1"
            assert relay.deliver_once() == 1
            assert len(housing.received()) == 1

            browser.open("/console/exchange")
            page = browser.text()
            assert "没有死信" in page and permit_id not in page
            delivered = browser.find("table.grid tbody tr td:nth-of-type(5)").text
            assert delivered == "1"
            chart = browser.find("figure.chart img")
            assert browser.driver.execute_script("return arguments[0].naturalWidth", chart) > 0
            browser.screenshot("exchange-health")
            assert browser.errors() == [] and browser.outside() == []
        finally:
            browser.quit()
    finally:
        relay.close()
    assert all(d.status == "delivered" for d in deliveries_of(hub))
    with unit_of_work(hub.engine) as session:
        dead = session.execute(sa.select(Delivery).where(col(Delivery.status) == DEAD)).all()
    assert dead == []
