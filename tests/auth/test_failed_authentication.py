"""Failed client authentications at /oauth/token, /introspect and /revoke: one answer whatever
the client id, audited and logged without secrets; and a successful token costs no SQL."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.auth import state as auth_state
from hub.auth.service import NewClient
from hub.composition import Hub
from hub.settings import Settings
from tests.auth.helpers import (
    assertion_form,
    client_assertion,
    client_key,
    public_jwks,
    request_token,
)
from tests.conftest import ISSUER, RegisterClient

ENDPOINTS = ("/oauth/token", "/oauth/introspect", "/oauth/revoke")
FORM = {"grant_type": "client_credentials", "token": "some-token"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No background refresh during a test: the SQL a request runs is then all its own."""
    return settings.model_copy(update={"revocation_refresh_seconds": 60})


def from_address(app_client: TestClient, address: str) -> TestClient:
    """The same running app, called from another source address."""
    return TestClient(app_client.app, client=(address, 50000))


def _secret(new: NewClient) -> str:
    assert new.secret
    return new.secret


def _authentications(hub: Hub) -> list[AuditEntry]:
    with Session(hub.engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == "client.authenticate")
        return list(session.exec(query.order_by(col(AuditEntry.seq))).all())


@pytest.mark.parametrize("path", ENDPOINTS)
def test_unknown_client_and_wrong_secret_get_byte_identical_problems(
    app_client: TestClient, register_client: RegisterClient, path: str
) -> None:
    known = register_client()
    keyed = register_client(
        "education", ("exchange:proofs",), jwks=public_jwks(client_key("ES256"))
    )
    attempts = {
        "unknown client": ("public-security-000000000000", "a-secret"),
        "wrong secret": (known.client_id, "a-secret"),
        "client with keys": (keyed.client_id, "a-secret"),
        "empty secret": (known.client_id, ""),
    }
    answers = {
        case: from_address(app_client, f"192.0.2.{n}").post(path, data=FORM, auth=credentials)
        for n, (case, credentials) in enumerate(attempts.items(), start=1)
    }
    answers["no credentials"] = from_address(app_client, "192.0.2.9").post(path, data=FORM)
    first = answers["unknown client"]
    assert first.status_code == 401
    assert first.json()["type"] == "/problems/invalid-client"
    for case, answer in answers.items():
        assert answer.status_code == 401, case
        assert answer.content == first.content, case
        assert answer.headers["www-authenticate"] == first.headers["www-authenticate"], case


