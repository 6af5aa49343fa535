"""Staff sign in to the console through the hub's own authorization server (authorization
code with PKCE), on both databases: one-time passwords replaced at first sign-in, TOTP for
governance, throttling, CSRF, sessions that end on sign-out and when left idle, every step
audited and nothing secret written down."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.auth.codes import CALLBACK_PATH
from hub.auth.store import StaffSession
from hub.composition import Hub
from tests.auth.helpers import bearer
from tests.conftest import ISSUER
from tests.console.helpers import (
    browser,
    follow,
    new_staff,
    sign_in,
    sign_in_page,
    submit,
    totp,
)

NEW_PASSWORD = "a sentence the clerk remembers"


def audit_of(hub: Hub, action: str) -> list[AuditEntry]:
    with Session(hub.engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(col(AuditEntry.seq))
        return list(session.exec(query).all())


def test_a_clerk_chooses_a_password_at_first_sign_in_and_holds_a_staff_session(
    app_client: TestClient, hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    given = new_staff(hub, "li.lei", "window-clerk", department="health")
    client = browser(app_client)
    signed = sign_in(client, "li.lei", given.password, new_password=NEW_PASSWORD)

    assert "li.lei" in signed.home.text
    assert "/console/window" in signed.home.text and "/console/governance" not in signed.home.text
    cookie = next(c for c in client.cookies.jar if c.name == "hub_session")
    assert not cookie.secure and cookie.path == "/"  # Secure only off the loopback address
    set_cookie = signed.home.request and client.cookies  # the jar holds it; headers checked next
    assert set_cookie
    whoami = client.get("/auth/v1/whoami", headers=bearer(signed.token)).json()
    assert whoami["client_id"] == "staff:li.lei"
    assert whoami["client_kind"] == "staff" and whoami["department"] == "health"
    assert whoami["scopes"] == ["verification:tap"]

    assert [e.outcome for e in audit_of(hub, "staff.sign-in")] == ["done"]
    assert [e.actor_client_id for e in audit_of(hub, "staff.password-change")] == ["staff:li.lei"]
    logged = caplog.text
    for secret in (given.password, NEW_PASSWORD, signed.token):
        assert secret not in logged
    # the new password is the one that works now; the one-time one is gone
    again = browser(app_client)
    refused = submit(again, sign_in_page(again), name="li.lei", password=given.password)
    assert refused.status_code == 401
    assert sign_in(browser(app_client), "li.lei", NEW_PASSWORD).home.status_code == 200


def test_the_session_cookie_is_httponly_and_strict(app_client: TestClient, hub: Hub) -> None:
    given = new_staff(hub, "li.lei", "window-clerk")
    client = browser(app_client)
    answer = submit(client, sign_in_page(client), name="li.lei", password=given.password)
    answer = submit(client, answer, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    callback = client.get(answer.headers["location"])
    header = callback.headers["set-cookie"]
    session_cookie = next(part for part in header.split(", hub_") if "hub_session=" in part)
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
    assert callback.headers["referrer-policy"] == "same-origin"


def test_governance_needs_the_totp_code_and_a_code_works_once(
    app_client: TestClient, hub: Hub
) -> None:
    given = new_staff(hub, "wang.fang", "governance")
    client = browser(app_client)
    page = sign_in_page(client)
    without = submit(client, page, name="wang.fang", password=given.password)
    assert without.status_code == 401
    assert "The account, password or one-time code is not right" in without.text
    wrong = submit(client, without, name="wang.fang", password=given.password, code="000000")
    assert wrong.status_code == 401
    code = totp(given, hub)
    signed = sign_in(client, "wang.fang", given.password, code, new_password=NEW_PASSWORD)
    assert "/console/governance" in signed.home.text
    reused = browser(app_client)
    replay = submit(
        reused, sign_in_page(reused), name="wang.fang", password=NEW_PASSWORD, code=code
    )
    assert replay.status_code == 401
    reasons = [e.outcome for e in audit_of(hub, "staff.sign-in")]
    assert reasons == [
        "refused: wrong-code",
        "refused: wrong-code",
        "done",
        "refused: wrong-code",
    ]
    hub.clock.advance(timedelta(seconds=30))
    later = sign_in(browser(app_client), "wang.fang", NEW_PASSWORD, totp(given, hub))
    assert later.home.status_code == 200


def test_failed_sign_ins_are_throttled_per_account(
    app_client: TestClient, hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    given = new_staff(hub, "li.lei", "window-clerk")
    client = browser(app_client)
    page = sign_in_page(client)
    for _ in range(5):
        page = submit(client, page, name="li.lei", password="guess-" + "x" * 8)
        assert page.status_code == 401
    blocked = submit(client, page, name="li.lei", password=given.password)
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in blocked.text
    # a citizen ID typed as the account name is not written down in clear
    citizen_id = "110101199003077777"
    submit(client, page, name=citizen_id, password="whatever")
    subjects = [e.subject or "" for e in audit_of(hub, "staff.sign-in")]
    assert all(citizen_id not in subject for subject in subjects)
    assert citizen_id not in caplog.text
    hub.clock.advance(timedelta(seconds=901))
    hub.auth_state.refresh()
    after = submit(client, page, name="li.lei", password=given.password)
    assert after.status_code == 200  # the one-time password's page: the block has ended


def test_forms_without_their_csrf_token_are_refused(app_client: TestClient, hub: Hub) -> None:
    given = new_staff(hub, "li.lei", "window-clerk")
    client = browser(app_client)
    page = sign_in_page(client)
    forged = submit(client, page, csrf="0" * 64, name="li.lei", password=given.password)
    assert forged.status_code == 403 and "csrf-refused" in forged.text
    signed = sign_in(client, "li.lei", given.password, new_password=NEW_PASSWORD)
    assert client.post("/console/sign-out").status_code == 403
    cross_site = client.post(
        "/console/sign-out",
        data={"csrf": "x"},
        headers={"Origin": "https://elsewhere.example"},
    )
    assert cross_site.status_code == 403
    assert client.get("/console").status_code == 200, signed


def test_signing_out_ends_the_session_and_revokes_its_token(
    app_client: TestClient, hub: Hub
) -> None:
    given = new_staff(hub, "li.lei", "window-clerk")
    client = browser(app_client)
    signed = sign_in(client, "li.lei", given.password, new_password=NEW_PASSWORD)
    token = signed.token
    out = submit(client, signed.home)  # the header's sign-out form
    assert out.status_code == 200 and "signed out" in out.text
    assert client.get("/console").status_code == 303
    stolen = browser(app_client)
    stolen.cookies.set("hub_session", token)
    assert stolen.get("/console").headers["location"] == "/console/sign-in"
    assert app_client.get("/auth/v1/whoami", headers=bearer(token)).status_code == 401
    assert [e.outcome for e in audit_of(hub, "staff.sign-out")] == ["signed-out"]


def test_a_session_left_idle_ends(app_client: TestClient, hub: Hub) -> None:
    given = new_staff(hub, "li.lei", "window-clerk")
    client = browser(app_client)
    sign_in(client, "li.lei", given.password, new_password=NEW_PASSWORD)
    hub.clock.advance(timedelta(seconds=600))
    assert client.get("/console").status_code == 200  # used: the idle time starts again
    hub.clock.advance(timedelta(seconds=901))
    assert client.get("/console").status_code == 303
    with Session(hub.engine) as session:
        ended = session.exec(select(StaffSession)).one()
    assert ended.end_reason == "idle"
    assert [e.outcome for e in audit_of(hub, "staff.sign-out")] == ["idle"]


def test_a_disabled_account_cannot_sign_in(app_client: TestClient, hub: Hub) -> None:
    from hub.auth.staff import disable_staff
    from hub.db import unit_of_work
    from tests.console.helpers import Actor

    given = new_staff(hub, "li.lei", "window-clerk")
    with unit_of_work(hub.engine) as session:
        disable_staff(session, hub.staff, "li.lei", actor=Actor("a", "b"), now=hub.clock.now())
    client = browser(app_client)
    refused = submit(client, sign_in_page(client), name="li.lei", password=given.password)
    assert refused.status_code == 401
    assert [e.outcome for e in audit_of(hub, "staff.sign-in")] == ["refused: disabled"]


def _authorize(client: TestClient, **changes: str) -> str:
    """The authorization request the console makes, with some parameters changed."""
    start = client.get("/console/sign-in").headers["location"]
    query = {name: values[0] for name, values in parse_qs(urlsplit(start).query).items()}
    query.update(changes)
    return "/oauth/authorize?" + "&".join(f"{k}={v}" for k, v in query.items() if v)


def test_pkce_is_required_and_a_code_is_used_once(app_client: TestClient, hub: Hub) -> None:
    given = new_staff(hub, "li.lei", "window-clerk")
    client = browser(app_client)
    without = client.get(_authorize(client, code_challenge="", code_challenge_method=""))
    assert without.status_code == 303
    assert "error=invalid_request" in without.headers["location"]
    plain = client.get(_authorize(client, code_challenge_method="plain"))
    assert "error=invalid_request" in plain.headers["location"]
    elsewhere = client.get(_authorize(client, redirect_uri="https://evil.example/cb"))
    assert elsewhere.status_code == 400 and "evil.example" not in elsewhere.headers.get(
        "location", ""
    )

    page = client.get(_authorize(client))
    answer = submit(client, page, name="li.lei", password=given.password)
    callback = submit(client, answer, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    code = parse_qs(urlsplit(callback.headers["location"]).query)["code"][0]
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": ISSUER + CALLBACK_PATH,
        "client_id": "console",
        "code_verifier": "v" * 43,
    }
    wrong = app_client.post("/oauth/token", data=exchange)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant", wrong.json()
    # the code was spent by the failed attempt too: the console's own callback gets nothing
    spent = follow(client, callback)
    assert spent.status_code == 400, spent.headers.get("location")


def test_the_console_is_no_client_for_client_credentials(
    app_client: TestClient, register_client: object
) -> None:
    basic = app_client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("console", "")
    )
    assert basic.status_code == 401
    public = app_client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": "console"}
    )
    assert public.status_code in (400, 401)
    metadata = app_client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_endpoint"] == ISSUER + "/oauth/authorize"
