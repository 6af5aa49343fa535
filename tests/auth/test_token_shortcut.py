"""The token shortcut (hub.auth.shortcut) issues what Authlib's path issues, and steps aside.

Refusals are the route's: every refusal test of test_token_endpoint.py and test_throttle.py
goes through the shortcut first, which passes them on.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from starlette.datastructures import Headers

from hub.auth.server import FormRequest, OAuthSuccess
from hub.composition import Hub
from tests.auth.helpers import request_token
from tests.conftest import RegisterClient


def _not_called(*args: Any) -> None:
    raise AssertionError("the route's path was taken")


def _protected_header(token: str) -> dict[str, str]:
    header: dict[str, str] = jws.extract_compact(token.encode()).protected
    return header


def test_the_shortcut_answers_as_authlib_s_path_does(
    app_client: TestClient, register_client: RegisterClient, hub: Hub
) -> None:
    new = register_client("housing", ("schemas:read", "exchange:feed"))
    assert new.secret is not None
    server = hub.authorization_server
    with pytest.MonkeyPatch.context() as patch:  # Authlib's path is not taken
        patch.setattr(server, "create_token_response", _not_called)
        quick = request_token(app_client, new, scope="exchange:feed")
    assert quick.status_code == 200
    assert quick.headers["content-type"] == "application/json"
    assert quick.headers["cache-control"] == "no-store"
    assert quick.headers["pragma"] == "no-cache"
    assert quick.headers["x-request-id"]

    basic = base64.b64encode(f"{new.client_id}:{new.secret}".encode()).decode()
    form = {"grant_type": "client_credentials", "scope": "exchange:feed"}
    request = FormRequest(
        "POST", server.token_endpoint, Headers({"authorization": f"Basic {basic}"}), form
    )
    full = server.create_token_response(request)
    assert isinstance(full, OAuthSuccess)

    body = quick.json()
    assert body.keys() == full.body.keys() == {"access_token", "token_type", "expires_in", "scope"}
    assert {k: v for k, v in body.items() if k != "access_token"} == {
        k: v for k, v in full.body.items() if k != "access_token"
    }
    quick_claims = hub.verifier.signed_claims(body["access_token"])
    full_claims = hub.verifier.signed_claims(full.body["access_token"])
    assert quick_claims.keys() == full_claims.keys()
    assert {k for k in quick_claims if quick_claims[k] != full_claims[k]} == {"jti"}
    assert _protected_header(body["access_token"]) == _protected_header(full.body["access_token"])


def test_the_route_answers_what_the_shortcut_does_not_take(
    app_client: TestClient, register_client: RegisterClient
) -> None:
    """A form with its parameters in another order, a charset, and parameters the hub does not
    read is still the common request; a repeated one is the route's refusal."""
    new = register_client("health", ("exchange:feed",))
    assert new.secret is not None
    auth = (new.client_id, new.secret)
    body = "foo=1&scope=exchange%3Afeed&grant_type=client_credentials&foo=2"
    kind = {"content-type": "application/x-www-form-urlencoded; charset=UTF-8"}
    taken = app_client.post("/oauth/token", content=body, headers=kind, auth=auth)
    assert taken.status_code == 200, taken.text
    assert taken.json()["scope"] == "exchange:feed"

    repeated = app_client.post(
        "/oauth/token", content=body + "&scope=exchange%3Afeed", headers=kind, auth=auth
    )
    assert repeated.status_code == 400
    assert repeated.json()["error"] == "invalid_request"
    assert "'scope'" in json.dumps(repeated.json()["detail"])
