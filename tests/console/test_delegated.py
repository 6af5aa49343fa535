"""Staff sign in through the identity platform (node's oidc-provider in its own process): the
hub sends them there from its sign-in page and takes back who they are, mapping their roles;
nobody without a mapped role, no takeover of a local account, no forged or replayed return,
and a platform that is down is said so; every outcome audited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.auth.store import StaffAccount
from hub.composition import Hub
from hub.console.delegated import CALLBACK
from hub.settings import Settings
from tests.conftest import ISSUER
from tests.console.helpers import browser, follow, new_staff, sign_in_page, submit
from tests.oidc.platform import (
    CLIENT_SECRET,
    PASSWORD,
    SECRET_ENV,
    delegation,
    identity_platform,
)


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    with identity_platform(ISSUER + CALLBACK, tmp_path) as issuer:
        yield issuer


@pytest.fixture
def settings(settings: Settings, platform: str) -> Settings:
    return settings.model_copy(update={"staff_oidc": delegation(platform)})


def _to_platform(client: TestClient) -> str:
    """From the hub's sign-in page to the platform: the address the hub sends the browser to."""
    page = sign_in_page(client)
    found = re.search(r'href="(/oauth/authorize/delegated\?[^"]+)"', page.text)
    assert found, page.text
    leaving = client.get(unescape(found.group(1)))
    assert leaving.status_code == 303, leaving.text
    return str(leaving.headers["location"])


def _at_platform(address: str, name: str, password: str = PASSWORD) -> str:
    """The platform's side, as a browser walks it: its login form, then back to the hub."""
    with httpx.Client(follow_redirects=False) as platform:
        answer = platform.get(address)
        while answer.is_redirect and not answer.headers["location"].startswith(ISSUER):
            answer = platform.get(urljoin(str(answer.url), answer.headers["location"]))
        action = re.search(r'action="([^"]+/login)"', answer.text)
        assert action, answer.text
        answer = platform.post(
            urljoin(str(answer.url), action.group(1)), data={"login": name, "password": password}
        )
        while answer.is_redirect and not answer.headers["location"].startswith(ISSUER):
            answer = platform.get(urljoin(str(answer.url), answer.headers["location"]))
        assert answer.is_redirect, answer.text
        return str(answer.headers["location"])


def _sign_ins(hub: Hub) -> list[tuple[str, str]]:
    with Session(hub.engine) as session:
        query = select(AuditEntry).where(col(AuditEntry.action) == "staff.sign-in")
        return [
            (e.actor_client_id, e.outcome)
            for e in session.exec(query.order_by(col(AuditEntry.seq)))
        ]


def test_a_person_signs_in_through_the_platform_with_the_roles_it_maps(
    app_client: TestClient, hub: Hub
) -> None:
    client = browser(app_client)
    back = client.get(_at_platform(_to_platform(client), "liu.yang"))
    assert back.status_code == 303, back.text
    home = follow(client, follow(client, back))
    assert home.status_code == 200 and "Data governance" in home.text
    assert client.get("/console/governance").status_code == 200
    assert client.get("/console/audit").status_code == 403  # governance, not auditor
    with Session(hub.engine) as session:
        row = session.get(StaffAccount, "liu.yang")
        assert row is not None
        assert (row.roles, row.department, row.display_name) == (
            "governance",
            "public-security",
            "刘洋",
        )
        assert row.identity_provider is not None and row.password_hash == ""
    assert ("staff:liu.yang", "delegated") in _sign_ins(hub)
    local = browser(app_client)  # the delegated account has no password to sign in with here
    page = sign_in_page(local)
    assert "Sign in through the provincial identity platform" in page.text
    assert submit(local, page, name="liu.yang", password="", code="").status_code == 401


def test_no_role_no_takeover_no_forged_return(app_client: TestClient, hub: Hub) -> None:
    client = browser(app_client)
    nobody = client.get(_at_platform(_to_platform(client), "chen.jing"))
    assert (
        nobody.status_code == 403 and "no role" in nobody.text.lower()
    ) or "没有角色" in nobody.text

    new_staff(hub, "wang.fang", "governance")  # a local account of the same name
    client = browser(app_client)
    taken = client.get(_at_platform(_to_platform(client), "wang.fang"))
    assert taken.status_code == 403 and "cannot sign in through the platform" in taken.text
    with Session(hub.engine) as session:
        row = session.get(StaffAccount, "wang.fang")
        assert row is not None and row.identity_provider is None and row.password_hash != ""

    client = browser(app_client)
    back = _at_platform(_to_platform(client), "liu.yang")
    forged = client.get(re.sub(r"state=[^&]+", "state=forged", back))
    assert forged.status_code == 400
    stranger = browser(app_client)  # the return in another browser, without its cookie
    assert stranger.get(back).status_code == 400
    outcomes = [outcome for _, outcome in _sign_ins(hub)]
    assert "refused: no-role" in outcomes and "refused: local-account" in outcomes


def test_the_platform_down_is_said_so(
    app_client: TestClient, platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = app_client.app.state.hub  # type: ignore[attr-defined]
    delegation_now = app_client.app.state.delegation  # type: ignore[attr-defined]
    gone = delegation(platform.rsplit(":", 1)[0] + ":9")  # nothing listens on port 9
    monkeypatch.setattr(delegation_now, "config", gone)
    monkeypatch.setattr(delegation_now, "_metadata", None)
    client = browser(app_client)
    page = sign_in_page(client)
    found = re.search(r'href="(/oauth/authorize/delegated\?[^"]+)"', page.text)
    assert found is not None
    href = unescape(found.group(1))
    down = client.get(href)
    assert down.status_code == 502 and "cannot be reached" in down.text
    assert hub is not None
