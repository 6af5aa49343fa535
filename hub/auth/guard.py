"""Local verification of access tokens, and the route class that guards routes by scope.

A token's signature is checked once per process: the verified caller is cached under the
exact token string, and each later use re-checks only what can change (expiry, revocation),
in memory. No database read happens on a guarded request; revocations reach the in-memory
set through AuthState's refresh (see hub/auth/state.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from joserfc import jws
from joserfc.errors import JoseError
from starlette.routing import BaseRoute

from hub.auth.domain import (
    TOKEN_ALGORITHM,
    TOKEN_TYPE,
    Principal,
    TokenFault,
    TokenRefused,
    check_claims,
    unknown_scopes,
)
from hub.auth.state import AuthState
from hub.clock import Clock
from hub.problems import Problem, Text, problem_type

TOKEN_MISSING = problem_type("token-missing", 401, "缺少访问令牌", "Access token missing")
TOKEN_INVALID = problem_type("token-invalid", 401, "访问令牌无效", "Access token invalid")
TOKEN_EXPIRED = problem_type("token-expired", 401, "访问令牌已过期", "Access token expired")
TOKEN_REVOKED = problem_type("token-revoked", 401, "访问令牌已被撤销", "Access token revoked")
INSUFFICIENT_SCOPE = problem_type(
    "insufficient-scope", 403, "访问令牌权限不足", "Insufficient scope"
)
REALM = "permit-hub"
OPENAPI_SCHEME = "oauth2"
CLIENT_SECRET_BASIC = "clientSecretBasic"
"""The OpenAPI scheme of a client's own credentials at the OAuth endpoints."""

_FAULT_TYPES = {TokenFault.EXPIRED: TOKEN_EXPIRED, TokenFault.REVOKED: TOKEN_REVOKED}
_FAULT_ZH = {
    TokenFault.MISSING: "请求未携带 Bearer 访问令牌",
    TokenFault.MALFORMED: "访问令牌格式错误",
    TokenFault.ALGORITHM: "访问令牌的签名算法不被接受",
    TokenFault.UNKNOWN_KEY: "访问令牌由未知密钥签名",
    TokenFault.SIGNATURE: "访问令牌签名无效",
    TokenFault.ISSUER: "访问令牌并非本平台签发",
    TokenFault.AUDIENCE: "访问令牌的受众不是本平台",
    TokenFault.EXPIRED: "访问令牌已过期",
    TokenFault.NOT_YET_VALID: "访问令牌尚未生效",
    TokenFault.REVOKED: "访问令牌已被撤销",
    TokenFault.CLAIMS: "访问令牌声明不完整或无效",
}


class TokenVerifier:
    """Checks the hub's access tokens against this process's snapshot of keys and revocations."""

    def __init__(
        self,
        state: AuthState,
        issuer: str,
        audience: str,
        clock: Clock,
        leeway: int = 30,
        cache_size: int = 50_000,
    ) -> None:
        self.state = state
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.leeway = leeway
        self.cache_size = cache_size
        self._verified: dict[str, Principal] = {}

    def verify(self, token: str) -> Principal:
        """The caller behind a bearer token, or TokenRefused saying why not."""
        principal = self._verified.get(token)
        if principal is None:
            principal = self.verify_claims(self.signed_claims(token))
            if len(self._verified) >= self.cache_size:
                self._verified.clear()
            self._verified[token] = principal
            return principal
        # Signature, issuer, audience and not-before held on first use; only time and
        # revocation can change since.
        if self.clock.epoch_seconds() >= principal.expires_at + self.leeway:
            del self._verified[token]
            raise TokenRefused(TokenFault.EXPIRED, "the token has expired")
        self._refuse_revoked(principal)
        return principal

    def verify_claims(self, claims: dict[str, Any]) -> Principal:
        """Every claim check of a signed token, revocation included."""
        now = self.clock.epoch_seconds()
        principal = check_claims(
            claims, issuer=self.issuer, audience=self.audience, now=now, leeway=self.leeway
        )
        self._refuse_revoked(principal)
        return principal

    def _refuse_revoked(self, principal: Principal) -> None:
        if principal.token_id in self.state.revoked:
            raise TokenRefused(TokenFault.REVOKED, "the token has been revoked")

    def signed_claims(self, token: str) -> dict[str, Any]:
        """Claims of a token whose header and signature are the hub's; lifetime not checked."""
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError, UnicodeError):
            raise TokenRefused(TokenFault.MALFORMED, "not a compact JWS") from None
        if header.get("alg") != TOKEN_ALGORITHM:
            raise TokenRefused(TokenFault.ALGORITHM, f"alg must be {TOKEN_ALGORITHM}")
        if header.get("typ") != TOKEN_TYPE:
            raise TokenRefused(TokenFault.MALFORMED, f"typ must be {TOKEN_TYPE}")
        key = self.state.public_key(str(header.get("kid", "")))
        if key is None:
            raise TokenRefused(TokenFault.UNKNOWN_KEY, "signed by a key the hub does not publish")
        try:
            payload = jws.deserialize_compact(token, key, algorithms=[TOKEN_ALGORITHM]).payload
            claims = json.loads(payload)
        except JoseError:
            raise TokenRefused(TokenFault.SIGNATURE, "the signature does not verify") from None
        except ValueError:
            raise TokenRefused(TokenFault.MALFORMED, "the payload is not JSON") from None
        if not isinstance(claims, dict):
            raise TokenRefused(TokenFault.MALFORMED, "the payload is not a JSON object")
        return claims


