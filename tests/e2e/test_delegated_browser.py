"""Signing in through the identity platform in Debian's headless Chromium: from the hub's
sign-in page to the platform's (node's oidc-provider on its own loopback port), and back to
the console with the roles the platform's claims map to. Neither site's pages fetch anything
from outside this machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from hub.clock import FixedClock
from hub.console.delegated import CALLBACK
from hub.settings import Settings
from tests.e2e.browser import Browser
from tests.e2e.served import served
from tests.oidc.platform import (
    CLIENT_SECRET,
    PASSWORD,
    SECRET_ENV,
    delegation,
    identity_platform,
)
from tests.servers import free_port


@pytest.fixture
def live(
    settings: Settings,
    engine: Engine,
    clock: FixedClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, str]]:
    """The hub on loopback, delegating to the platform; yields both addresses."""
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (
        identity_platform(base + CALLBACK, tmp_path) as issuer,
        served(settings, engine, clock, port, staff_oidc=delegation(issuer)),
    ):
        yield base, issuer


def test_a_person_signs_in_through_the_platform_in_a_browser(live: tuple[str, str]) -> None:
    base, platform = live
    browser = Browser(base)
    try:
        browser.open("/")
        assert "通过省统一身份认证平台登录" in browser.text()
        browser.click("a.delegated")
        assert browser.driver.current_url.startswith(platform + "/interaction/")
        browser.screenshot("identity-platform")
        browser.fill(login="liu.yang", password=PASSWORD)
        browser.click("button[type='submit']")
        assert browser.path() == "/console", browser.driver.current_url
        assert "数据治理" in browser.text() and "liu.yang" in browser.text()
        browser.screenshot("console-home-delegated")
        assert browser.errors() == []
        assert [url for url in browser.outside() if not url.startswith(platform)] == []
    finally:
        browser.quit()
