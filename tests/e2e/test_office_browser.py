"""The acceptance office in Debian's headless Chromium against a hub served on loopback, on
both databases: a clerk registers a residence on the form, the application page names a
missing material as the boxes are ticked (the hub's own script) and the hub refuses the same;
the application accepted, the holder is found by citizen ID (never in a URL) and the permit
issued from their page; the worklist and the statistics dashboard show; no page writes a
console error or asks for anything outside the hub."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy.engine import Engine

from hub.clock import FixedClock
from hub.composition import Hub
from hub.settings import Settings
from tests.console.helpers import new_staff
from tests.e2e.browser import Browser, browsers
from tests.e2e.served import served
from tests.factories import ADULT, registration_body

NEW_PASSWORD = "锄禾日当午，汗滴禾下土。谁知盘中餐"


@pytest.fixture
def live(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[tuple[Hub, str]]:
    clock.set(datetime(2026, 10, 13, 2, tzinfo=UTC))
    with served(settings, engine, clock) as hub_and_address:
        yield hub_and_address


def _sign_in(browser: Browser, name: str, password: str) -> None:
    browser.open("/")
    browser.submit(name=name, password=password, code="")
    browser.submit(password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert browser.path() == "/console"


def _missing(browser: Browser) -> str:
    return str(browser.find("#missing").text)


def test_a_clerk_takes_a_case_from_registration_to_issue(live: tuple[Hub, str]) -> None:
    hub, base = live
    given = new_staff(hub, "zhao.lei", "acceptance-office", jurisdictions=("chifeng",))
    made = browsers(base)  # closed when the test ends
    clerk = next(made)
    _sign_in(clerk, "zhao.lei", given.password)
    assert "受理" in clerk.text() and "统计" in clerk.text()

    clerk.open("/console/office/register")
    fields = registration_body(temporary_permit_since="2025-06-02")
    reason = fields.pop("reason")
    clerk.fill(
        **{
            name: str(value)
            for name, value in fields.items()
            if name not in ("arrived_on", "temporary_permit_since")
        }
    )
    for name in ("arrived_on", "temporary_permit_since"):  # a date input takes the ISO value
        clerk.driver.execute_script(
            "document.getElementById(arguments[0]).value = arguments[1]", name, fields[name]
        )
    clerk.driver.execute_script("document.getElementById('reason').value = arguments[0]", reason)
    clerk.click("main form button[type='submit']")
    assert clerk.path().endswith("/apply"), clerk.text()
    assert "申领居住证" in clerk.text()

    clerk.find("input[name='form'][value='residence:rented']").click()
    clerk.find("input[name='materials'][value='id-card']").click()
    WebDriverWait(clerk.driver, 5).until(lambda _: "还缺" in _missing(clerk))
    assert "相片" in _missing(clerk) or "photo" in _missing(clerk).lower()
    clerk.screenshot("application-missing-named")
    clerk.click("main form button[type='submit']")
    assert "材料不全" in clerk.text()  # the hub says what the page said

    for material in ("photo", "lease-contract"):
        clerk.find(f"input[name='materials'][value='{material}']").click()
    WebDriverWait(clerk.driver, 5).until(lambda _: _missing(clerk) == "")
    clerk.click("main form button[type='submit']")
    assert "/console/office/permits/" in clerk.path()
    assert "accepted" in clerk.text()

    clerk.open("/console/office")
    clerk.submit(citizen_id=ADULT, purpose="窗口发证")
    assert ADULT not in clerk.path()
    clerk.click("#hits a")
    clerk.screenshot("holder-page")
    clerk.click("button[type='submit'][form], form.inline button")
    assert "valid" in clerk.text()

    clerk.open("/console/office/worklist")
    assert "报告待办" in clerk.text()
    clerk.open("/console/statistics")
    assert "考核统计" in clerk.text()
    WebDriverWait(clerk.driver, 5).until(
        lambda _: clerk.driver.execute_script(
            "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        )
    )
    clerk.screenshot("statistics")
    # The one error a browser logs is the refused application's own status, which it was.
    assert [e for e in clerk.errors() if "status of 422" not in e] == []
    assert clerk.outside() == []
