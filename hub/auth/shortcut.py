"""The token endpoint's common request, answered before FastAPI's routing.

A department's system asks for a token with client_credentials and client_secret_basic
thousands of times an hour. Through the route (hub.auth.api) that request passed the
exception and exit-stack middleware, the route walk, FastAPI's request handling and Authlib's
generic request, grant and hook objects: more than half of its time, around the one thing it
needs, an ES256 signature (bench/RESULTS.md). This middleware, inside the edge (body limit,
unstorable characters) and inside Observe (metrics, trace, access line), reads such a request
and answers it with what `HubAuthorizationServer.issue_for_secret` issues.

Anything else passes on to the route unchanged, the body replayed: another grant, an
assertion, a repeated parameter, a throttled caller, and every refusal (a wrong secret, a
scope the client may not hold). The route's path refuses, records and throttles them as it
always did, so there is one place that says no.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.auth.api import is_form, oauth_form
from hub.auth.api import router as oauth_router
from hub.auth.failures import attempt_of
from hub.auth.server import GRANT_CLIENT_CREDENTIALS, HubAuthorizationServer
from hub.edge import replaying
from hub.ops import metrics

TOKEN_PATH = "/oauth/token"
_ANSWER_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1


class TokenShortcut:
    def __init__(self, app: ASGIApp, server: HubAuthorizationServer) -> None:
        self.app = app
        self.server = server
        # Observe labels the request with the route's template, as if the route had taken it.
        self.route: BaseRoute = next(
            route for route in oauth_router.routes if getattr(route, "path", None) == TOKEN_PATH
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != TOKEN_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        token = self._token(scope, body)
        if token is None:
            await self.app(scope, replaying(body, receive), send)
            return
        scope["route"] = self.route
        metrics.TOKENS_ISSUED.labels(GRANT_CLIENT_CREDENTIALS).inc()
        await JSONResponse(token, headers=_ANSWER_HEADERS)(scope, receive, send)

    def _token(self, scope: Scope, body: bytes) -> dict[str, Any] | None:
        # The first of repeated headers, as Starlette's Headers.get (and so the route) reads.
        headers = dict(reversed(scope["headers"]))
        if not is_form(headers.get(b"content-type", b"").decode("latin-1")):
            return None
        form, repeated = oauth_form(body)
        if repeated is not None or "client_assertion" in form or "client_assertion_type" in form:
            return None
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        client = scope.get("client")
        address = client[0] if client else "unknown"
        attempt = attempt_of(TOKEN_PATH, {"authorization": authorization}, form, address)
        if attempt.unreadable or self.server.failures.retry_after(attempt):
            return None
        return self.server.issue_for_secret(authorization, form)
