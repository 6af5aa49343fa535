"""The request guard: each way a presented token can be wrong gets its own status and type."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey
from sqlalchemy.engine import Engine

from hub.app import create_app
from hub.auth.guard import principal_of, requires
from hub.clock import FixedClock
from hub.composition import Hub
from hub.settings import Settings
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient


@pytest.fixture
def guarded_client(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[TestClient]:
    """The real app plus one route that needs a scope the test clients lack or have."""
    app = create_app(settings, engine=engine, clock=clock)

    @app.get("/probe/write")
    @requires("registry:write")
    async def probe(request: Request) -> dict[str, str]:
        return {"client_id": principal_of(request).client_id}

    with TestClient(app) as client:
        yield client


def _hub(client: TestClient) -> Hub:
    return client.app.state.hub  # type: ignore[attr-defined, no-any-return]


def _claims(hub: Hub, **changes: Any) -> dict[str, Any]:
    now = int(hub.clock.now().timestamp())
    claims = {
        "iss": hub.settings.issuer,
        "aud": hub.settings.audience,
        "sub": "forged",
        "client_id": "forged",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "forged-jti",
        "scope": "registry:read registry:write",
        "department": "housing",
        "client_kind": "department",
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _signed_by_hub(hub: Hub, header: dict[str, Any] | None = None, **changes: Any) -> str:
    key = hub.auth_state.signing_key()
    head = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid, **(header or {})}
    return jwt.encode(head, _claims(hub, **changes), key.private)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _assert_refused(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"/problems/{slug}"
    if status == 401:
        assert response.headers["www-authenticate"].startswith('Bearer realm="permit-hub"')
    return problem


def test_a_token_signed_by_the_hub_with_good_claims_passes(guarded_client: TestClient) -> None:
    token = _signed_by_hub(_hub(guarded_client))
    response = guarded_client.get("/probe/write", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"client_id": "forged"}


def test_missing_token(guarded_client: TestClient) -> None:
    response = guarded_client.get("/probe/write")
    _assert_refused(response, 401, "token-missing")
    assert "error=" not in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("case", "changes", "reason"),
    [
        ("wrong audience", {"aud": "urn:another-hub:api"}, "audience"),
        ("wrong issuer", {"iss": "https://evil.example"}, "issuer"),
        ("not yet valid", {"nbf": 4_000_000_000}, "not-yet-valid"),
        ("no jti", {"jti": None}, "claims"),
        ("unknown department", {"department": "army"}, "claims"),
    ],
)
def test_claims_refused(
    guarded_client: TestClient, case: str, changes: dict[str, Any], reason: str
) -> None:
    token = _signed_by_hub(_hub(guarded_client), **changes)
    response = guarded_client.get("/probe/write", headers=bearer(token))
    problem = _assert_refused(response, 401, "token-invalid")
    assert problem["reason"] == reason, case
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_expired_token(
    guarded_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> None:
    token = access_token(guarded_client, register_client(scopes=("registry:write",)))
    assert guarded_client.get("/probe/write", headers=bearer(token)).status_code == 200
    clock.advance(timedelta(seconds=_hub(guarded_client).settings.access_token_ttl_seconds + 31))
    response = guarded_client.get("/probe/write", headers=bearer(token))
    _assert_refused(response, 401, "token-expired")


def test_alg_none_is_refused(guarded_client: TestClient) -> None:
    hub = _hub(guarded_client)
    kid = hub.auth_state.signing_key().kid
    token = f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': kid})}.{_b64(_claims(hub))}."
    problem = _assert_refused(
        guarded_client.get("/probe/write", headers=bearer(token)), 401, "token-invalid"
    )
    assert problem["reason"] in ("algorithm", "malformed")


def test_hmac_with_the_public_key_as_secret_is_refused(guarded_client: TestClient) -> None:
    """The classic algorithm-confusion attack: HS256 keyed with the published public key."""
    hub = _hub(guarded_client)
    public = json.dumps(hub.auth_state.keys[0].public_jwk).encode()
    key = OctKey.import_key(public)
    header = {"alg": "HS256", "typ": "at+jwt", "kid": hub.auth_state.signing_key().kid}
    token = jwt.encode(header, _claims(hub), key, algorithms=["HS256"])
    problem = _assert_refused(
        guarded_client.get("/probe/write", headers=bearer(token)), 401, "token-invalid"
    )
    assert problem["reason"] == "algorithm"


def test_signature_by_an_unknown_key(guarded_client: TestClient) -> None:
    rogue = ECKey.generate_key("P-256", {"kid": "rogue-key"}, private=True)
    token = jwt.encode(
        {"alg": "ES256", "typ": "at+jwt", "kid": "rogue-key"}, _claims(_hub(guarded_client)), rogue
    )
    problem = _assert_refused(
        guarded_client.get("/probe/write", headers=bearer(token)), 401, "token-invalid"
    )
    assert problem["reason"] == "unknown-key"


def test_signature_by_another_key_under_the_hubs_kid(guarded_client: TestClient) -> None:
    hub = _hub(guarded_client)
    rogue = ECKey.generate_key("P-256", private=True)
    header = {"alg": "ES256", "typ": "at+jwt", "kid": hub.auth_state.signing_key().kid}
    token = jwt.encode(header, _claims(hub), rogue)
    problem = _assert_refused(
        guarded_client.get("/probe/write", headers=bearer(token)), 401, "token-invalid"
    )
    assert problem["reason"] == "signature"


def test_wrong_typ_and_garbage_are_malformed(guarded_client: TestClient) -> None:
    hub = _hub(guarded_client)
    for token in (
        _signed_by_hub(hub, header={"typ": "JWT"}),
        "not-a-jwt",
        "a.b.c",
        "Zm9v.YmFy.YmF6",
    ):
        problem = _assert_refused(
            guarded_client.get("/probe/write", headers=bearer(token)), 401, "token-invalid"
        )
        assert problem["reason"] == "malformed", token


def test_tampered_payload_fails_the_signature(
    guarded_client: TestClient, register_client: RegisterClient
) -> None:
    token = access_token(guarded_client, register_client(scopes=("registry:read",)))
    header, _, signature = token.split(".")
    escalated = _claims(_hub(guarded_client), scope="registry:read registry:write")
    forged = f"{header}.{_b64(escalated)}.{signature}"
    problem = _assert_refused(
        guarded_client.get("/probe/write", headers=bearer(forged)), 401, "token-invalid"
    )
    assert problem["reason"] == "signature"


def test_missing_scope(guarded_client: TestClient, register_client: RegisterClient) -> None:
    token = access_token(guarded_client, register_client(scopes=("registry:read",)))
    response = guarded_client.get("/probe/write", headers=bearer(token))
    _assert_refused(response, 403, "insufficient-scope")
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="registry:write"' in challenge


def test_revoked_token(guarded_client: TestClient, register_client: RegisterClient) -> None:
    new = register_client(scopes=("registry:write",))
    token = access_token(guarded_client, new)
    assert guarded_client.get("/probe/write", headers=bearer(token)).status_code == 200
    assert new.secret
    revoked = guarded_client.post(
        "/oauth/revoke", data={"token": token}, auth=(new.client_id, new.secret)
    )
    assert revoked.status_code == 200
    _assert_refused(guarded_client.get("/probe/write", headers=bearer(token)), 401, "token-revoked")


def test_a_route_neither_guarded_nor_public_stops_the_start(
    settings: Settings, engine: Engine, clock: FixedClock
) -> None:
    app = create_app(settings, engine=engine, clock=clock)

    @app.get("/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="/forgotten is neither"), TestClient(app):
        pass


def test_requires_on_a_plain_route_stops_the_start(
    settings: Settings, engine: Engine, clock: FixedClock
) -> None:
    """A router made without route_class=GuardedRoute would ignore @requires: refuse it."""
    app = create_app(settings, engine=engine, clock=clock)
    plain = APIRouter()

    @plain.get("/unenforced")
    @requires("registry:read")
    async def unenforced() -> dict[str, str]:
        return {}

    app.include_router(plain)
    with pytest.raises(RuntimeError, match="not a GuardedRoute"), TestClient(app):
        pass


def test_unknown_scope_in_requires_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="registry:delete"):
        requires("registry:delete")


def test_openapi_names_the_scopes_of_guarded_routes(guarded_client: TestClient) -> None:
    document = guarded_client.get("/openapi.json").json()
    assert document["paths"]["/probe/write"]["get"]["security"] == [{"oauth2": ["registry:write"]}]
    # The token endpoint takes the client's own credentials, not a token.
    assert document["paths"]["/oauth/token"]["post"]["security"] == [{"clientSecretBasic": []}]
    basic = document["components"]["securitySchemes"]["clientSecretBasic"]
    assert basic == {"type": "http", "scheme": "basic"}
    flow = document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"].endswith("/oauth/token")
    assert "verification:tap" in flow["scopes"]
