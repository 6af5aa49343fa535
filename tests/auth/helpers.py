"""Shared helpers for the OAuth tests: token requests and client assertions."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from hub.auth.service import NewClient

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def request_token(client: TestClient, new: NewClient, scope: str | None = None) -> Any:
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    assert new.secret is not None
    return client.post("/oauth/token", data=form, auth=(new.client_id, new.secret))


def access_token(client: TestClient, new: NewClient, scope: str | None = None) -> str:
    response = request_token(client, new, scope)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client_key(alg: str, kid: str = "client-key-1") -> ECKey | RSAKey:
    params = {"kid": kid, "alg": alg, "use": "sig"}
    if alg == "ES256":
        return ECKey.generate_key("P-256", params, private=True)
    return RSAKey.generate_key(2048, params, private=True)


def public_jwks(key: ECKey | RSAKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False)]}


def client_assertion(
    key: ECKey | RSAKey,
    client_id: str,
    audience: str,
    *,
    jti: str | None = None,
    now: int | None = None,
    lifetime: int = 60,
) -> str:
    now = int(time.time()) if now is None else now
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti or uuid.uuid4().hex,
    }
    alg = key.alg or "ES256"
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key)


def assertion_form(assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
