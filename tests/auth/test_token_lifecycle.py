"""Introspection, revocation across processes, key rotation, metadata and the JWKS."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from joserfc import jws
from sqlmodel import col, select

from hub.audit import AuditEntry
from hub.auth.service import rotate_signing_key
from hub.clock import FixedClock
from hub.composition import Hub, build_hub
from hub.db import unit_of_work
from hub.schemas.service import builtin_schemas
from tests.auth.helpers import access_token, bearer
from tests.conftest import ISSUER, RegisterClient


def _introspect(client: TestClient, caller: tuple[str, str], token: str) -> dict[str, object]:
    response = client.post("/oauth/introspect", data={"token": token}, auth=caller)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _credentials(new: object) -> tuple[str, str]:
    client_id, secret = new.client_id, new.secret
    assert secret
    return client_id, secret


def test_introspection_of_own_and_foreign_tokens(
    app_client: TestClient, register_client: RegisterClient
) -> None:
    owner = register_client("housing", ("exchange:feed",))
    other = register_client("health", ("exchange:feed",))
    auditor = register_client("public-security", ("auth:introspect",))
    token = access_token(app_client, owner)

    mine = _introspect(app_client, _credentials(owner), token)
    assert mine["active"] is True
    assert mine["client_id"] == owner.client_id and mine["department"] == "housing"
    assert _introspect(app_client, _credentials(other), token) == {"active": False}
    assert _introspect(app_client, _credentials(auditor), token)["active"] is True
    assert _introspect(app_client, _credentials(owner), "garbage") == {"active": False}


def test_a_token_type_hint_is_as_documented(
    app_client: TestClient, register_client: RegisterClient
) -> None:
    """RFC 7662 §2.1: a hint the hub knows, or none; a parameter sent empty is as if omitted
    (RFC 6749 §3.1); any other hint is unsupported_token_type. The OpenAPI says the same."""
    owner = register_client()
    token = access_token(app_client, owner)
    for hint in ("access_token", ""):
        response = app_client.post(
            "/oauth/introspect",
            data={"token": token, "token_type_hint": hint},
            auth=_credentials(owner),
        )
        assert response.status_code == 200 and response.json()["active"] is True, hint
    refused = app_client.post(
        "/oauth/introspect",
        data={"token": token, "token_type_hint": "refresh_token"},
        auth=_credentials(owner),
    )
    assert refused.status_code == 400
    body = app_client.get("/openapi.json").json()["paths"]["/oauth/introspect"]["post"]
    form = body["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["properties"]["token_type_hint"]["enum"] == ["access_token", ""]


def test_introspection_needs_client_authentication(app_client: TestClient) -> None:
    response = app_client.post("/oauth/introspect", data={"token": "x"})
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/invalid-client"


def test_expired_and_revoked_tokens_introspect_inactive(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> None:
    owner = register_client()
    revoked, expiring = access_token(app_client, owner), access_token(app_client, owner)
    app_client.post("/oauth/revoke", data={"token": revoked}, auth=_credentials(owner))
    assert _introspect(app_client, _credentials(owner), revoked) == {"active": False}
    clock.advance(timedelta(hours=1))
    assert _introspect(app_client, _credentials(owner), expiring) == {"active": False}


def test_only_the_owner_may_revoke(app_client: TestClient, register_client: RegisterClient) -> None:
    owner, other = register_client(), register_client("health", ("exchange:feed",))
    token = access_token(app_client, owner)
    response = app_client.post("/oauth/revoke", data={"token": token}, auth=_credentials(other))
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-grant"
    assert app_client.get("/auth/v1/whoami", headers=bearer(token)).status_code == 200


def test_revoking_an_unknown_token_is_not_an_error(
    app_client: TestClient, register_client: RegisterClient
) -> None:
    """RFC 7009 §2.2: invalid tokens do not cause an error response."""
    owner = register_client()
    response = app_client.post(
        "/oauth/revoke", data={"token": "nonsense"}, auth=_credentials(owner)
    )
    assert response.status_code == 200


def test_revocation_reaches_another_process_on_its_next_refresh(
    app_client: TestClient, register_client: RegisterClient, hub: Hub
) -> None:
    """A second hub process (its own snapshot on the same database) refuses the token after
    one refresh, without reading the database on the request itself."""
    owner = register_client()
    token = access_token(app_client, owner)
    other = build_hub(hub.settings, engine=hub.engine, clock=hub.clock)
    other.prepare()
    assert other.verifier.verify(token).client_id == owner.client_id

    app_client.post("/oauth/revoke", data={"token": token}, auth=_credentials(owner))
    assert other.verifier.verify(token).client_id == owner.client_id  # not refreshed yet
    other.auth_state.refresh()
    try:
        other.verifier.verify(token)
    except Exception as refusal:
        assert getattr(refusal, "fault", None) == "revoked"
    else:
        raise AssertionError("the revoked token was still accepted after a refresh")


def test_revocation_is_audited(
    app_client: TestClient, register_client: RegisterClient, hub: Hub
) -> None:
    owner = register_client()
    token = access_token(app_client, owner)
    app_client.post("/oauth/revoke", data={"token": token}, auth=_credentials(owner))
    with unit_of_work(hub.engine) as session:
        report = hub.audit.verify(session)
        assert report.intact
        actions = [
            row.action for row in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))
        ]
    # the app's start registered the built-in schemas
    started = ["schema.register"] * len(builtin_schemas())
    assert actions == [*started, "client.add", "token.revoke"]


def _kid(token: str) -> str:
    return str(jws.extract_compact(token.encode()).headers()["kid"])


def test_key_rotation_keeps_old_tokens_valid_until_they_expire(
    app_client: TestClient, register_client: RegisterClient, hub: Hub, clock: FixedClock
) -> None:
    owner = register_client()
    old_token = access_token(app_client, owner)
    old_kid = _kid(old_token)
    with unit_of_work(hub.engine) as session:
        new_kid = rotate_signing_key(session, hub.audit, hub.key_password, clock.now())
    hub.auth_state.refresh()

    new_token = access_token(app_client, owner)
    assert _kid(new_token) == new_kid != old_kid
    published = {key["kid"] for key in app_client.get("/oauth/jwks.json").json()["keys"]}
    assert published == {old_kid, new_kid}
    for token in (old_token, new_token):
        assert app_client.get("/auth/v1/whoami", headers=bearer(token)).status_code == 200

    clock.advance(timedelta(seconds=hub.settings.access_token_ttl_seconds + 61))
    hub.auth_state.refresh()
    published = {key["kid"] for key in app_client.get("/oauth/jwks.json").json()["keys"]}
    assert published == {new_kid}


def test_metadata_and_jwks(app_client: TestClient) -> None:
    metadata = app_client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == ISSUER
    assert metadata["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert metadata["grant_types_supported"] == ["client_credentials", "authorization_code"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "private_key_jwt",
        "none",  # the console, a public client, for the authorization code only
    }
    keys = app_client.get("/oauth/jwks.json").json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "EC" and keys[0]["crv"] == "P-256" and keys[0]["alg"] == "ES256"
    assert "d" not in keys[0]
