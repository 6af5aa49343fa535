"""The clerk's screen of `hub window --web`: the agent in its own process at the virtual reader,
the hub on loopback deciding, and the page in Debian's headless Chromium updated as cards are
tapped; then what the screen keeps of a holder, and who may read it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.support.wait import WebDriverWait

from hub.card import layout
from hub.window.agent import WindowDecision
from hub.window.screen import Screen, decision_view, served
from hub.window.ui import READING
from tests.card.conftest import SERVICE, Cards, Window
from tests.card.helpers import tiny_png
from tests.card.pcsc import HUB, wait_for
from tests.e2e.browser import Browser
from tests.servers import LoopbackServer

SHOW_SECONDS = 8


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def screen_address(
    live: LoopbackServer, window: Window, cards: Cards, tmp_path: Path
) -> Iterator[str]:
    """`hub window --web` for the education terminal, at an empty reader."""
    port = _free_port()
    log = tmp_path / "window.log"
    env = {**os.environ, "HUB_CLIENT_ID": window.client_id, "HUB_CLIENT_SECRET": window.secret}
    argv = [HUB, "window", "--service", SERVICE, "--hub", live.url, "--web", "--port", str(port)]
    argv += ["--show-seconds", str(SHOW_SECONDS), "--cache", str(tmp_path / "agent")]
    cards.empty()
    with log.open("w") as output:
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: f"127.0.0.1:{port}" in log.read_text(), "the window screen to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0, log.read_text()
    assert "张三" not in log.read_text()  # nothing of the holder in what the agent printed


def test_taps_appear_on_the_clerks_screen_and_the_holder_leaves_it(
    live: LoopbackServer, cards: Cards, personalised: tuple[str, Path], screen_address: str
) -> None:
    browser = Browser(screen_address)

    def shown(text: str, timeout: float = 20) -> None:
        WebDriverWait(browser.driver, timeout).until(lambda _: text in browser.text())

    try:
        browser.open("/")
        shown("请刷卡")
        emulator = cards(personalised[1])
        shown("准予办理")
        page = browser.text()
        assert "张三" in page and "有效" in page and "compulsory-education" in page
        # Only what education's agreement lists: not the contact, not the household address.
        assert "13800000000" not in page and "沈阳" not in page
        assert "离线核验" not in page
        photo = browser.find("#photo")
        assert photo.is_displayed()
        assert str(photo.get_attribute("src")).startswith("data:image/png;base64,")
        browser.screenshot("window-screen")
        emulator.remove()
        shown("卡已移开")
        assert "张三" in browser.text()  # the clerk may still be looking: until the timeout

        # The hub goes down; the next tap is decided off line, marked so, and shows nothing
        # of the last holder nor anything the hub would have had to disclose.
        live.stop()
        try:
            cards(personalised[1])
            shown("离线核验")
            page = browser.text()
            assert "准予办理" in page and "张三" not in page
            browser.screenshot("window-screen-offline")
        finally:
            live.start()

        WebDriverWait(browser.driver, SHOW_SECONDS + 5).until(
            lambda _: not browser.find("#decision").is_displayed()
        )
        assert "请持卡人刷卡" in browser.text()
        browser.open("/")  # a page opened later shows nothing of an earlier holder
        shown("卡在读卡器上")
        assert "准予办理" not in browser.text()
        assert browser.errors() == []
        assert browser.outside() == []
    finally:
        browser.quit()


def _decision(**overrides: object) -> WindowDecision:
    fields: dict[str, object] = {
        "decision_id": "d-1",
        "grant": True,
        "reasons": (),
        "service": SERVICE,
        "card_serial": "S-1",
        "holder": {
            "$schema": "urn:permit-hub:schema:holder-record:1",
            "event": {"id": "e-1", "type": "tap", "at": "2026-12-06T08:00:00+08:00"},
            "holder": {"name": "张三", "sex": "male", "nickname": None},
            "permit": {"state": "valid"},
        },
        "offline": False,
        "decided_at": "2026-12-06T08:00:00+08:00",
        "apdus": 3,
        "photo": layout.Photo("image/png", tiny_png()),
    }
    return WindowDecision(**{**fields, **overrides})  # type: ignore[arg-type]


def test_a_decision_shows_the_agreed_fields_in_the_clerks_words_and_nothing_else() -> None:
    view = decision_view(_decision(), 30)
    assert [(f["label"]["zh-CN"], f["value"]["zh-CN"]) for f in view["fields"]] == [
        ("姓名", "张三"),
        ("性别", "男"),
        ("居住证状态", "有效"),
        ("nickname", "—"),
    ]
    assert "e-1" not in str(view) and "urn:permit-hub" not in str(view)
    assert view["photo"].startswith("data:image/png;base64,")
    assert view["decided_at"] == "2026-12-06 08:00:00"  # China time, as the clerk's clock
    denied = decision_view(
        _decision(grant=False, reasons=(("permit-expired", "已过期", "expired"),)), 30
    )
    assert denied["reasons"] == [{"code": "permit-expired", "zh-CN": "已过期", "en": "expired"}]
    svg = decision_view(_decision(photo=layout.Photo("image/svg+xml", b"<svg/>")), 30)
    assert svg["photo"] is None  # only the two image types a card may carry become an image


def test_the_screen_forgets_the_holder_at_the_next_tap_and_after_its_time() -> None:
    async def watch() -> None:
        screen = Screen(SERVICE, 0.3)
        screen.decision(_decision())
        listener = screen.subscribe()
        assert [(await listener.queue.get())[0] for _ in range(2)] == ["reader", "decision"]
        assert await asyncio.wait_for(listener.queue.get(), 2) == ("clear", {})
        later = screen.subscribe()  # a page opened after the time is up
        assert (await later.queue.get())[0] == "reader" and later.queue.empty()

        screen = Screen(SERVICE, 60)
        screen.decision(_decision())
        screen.reader("reading", READING)
        later = screen.subscribe()
        assert (await later.queue.get())[1]["state"] == "reading" and later.queue.empty()
        screen.close()
        assert await asyncio.wait_for(later.queue.get(), 2) is None  # the page's stream ends

    asyncio.run(watch())


def test_the_screen_answers_this_machine_only() -> None:
    with served(Screen(SERVICE, 30), "en", _free_port()) as address:
        page = httpx.get(address)
        assert page.status_code == 200 and "Window check" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert page.headers["cache-control"] == "no-store"
        # A name rebound to 127.0.0.1 by a page elsewhere is not this machine's screen.
        rebound = httpx.get(address + "events", headers={"Host": "screen.example.com"})
        assert rebound.status_code == 400
        assert "no-store" in rebound.headers["cache-control"]
