"""The console in Debian's headless Chromium against a hub served on loopback, on both
databases: staff sign in with password and TOTP, choose their own password, see the pages
their roles open and are refused the others; a form posted without its CSRF token is
refused; an auditor finds a holder's taps by citizen ID, which never reaches a URL; no page
writes a console error or asks for anything outside the hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy.engine import Engine

from hub.audit import Actor
from hub.clock import FixedClock
from hub.composition import Hub
from hub.db import unit_of_work
from hub.permits.identity import parse_citizen_id
from hub.schemas import service
from hub.schemas.compat import CompatibilityMode
from hub.schemas.domain import VersionState
from hub.settings import Settings
from tests.conftest import seed_shipped_agreements
from tests.connectors.helpers import chifeng_citizen_id
from tests.console.helpers import new_staff, totp
from tests.e2e.browser import Browser, browsers
from tests.e2e.served import served

NEW_PASSWORD = "春眠不觉晓，处处闻啼鸟。夜来风雨声"
REFUSED_LOAD = "status of 403"
VISIT = {"type": "object", "properties": {"place": {"type": "string"}}}


@pytest.fixture
def live(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[tuple[Hub, str]]:
    with served(settings, engine, clock) as hub_and_address:
        yield hub_and_address


def _two_versions(hub: Hub) -> None:
    """A subject whose second version requires what the first left optional."""
    person = {"type": "object", "properties": {"name": {"type": "string"}}}
    actor = Actor("staff:wang.fang", "public-security")
    now = hub.clock.now()
    with unit_of_work(hub.engine) as session:
        service.register(
            session,
            hub.schemas,
            hub.audit,
            "visit",
            VISIT,
            state=VersionState.ACTIVE,
            actor=actor,
            now=now,
        )
        for definition in (person, {**person, "required": ["name"]}):
            service.register(
                session,
                hub.schemas,
                hub.audit,
                "person",
                definition,
                state=VersionState.DRAFT,
                actor=actor,
                now=now,
            )
            service.set_compatibility(
                session, hub.audit, "person", CompatibilityMode.NONE, actor=actor, now=now
            )


def _tapped_holder(hub: Hub) -> str:
    """A holder whose card a health window tapped three times; their citizen ID."""
    citizen_id = chifeng_citizen_id(3)
    hashed = hub.vault.lookup_hash(parse_citizen_id(citizen_id, today=hub.clock.today()))
    window = Actor("health-window-1", "health")
    with unit_of_work(hub.engine) as session:
        for _ in range(3):
            tap = window.did("verification.tap", "granted", hashed, "medical-insurance")
            hub.audit.record(session, tap, hub.clock.now())
    return citizen_id


def _sign_in(browser: Browser, name: str, password: str, code: str = "") -> None:
    browser.open("/")
    assert browser.path().startswith("/oauth/authorize?")
    browser.submit(name=name, password=password, code=code)
    assert "设置您自己的密码" in browser.text()
    browser.submit(password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert browser.path() == "/console"


def _clean(browser: Browser, allowed: str | None = None) -> None:
    errors = [e for e in browser.errors() if allowed is None or allowed not in e]
    assert errors == []
    assert browser.outside() == []


def test_staff_use_the_console_in_a_real_browser(live: tuple[Hub, str], tmp_path: Path) -> None:
    hub, base = live
    officer = new_staff(hub, "wang.fang", "governance")
    clerk = new_staff(hub, "li.lei", "window-clerk", department="health")
    inspector = new_staff(hub, "sun.li", "auditor")
    made = browsers(base)

    governance = next(made)
    governance.open("/")
    assert "工作人员登录" in governance.text()
    shot = governance.screenshot("sign-in")
    assert shot.stat().st_size > 10_000
    _sign_in(governance, "wang.fang", officer.password, totp(officer, hub))
    assert "数据治理" in governance.text() and "窗口" not in governance.text()
    governance.screenshot("console-home")
    governance.open("/console/governance")
    assert "交换模式" in governance.text()
    governance.screenshot("governance")
    _two_versions(hub)
    governance.open("/console/governance/subjects/person")
    governance.find("a[href='#new-/properties/name']").click()
    assert governance.find("span.breaking").get_attribute("id") == "new-/properties/name"
    assert "required-added" in governance.text()
    governance.screenshot("schema-diff")

    governance.open("/console/governance/subjects/visit/draft")
    governance.submit(schema=json.dumps({**VISIT, "required": ["place"]}))
    assert "不能注册" in governance.text() and "/properties/place" in governance.text()
    governance.screenshot("draft-refused")
    widened = {**VISIT, "properties": {**VISIT["properties"], "purpose": {"type": "string"}}}
    chosen = tmp_path / "visit-v2.schema.json"
    chosen.write_text(json.dumps(widened), encoding="utf-8")
    governance.find("#upload").send_keys(str(chosen))  # read into the text area, not sent
    WebDriverWait(governance.driver, 5).until(
        lambda _: "purpose" in str(governance.find("#schema").get_attribute("value"))
    )
    governance.click("button[value='register']")
    assert governance.path() == "/console/governance/subjects/visit?to=2", governance.text()
    assert "v2 · 草稿" in governance.text()
    governance.click("a.move[href$='version=2&to=ACTIVE']")
    assert "将 visit 第 2 版设为“使用中”？" in governance.text()
    governance.screenshot("state-change-confirm")
    governance.click("main form button[type='submit']")
    assert governance.path() == "/console/governance/subjects/visit?to=2"
    assert "v2 · 使用中" in governance.text()

    seed_shipped_agreements(hub)
    governance.open("/console/governance/agreements/education-holders")
    assert '"name": "乌云其其格"' in governance.find("#received").text
    governance.find("input[name='fields'][value='/holder/name']").click()
    governance.click("button[value='preview']")
    assert '"name"' not in governance.find("#received").text
    governance.driver.execute_script("document.querySelector('.preview').scrollIntoView()")
    governance.screenshot("agreement-preview")
    governance.click("button[value='save']")
    assert "education-holders v2" in governance.text()
    assert "/holder/name" in governance.find("td.removed").text
    governance.click("a[hreflang='en']")
    assert "Data-sharing agreements" in governance.text()
    assert governance.find("html").get_attribute("lang") == "en"
    _clean(governance)

    posted = governance.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/console/sign-out', {method: 'POST'}).then(r => done(r.status));"
    )
    assert posted == 403
    governance.open("/console")
    assert governance.path() == "/console"  # still signed in: the forged post did nothing
    governance.click("header form button")
    assert "You have signed out" in governance.text()
    governance.open("/console")
    assert governance.path().startswith("/oauth/authorize?")
    _clean(governance, allowed=REFUSED_LOAD)

    window = next(made)
    _sign_in(window, "li.lei", clerk.password)
    assert "窗口" in window.text() and "数据治理" not in window.text()
    window.open("/console/governance")
    assert "您的角色不包含此页所需的权限" in window.text()
    window.screenshot("governance-refused-to-a-clerk")
    _clean(window, allowed=REFUSED_LOAD)

    citizen_id = _tapped_holder(hub)
    auditor = next(made)
    _sign_in(auditor, "sun.li", inspector.password)
    auditor.open("/console/audit")
    auditor.submit(holder=citizen_id)
    assert citizen_id not in auditor.path() and "subject=" in auditor.path()
    assert auditor.text().count("medical-insurance") == 3
    auditor.screenshot("audit-search")
    _clean(auditor)


def test_screenshots_land_beside_the_project() -> None:
    from tests.e2e.browser import SCREENSHOTS

    assert Path(__file__).resolve().parents[2] / "var" / "screenshots" == SCREENSHOTS
