"""The route class that guards routes by scope, with the verified caller of each request
(hub.auth.tokens checks the token) and the problems a refused token gets."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any, Protocol, TypeVar
from urllib.parse import parse_qsl

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from hub.audit import Actor
from hub.auth.domain import (
    ClientKind,
    Principal,
    TokenFault,
    TokenRefused,
    unknown_scopes,
)
from hub.auth.tokens import TokenVerifier
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


SIGN_IN_REQUIRED = problem_type("sign-in-required", 401, "请先登录", "Sign in first")
CSRF_REFUSED = problem_type(
    "csrf-refused",
    403,
    "表单已失效或并非来自本控制台",
    "The form is stale or not from this console",
)
SCOPES_ATTRIBUTE = "__hub_required_scopes__"
STAFF_ATTRIBUTE = "__hub_staff_scopes__"
PUBLIC_ATTRIBUTE = "__hub_public__"
SAFE_METHODS = frozenset({"GET", "HEAD"})
PRINCIPAL_KEY = "hub.principal"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def requires(*scopes: str) -> Callable[[Endpoint], Endpoint]:
    """Mark an endpoint as needing a valid token with every named scope (none: any token).

    The check is made by GuardedRoute before FastAPI resolves the endpoint's parameters: as a
    dependency it would cost as much again in FastAPI's resolver as the check itself.
    """
    return _marker(SCOPES_ATTRIBUTE, scopes)


def signed_in(*scopes: str) -> Callable[[Endpoint], Endpoint]:
    """Mark a console page as needing a member of staff signed in (the session cookie) whose
    roles give every named scope; a form posted to it must carry the session's CSRF token."""
    return _marker(STAFF_ATTRIBUTE, scopes)


def _marker(attribute: str, scopes: tuple[str, ...]) -> Callable[[Endpoint], Endpoint]:
    unknown = unknown_scopes(scopes)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)}")

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, attribute, frozenset(scopes))
        return endpoint

    return mark


class StaffSessions(Protocol):
    """The console's sessions as the guard needs them (hub.console.session)."""

    cookie: str

    def alive(self, principal: Principal) -> bool: ...

    def csrf_token(self, principal: Principal) -> str: ...


def public(endpoint: Endpoint) -> Endpoint:
    """Mark an endpoint as open to anyone, deliberately (see `check_route_guards`)."""
    setattr(endpoint, PUBLIC_ATTRIBUTE, True)
    return endpoint


def principal_of(request: Request) -> Principal:
    """The caller a GuardedRoute admitted."""
    principal: Principal = request.scope[PRINCIPAL_KEY]
    return principal


def actor_of(request: Request) -> Actor:
    """The caller a GuardedRoute admitted, as the audit log names it."""
    return Actor.of(principal_of(request))


async def current_actor(request: Request) -> Actor:
    """`actor_of` as a dependency, async for the reason `hub.deps.current_hub` is."""
    return actor_of(request)


CurrentActor = Annotated[Actor, Depends(current_actor)]
"""The caller as the audit log names it, for a route's audited writes and reads. The hot
routes (taps, look-ups, the feed) call `actor_of` instead: a dependency costs a resolver
step per request."""


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


async def authorize_staff(request: Request, needed: frozenset[str]) -> Principal:
    """The member of staff whose console session this request carries, with `needed`; a form
    post must also carry the session's CSRF token and, when the browser says where it comes
    from, come from this hub."""
    sessions: StaffSessions = request.app.state.staff_sessions
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = verifier.verify(request.cookies.get(sessions.cookie, ""))
    except TokenRefused:
        raise Problem(SIGN_IN_REQUIRED) from None
    if principal.kind is not ClientKind.STAFF:
        raise Problem(SIGN_IN_REQUIRED)
    if not await run_in_threadpool(sessions.alive, principal):
        raise Problem(SIGN_IN_REQUIRED, Text("会话已结束，请重新登录", "The session has ended"))
    if request.method not in SAFE_METHODS:
        await _refuse_forged(request, sessions.csrf_token(principal))
    if not needed <= principal.scopes:
        wanted = " ".join(sorted(needed))
        raise Problem(
            INSUFFICIENT_SCOPE,
            Text(f"您的角色不包含此页所需的权限：{wanted}", f"Your roles do not give: {wanted}"),
        )
    return principal


async def _refuse_forged(request: Request, expected: str) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Problem(CSRF_REFUSED)
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    if not hmac.compare_digest(form.get("csrf", ""), expected):
        raise Problem(CSRF_REFUSED)


class GuardedRoute(APIRoute):
    """A route that admits only callers whose token carries the scopes of `@requires`, or,
    for a console page, a member of staff signed in with those of `@signed_in`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.required_scopes: frozenset[str] | None = getattr(endpoint, SCOPES_ATTRIBUTE, None)
        self.staff_scopes: frozenset[str] | None = getattr(endpoint, STAFF_ATTRIBUTE, None)
        if self.required_scopes is not None:
            extra = dict(kwargs.get("openapi_extra") or {})
            extra.setdefault("security", [{OPENAPI_SCHEME: sorted(self.required_scopes)}])
            kwargs["openapi_extra"] = extra
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        needed, staff = self.required_scopes, self.staff_scopes
        if staff is not None:

            async def page(request: Request) -> Response:
                request.scope[PRINCIPAL_KEY] = await authorize_staff(request, staff)
                return await handler(request)

            return page
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
        guarded = any(
            getattr(route.endpoint, marker, None) is not None
            for marker in (SCOPES_ATTRIBUTE, STAFF_ATTRIBUTE)
        )
        if guarded and not isinstance(route, GuardedRoute):
            faults.append(f"{route.path} is marked @requires or @signed_in, not a GuardedRoute")
        elif not guarded and not getattr(route.endpoint, PUBLIC_ATTRIBUTE, False):
            faults.append(f"{route.path} is neither @requires(...), @signed_in(...) nor @public")
    if faults:
        raise RuntimeError("; ".join(faults))
