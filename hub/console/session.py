"""The console's side of a sign-in: its session cookie, its CSRF tokens, its PKCE verifier.

The console is a public OAuth client of the hub's own authorization server. It starts a
sign-in with a random `state` kept in a cookie; the PKCE verifier is derived from that state
under a key of the console's own, so nothing else needs storing and nobody without the key
can exchange an intercepted code. The access token it receives is the session cookie itself:
HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure
whenever the hub is reached other than on the loopback interface, and checked on every page
by the same verifier as any bearer token, plus the session's idle timeout.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import Request
from starlette.responses import Response

from hub.auth.domain import Principal
from hub.auth.signin import SignInDesk, session_alive

SESSION_COOKIE: Final = "hub_session"
STATE_COOKIE: Final = "hub_sign_in"
FORM_COOKIE: Final = "hub_form"
KEY_PURPOSE: Final = "console"
LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True)
class ConsoleSessions:
    """Satisfies the guard's `StaffSessions`; built once per app."""

    desk: SignInDesk
    key: bytes
    idle_seconds: int
    cookie: str = SESSION_COOKIE

    def alive(self, principal: Principal) -> bool:
        return session_alive(self.desk, principal, self.idle_seconds)

    def csrf_token(self, principal: Principal) -> str:
        return self.mac("csrf", principal.token_id)

    def form_token(self, browser: str) -> str:
        """The CSRF token of the sign-in form, for the browser holding the form cookie."""
        return self.mac("sign-in-form", browser)

    def code_verifier(self, state: str) -> str:
        digest = hmac.new(self.key, f"pkce|{state}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def code_challenge(self, state: str) -> str:
        return str(create_s256_code_challenge(self.code_verifier(state)))

    def mac(self, purpose: str, value: str) -> str:
        """`value` bound to `purpose` under the console's key (hex HMAC-SHA256)."""
        return hmac.new(self.key, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


def set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int, path: str
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.hostname not in LOOPBACK,
    )


def sessions_of(request: Request) -> ConsoleSessions:
    sessions: ConsoleSessions = request.app.state.staff_sessions
    return sessions