def refusal_problem(refusal: TokenRefused) -> Problem:
    """RFC 6750 §3: 401 with a Bearer challenge; no error code when no token was sent."""
    if refusal.fault is TokenFault.MISSING:
        challenge = f'Bearer realm="{REALM}"'
        kind = TOKEN_MISSING
    else:
        challenge = (
            f'Bearer realm="{REALM}", error="invalid_token", '
            f'error_description="{refusal.description}"'
        )
        kind = _FAULT_TYPES.get(refusal.fault, TOKEN_INVALID)
    detail = Text(_FAULT_ZH[refusal.fault], refusal.description)
    return Problem(
        kind, detail, headers={"WWW-Authenticate": challenge}, extensions={"reason": refusal.fault}
    )


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRefused(TokenFault.MISSING, "send the access token as 'Authorization: Bearer'")
    return token.strip()


SCOPES_ATTRIBUTE = "__hub_required_scopes__"
PUBLIC_ATTRIBUTE = "__hub_public__"
PRINCIPAL_KEY = "hub.principal"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def requires(*scopes: str) -> Callable[[Endpoint], Endpoint]:
    """Mark an endpoint as needing a valid token with every named scope (none: any token).

    The check is made by GuardedRoute before FastAPI resolves the endpoint's parameters: as a
    dependency it would cost as much again in FastAPI's resolver as the check itself.
    """
    unknown = unknown_scopes(scopes)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)}")

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, SCOPES_ATTRIBUTE, frozenset(scopes))
        return endpoint

    return mark


def public(endpoint: Endpoint) -> Endpoint:
    """Mark an endpoint as open to anyone, deliberately (see `check_route_guards`)."""
    setattr(endpoint, PUBLIC_ATTRIBUTE, True)
    return endpoint


def principal_of(request: Request) -> Principal:
    """The caller a GuardedRoute admitted."""
    principal: Principal = request.scope[PRINCIPAL_KEY]
    return principal


def authorize(request: Request, needed: frozenset[str]) -> Principal:
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = verifier.verify(bearer_token(request))
    except TokenRefused as refusal:
        raise refusal_problem(refusal) from None
    if needed <= principal.scopes:
        return principal
    wanted = " ".join(sorted(needed))
    raise Problem(
        INSUFFICIENT_SCOPE,
        Text(f"需要权限：{wanted}", f"This needs the scopes: {wanted}"),
        headers={
            "WWW-Authenticate": (
                f'Bearer realm="{REALM}", error="insufficient_scope", scope="{wanted}"'
            )
        },
    )


class GuardedRoute(APIRoute):
    """A route that admits only callers whose token carries the scopes of `@requires`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.required_scopes: frozenset[str] | None = getattr(endpoint, SCOPES_ATTRIBUTE, None)
        if self.required_scopes is not None:
            extra = dict(kwargs.get("openapi_extra") or {})
            extra.setdefault("security", [{OPENAPI_SCHEME: sorted(self.required_scopes)}])
            kwargs["openapi_extra"] = extra
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        needed = self.required_scopes
        if needed is None:
            return handler

        async def guarded(request: Request) -> Response:
            request.scope[PRINCIPAL_KEY] = authorize(request, needed)
            return await handler(request)

        return guarded


def check_route_guards(routes: Iterable[BaseRoute]) -> None:
    """Refuse to start with a route that is neither `@requires` nor `@public`, or whose
    `@requires` would be ignored because it is not a GuardedRoute: forgetting to guard a
    route must be a start-up error, not an open door."""
    faults = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI >= 0.16x includes lazily
        if included is not None:
            try:
                check_route_guards(included.routes)
            except RuntimeError as fault:
                faults.append(str(fault))
            continue
        if not isinstance(route, APIRoute):
            continue  # the OpenAPI document and docs pages
        guarded = getattr(route.endpoint, SCOPES_ATTRIBUTE, None) is not None
        if guarded and not isinstance(route, GuardedRoute):
            faults.append(f"{route.path} is marked @requires but is not a GuardedRoute")
        elif not guarded and not getattr(route.endpoint, PUBLIC_ATTRIBUTE, False):
            faults.append(f"{route.path} is neither @requires(...) nor @public")
    if faults:
        raise RuntimeError("; ".join(faults))
