"""The hub's API as the card writer and the window agent call it: an OAuth 2.0 client
(client_credentials, client_secret_basic) over httpx.

Authlib's httpx integration would fetch the token for us, but 1.9 deprecates it (a warning on
import); the client-credentials exchange is one POST, so it is done here, with the token kept
until shortly before it expires.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

EARLY_RENEWAL_SECONDS = 30.0


class HubUnreachable(Exception):
    """No answer from the hub (network, timeout, 5xx): the window may decide offline."""


@dataclass
class HubRefused(Exception):
    """The hub answered with a problem (RFC 9457) that is not the hub being down."""

    status: int
    problem: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.status} {self.problem.get('title', '')}: {self.problem.get('detail', '')}"


class HubClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        *,
        language: str = "zh-CN",
        timeout: float = 3.0,
    ) -> None:
        self._credentials = (client_id, client_secret)
        self._scope = scope
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={"Accept-Language": language},
        )
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str) -> Any:
        return _parsed(self._request("GET", path, None))

    def get_text(self, path: str) -> str:
        """A body that is not JSON (the status list is a compact JWS)."""
        answer = self._request("GET", path, None)
        if answer.is_success:
            return answer.text
        return str(_parsed(answer))  # raises: a failure's body is a JSON problem

    def post(self, path: str, body: Any) -> Any:
        return _parsed(self._request("POST", path, body))

    def _request(self, method: str, path: str, body: Any) -> httpx.Response:
        """One call; a 401 (the token expired early, was revoked, its key rotated out) gets
        one more try with a new token."""
        answer = self._send(method, path, body)
        if answer.status_code == 401:
            with self._lock:
                self._token = None
            answer = self._send(method, path, body)
        return answer

    def _send(self, method: str, path: str, body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._access_token()}"}
        try:
            return self._http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise HubUnreachable(str(error)) from None

    def _access_token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                try:
                    answer = self._http.post(
                        "/oauth/token",
                        data={"grant_type": "client_credentials", "scope": self._scope},
                        auth=self._credentials,
                    )
                except httpx.HTTPError as error:
                    raise HubUnreachable(str(error)) from None
                token = _parsed(answer)
                self._token = str(token["access_token"])
                lifetime = float(token.get("expires_in", 60))
                self._renew_at = time.monotonic() + max(0.0, lifetime - EARLY_RENEWAL_SECONDS)
            return self._token


def _parsed(answer: httpx.Response) -> Any:
    if answer.status_code >= 500:
        raise HubUnreachable(f"the hub answered {answer.status_code}")
    try:
        body = answer.json()
    except ValueError:
        raise HubUnreachable(f"the hub answered {answer.status_code} without JSON") from None
    if answer.is_error:
        raise HubRefused(answer.status_code, body if isinstance(body, dict) else {})
    return body