def test_an_unknown_client_costs_a_secret_hash_as_a_wrong_secret_does(
    app_client: TestClient, register_client: RegisterClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusal of an unknown id does the same keyed hashes as a wrong secret, so the time
    it takes does not tell which ids exist (both then pay the same failure transaction). Both
    are tried once by the token shortcut (hub.auth.shortcut) and once more by the route."""
    hashed: list[str] = []
    real = auth_state.hash_client_secret

    def counting(key: bytes, secret: str) -> str:
        hashed.append(secret)
        return real(key, secret)

    monkeypatch.setattr(auth_state, "hash_client_secret", counting)
    known = register_client()
    form = {"grant_type": "client_credentials"}
    work: dict[str, list[str]] = {}
    for client_id in ("nobody", known.client_id):
        hashed.clear()
        answer = app_client.post("/oauth/token", data=form, auth=(client_id, "guess"))
        assert answer.status_code == 401
        work[client_id] = list(hashed)
    assert work["nobody"] == work[known.client_id] == ["guess", "guess"]


def test_each_failure_is_audited_and_logged_with_its_reason_and_no_secret(
    app_client: TestClient,
    register_client: RegisterClient,
    hub: Hub,
    caplog: pytest.LogCaptureFixture,
) -> None:
    known = register_client()
    key = client_key("ES256")
    keyed = register_client("education", ("exchange:proofs",), jwks=public_jwks(key))
    now = hub.clock.epoch_seconds()
    replayable = client_assertion(key, keyed.client_id, ISSUER, now=now)
    assert app_client.post("/oauth/token", data=assertion_form(replayable)).status_code == 200
    forged = client_assertion(client_key("ES256"), keyed.client_id, ISSUER, now=now)
    misnamed = client_assertion(key, known.client_id, ISSUER, now=now)
    unreadable = {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()}
    token = "/oauth/token"
    attempts: list[tuple[str, dict[str, Any]]] = [
        (token, {"auth": (known.client_id, "wrong-secret-1")}),
        (token, {"auth": ("11010119900307451X", "wrong-secret-2")}),
        ("/oauth/introspect", {"auth": (keyed.client_id, "wrong-secret-3")}),
        ("/oauth/revoke", {}),
        (token, {"headers": unreadable}),
        (token, {"data": assertion_form(forged)}),
        (token, {"data": assertion_form(replayable)}),
        ("/oauth/introspect", {"data": {**assertion_form(misnamed), "token": "t"}}),
    ]
    caplog.set_level(logging.INFO)
    for path, request in attempts:
        data = request.pop("data", FORM)
        assert app_client.post(path, data=data, **request).status_code == 401, (path, request)

    entries = _authentications(hub)
    assert [entry.outcome for entry in entries] == [
        "refused: wrong-secret",
        "refused: unknown-client",
        "refused: wrong-method",
        "refused: no-credentials",
        "refused: malformed-credentials",
        "refused: bad-assertion",
        "refused: replayed-assertion",
        "refused: wrong-method",
    ]
    assert [entry.subject for entry in entries] == [
        f"client:{known.client_id}",
        "client:[id-number]",  # shaped like a citizen ID number: never kept in clear
        f"client:{keyed.client_id}",
        None,
        None,
        f"client:{keyed.client_id}",
        f"client:{keyed.client_id}",
        f"client:{known.client_id}",
    ]
    assert {entry.actor_client_id for entry in entries} == {"address:testclient"}
    assert [entry.purpose for entry in entries][:4] == [
        token,
        token,
        "/oauth/introspect",
        "/oauth/revoke",
    ]
    with Session(hub.engine) as session:
        assert hub.audit.verify(session).intact

    logged = caplog.text
    assert logged.count("client authentication failed") == len(attempts)
    for secret in ("wrong-secret-1", "wrong-secret-2", "wrong-secret-3", _secret(known)):
        assert secret not in logged
    for assertion in (forged, replayable, misnamed):
        assert assertion not in logged and assertion.split(".")[2] not in logged
    assert "11010119900307451X" not in logged


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect"])
def test_a_client_assertion_naming_a_secret_client_is_refused_not_a_500(
    app_client: TestClient, register_client: RegisterClient, hub: Hub, path: str
) -> None:
    """Issue 4(e): the client has no keys to check the assertion with (joserfc raised
    MissingKeyError). The answer is the one an unknown `sub` gets."""
    secret_client = register_client()
    key = client_key("ES256")
    now = hub.clock.epoch_seconds()
    answers = [
        app_client.post(
            path,
            data={**assertion_form(client_assertion(key, sub, ISSUER, now=now)), "token": "t"},
        )
        for sub in (secret_client.client_id, "public-security-000000000000")
    ]
    for answer in answers:
        assert answer.status_code == 401, answer.text
        assert answer.json()["type"] == "/problems/invalid-client"
        assert answer.json()["error"] == "invalid_client"
    assert answers[0].content == answers[1].content


@pytest.fixture
def statements(hub: Hub) -> Iterator[list[str]]:
    """Every SQL statement the hub's engine runs while the test looks."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    sa.event.listen(hub.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(hub.engine, "before_cursor_execute", record)


def test_a_successful_token_request_runs_no_sql_and_a_failed_one_is_written(
    app_client: TestClient,
    register_client: RegisterClient,
    hub: Hub,
    statements: list[str],
) -> None:
    """The throttle is consulted in memory: the token endpoint's hot path pays nothing for it."""
    new = register_client()
    hub.auth_state.refresh()  # what the background refresh does within a second
    statements.clear()
    assert request_token(app_client, new).status_code == 200
    assert statements == []

    form = {"grant_type": "client_credentials"}
    refused = app_client.post("/oauth/token", data=form, auth=(new.client_id, "guess"))
    assert refused.status_code == 401
    written = " ".join(statements).lower()
    assert "audit_log" in written and "client_auth_failure" in written
