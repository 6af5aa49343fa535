"""The token endpoint: both client authentication methods and every refusal."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hub.composition import Hub
from tests.auth.helpers import (
    assertion_form,
    bearer,
    client_assertion,
    client_key,
    public_jwks,
    request_token,
)
from tests.conftest import ISSUER, RegisterClient


def test_client_secret_basic_issues_an_rfc9068_token(
    app_client: TestClient, register_client: RegisterClient, hub: Hub
) -> None:
    new = register_client("housing", ("schemas:read", "exchange:feed"))
    response = request_token(app_client, new)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == hub.settings.access_token_ttl_seconds
    assert body["scope"] == "exchange:feed schemas:read"
    claims = hub.verifier.signed_claims(body["access_token"])
    assert claims["iss"] == ISSUER
    assert claims["aud"] == hub.settings.audience
    assert claims["sub"] == claims["client_id"] == new.client_id
    assert claims["department"] == "housing"
    assert claims["exp"] - claims["iat"] == hub.settings.access_token_ttl_seconds

    whoami = app_client.get("/auth/v1/whoami", headers=bearer(body["access_token"]))
    assert whoami.status_code == 200
    assert whoami.json()["client_id"] == new.client_id
    assert whoami.json()["scopes"] == ["exchange:feed", "schemas:read"]


def test_narrower_scope_may_be_asked(
    app_client: TestClient, register_client: RegisterClient
) -> None:
    new = register_client("health", ("schemas:read", "exchange:feed"))
    response = request_token(app_client, new, scope="exchange:feed")
    assert response.json()["scope"] == "exchange:feed"


def test_scope_not_granted_to_the_client_is_refused(
    app_client: TestClient, register_client: RegisterClient
) -> None:
    new = register_client("health", ("exchange:feed",))
    response = request_token(app_client, new, scope="exchange:proofs")
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-scope"
    assert response.json()["error"] == "invalid_scope"


def test_wrong_secret_is_invalid_client(
    app_client: TestClient, register_client: RegisterClient
) -> None:
    new = register_client()
    response = app_client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(new.client_id, "not-the-secret"),
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Basic")
    problem = response.json()
    assert problem["type"] == "/problems/invalid-client"
    assert problem["error"] == "invalid_client"


def test_unknown_client_is_invalid_client(app_client: TestClient) -> None:
    response = app_client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("nobody", "secret")
    )
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/invalid-client"


def test_no_client_authentication_is_invalid_client(app_client: TestClient) -> None:
    response = app_client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/invalid-client"


def test_unsupported_grant_type(app_client: TestClient, register_client: RegisterClient) -> None:
    new = register_client()
    assert new.secret
    response = app_client.post(
        "/oauth/token", data={"grant_type": "password"}, auth=(new.client_id, new.secret)
    )
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/unsupported-grant-type"


def test_json_body_is_unsupported_media_type(app_client: TestClient) -> None:
    response = app_client.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert response.status_code == 415
    assert response.json()["type"] == "/problems/unsupported-media-type"


def test_repeated_parameter_is_invalid_request(app_client: TestClient) -> None:
    response = app_client.post(
        "/oauth/token",
        content="grant_type=client_credentials&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-request"


def test_unrecognised_parameters_are_ignored_even_repeated(
    app_client: TestClient, register_client: RegisterClient
) -> None:
    """RFC 6749 §3.2: the server MUST ignore unrecognised request parameters."""
    new = register_client()
    assert new.secret is not None
    response = app_client.post(
        "/oauth/token",
        content="grant_type=client_credentials&x=1&x=2&client_secret=ignored",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(new.client_id, new.secret),
    )
    assert response.status_code == 200, response.text


def test_one_authentication_method_per_request(
    app_client: TestClient, register_client: RegisterClient, hub: Hub
) -> None:
    """RFC 6749 §2.3: Basic credentials beside an assertion, or an assertion of another
    type, are an invalid request, whatever the credentials."""
    secret_client = register_client()
    assert secret_client.secret is not None
    key = client_key("ES256")
    keyed = register_client("education", ("exchange:proofs",), jwks=public_jwks(key))
    now = int(hub.clock.now().timestamp())
    form = assertion_form(client_assertion(key, keyed.client_id, ISSUER, now=now))
    both = app_client.post(
        "/oauth/token", data=form, auth=(secret_client.client_id, secret_client.secret)
    )
    other_type = app_client.post(
        "/oauth/token", data={**form, "client_assertion_type": "urn:example:saml"}
    )
    for response in (both, other_type):
        assert response.status_code == 400, response.text
        assert response.json()["type"] == "/problems/invalid-request"
        assert response.json()["error"] == "invalid_request"


def test_private_key_jwt_es256_and_rs256(
    app_client: TestClient, register_client: RegisterClient, hub: Hub
) -> None:
    now = int(hub.clock.now().timestamp())
    for alg in ("ES256", "RS256"):
        key = client_key(alg)
        new = register_client("education", ("exchange:proofs",), jwks=public_jwks(key))
        assert new.secret is None
        assertion = client_assertion(key, new.client_id, f"{ISSUER}/oauth/token", now=now)
        response = app_client.post("/oauth/token", data=assertion_form(assertion))
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        assert hub.verifier.verify(token).client_id == new.client_id


def test_replayed_client_assertion_is_refused(
    app_client: TestClient, register_client: RegisterClient, hub: Hub
) -> None:
    key = client_key("ES256")
    new = register_client("education", ("exchange:proofs",), jwks=public_jwks(key))
    now = int(hub.clock.now().timestamp())
    assertion = client_assertion(key, new.client_id, ISSUER, now=now)
    first = app_client.post("/oauth/token", data=assertion_form(assertion))
    assert first.status_code == 200
    replay = app_client.post("/oauth/token", data=assertion_form(assertion))
    assert replay.status_code == 401
    assert replay.json()["type"] == "/problems/client-assertion-replayed"
    assert replay.json()["error"] == "invalid_client"


def test_client_assertion_refusals(
    app_client: TestClient, register_client: RegisterClient, hub: Hub
) -> None:
    key = client_key("ES256")
    new = register_client("education", ("exchange:proofs",), jwks=public_jwks(key))
    now = int(hub.clock.now().timestamp())
    stranger = client_key("ES256")
    cases = {
        "signed by a key the client did not register": client_assertion(
            stranger, new.client_id, ISSUER, now=now
        ),
        "meant for another server": client_assertion(
            key, new.client_id, "https://elsewhere.example", now=now
        ),
        "expired": client_assertion(key, new.client_id, ISSUER, now=now - 600),
        "too long-lived": client_assertion(key, new.client_id, ISSUER, now=now, lifetime=3_600),
    }
    for case, assertion in cases.items():
        response = app_client.post("/oauth/token", data=assertion_form(assertion))
        assert response.status_code == 401, case
        assert response.json()["type"] == "/problems/invalid-client", case


def test_secret_client_cannot_use_assertion_and_vice_versa(
    app_client: TestClient, register_client: RegisterClient, hub: Hub
) -> None:
    key = client_key("ES256")
    keyed = register_client("education", ("exchange:proofs",), jwks=public_jwks(key))
    response = app_client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(keyed.client_id, "guess"),
    )
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/invalid-client"
