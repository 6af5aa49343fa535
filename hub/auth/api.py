"""Routes of the authorization server: token, introspection, revocation, metadata, JWKS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import InvalidClientError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from hub.auth.domain import CLIENT_ASSERTION_ALGORITHMS, SCOPES, TOKEN_ALGORITHM, AuthFailure
from hub.auth.failures import Attempt, attempt_of
from hub.auth.guard import CLIENT_SECRET_BASIC, GuardedRoute, principal_of, public, requires
from hub.auth.problems import AUTHENTICATION_THROTTLED, INVALID_REQUEST, oauth_problem
from hub.auth.server import (
    ClientNotAuthenticated,
    FormRequest,
    HubAuthorizationServer,
    OAuthFailure,
    OAuthOutcome,
)
from hub.auth.state import AuthState
from hub.openapi import ClosedView
from hub.ops import metrics
from hub.problems import UNSUPPORTED_MEDIA_TYPE, Problem, Text

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_CLIENT_AUTHENTICATION: dict[str, Any] = {
    "client_assertion_type": {
        "const": ASSERTION_TYPE,
        "description": "private_key_jwt (RFC 7523); else Basic credentials (client_secret_basic)",
    },
    "client_assertion": {"type": "string", "description": "a JWT signed by the client's key"},
    "client_id": {"type": "string", "description": "optional beside an assertion (RFC 7523)"},
}


def _form(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI of an OAuth form body (RFC 6749 §3.2: form-encoded, parameters once)."""
    schema = {
        "type": "object",
        "required": required,
        "properties": {**properties, **_CLIENT_AUTHENTICATION},
    }
    return {
        "requestBody": {"required": True, "content": {FORM: {"schema": schema}}},
        "security": [{CLIENT_SECRET_BASIC: []}],
    }


CODE_EXCHANGE: Final = ("code", "redirect_uri", "code_verifier")
"""The authorization-code grant's parameters (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
OAUTH_PARAMETERS: Final = frozenset(
    {"grant_type", "scope", "token", "token_type_hint", *CODE_EXCHANGE, *_CLIENT_AUTHENTICATION}
)
"""The parameters the three endpoints read; any other is ignored, as RFC 6749 §3.2 says."""
_SCOPE_LIST: Final = "|".join(sorted(SCOPES))
_TOKEN_HINT: dict[str, Any] = {
    "type": "string",
    "enum": ["access_token", ""],
    "description": "The only kind of token the hub issues; sent empty, as if omitted"
    " (RFC 6749 §3.1). Any other hint is unsupported_token_type.",
}
_OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "invalid_request, unsupported_grant_type, invalid_scope (RFC 6749 §5.2)"},
    401: {"description": "invalid_client: the client could not be authenticated"},
    429: {"description": "too many failed client authentications: wait Retry-After seconds"},
}


class TokenIssued(BaseModel):
    """RFC 6749 §5.1, with an RFC 9068 JWT as the access token."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str


class Introspected(BaseModel):
    """RFC 7662 §2.2: `active`, and the token's claims when it is active."""

    model_config = ConfigDict(extra="allow")
    active: bool


class Revoked(ClosedView):
    """RFC 7009 §2.2: an empty object, whether or not the token was known."""


class JsonWebKey(BaseModel):
    model_config = ConfigDict(extra="allow")
    kty: str
    kid: str


class JsonWebKeySet(BaseModel):
    keys: list[JsonWebKey]


def _success(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model}, **_OAUTH_ERRORS}


router = APIRouter(tags=["OAuth 2.0"], route_class=GuardedRoute)
FORM = "application/x-www-form-urlencoded"


def is_form(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == FORM


def oauth_form(body: bytes) -> tuple[dict[str, str], str | None]:
    """The parameters the OAuth endpoints read from a form body, and the first of them that is
    repeated, if any: RFC 6749 §3.2 ignores unrecognised parameters, and recognised ones MUST
    NOT be repeated."""
    form: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
        if name not in OAUTH_PARAMETERS:
            continue
        if name in form:
            return form, name
        form[name] = value
    return form, None


async def _form_request(request: Request) -> FormRequest:
    if not is_form(request.headers.get("content-type", "")):
        raise Problem(
            UNSUPPORTED_MEDIA_TYPE,
            Text(f"请求体须为 {FORM}", f"The body must be {FORM}"),
        )
    form, repeated = oauth_form(await request.body())
    if repeated is not None:
        raise Problem(
            INVALID_REQUEST,
            Text(f"参数重复：{repeated}", f"The parameter {repeated!r} is repeated"),
            extensions={"error": "invalid_request"},
        )
    _one_authentication_method(request, form)
    # TLS ends at the gateway in front of the hub; the issuer is the URL clients see.
    url = _server(request).issuer + request.url.path
    return FormRequest(request.method, url, request.headers, form)


def _one_authentication_method(request: Request, form: dict[str, str]) -> None:
    """RFC 6749 §2.3: a client MUST NOT use more than one authentication method in a request;
    and the only assertion the hub takes is RFC 7523's JWT."""
    asserted = "client_assertion" in form or "client_assertion_type" in form
    basic = request.headers.get("authorization", "").partition(" ")[0].lower() == "basic"
    if asserted and basic:
        detail = Text(
            "同一请求只能使用一种客户端认证方式（Basic 或 client_assertion）",
            "Use one client authentication method per request (Basic or client_assertion)",
        )
    elif asserted and form.get("client_assertion_type") != ASSERTION_TYPE:
        detail = Text(
            f"client_assertion_type 须为 {ASSERTION_TYPE}",
            f"client_assertion_type must be {ASSERTION_TYPE}",
        )
    else:
        return
    raise Problem(INVALID_REQUEST, detail, extensions={"error": "invalid_request"})


def _respond(outcome: OAuthOutcome) -> JSONResponse:
    if isinstance(outcome, OAuthFailure):
        raise oauth_problem(outcome.error)
    headers = dict(outcome.headers)
    headers["Cache-Control"] = "no-store"
    headers.pop("Content-Type", None)
    return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)


def _server(request: Request) -> HubAuthorizationServer:
    server: HubAuthorizationServer = request.app.state.authorization_server
    return server


UNREADABLE_BASIC = "the Basic credentials are not base64 of UTF-8 'client_id:client_secret'"


async def _answer(
    request: Request,
    call: Callable[[FormRequest], OAuthOutcome],
    *,
    threaded: bool = False,
    issues_tokens: bool = False,
) -> JSONResponse:
    """One OAuth endpoint call, behind the throttle of failed client authentications.

    The throttle check reads memory only; a failure is recorded (audit, log, counters) in the
    thread pool, as are calls that write (client assertions store their jti, revocations).
    `issues_tokens`: count tokens issued and refused (hub.ops.metrics).
    """
    form = await _form_request(request)
    server = _server(request)
    address = request.client.host if request.client else "unknown"
    attempt = attempt_of(request.url.path, request.headers, form.form, address)
    try:
        _refuse_throttled(server, attempt)
    except Problem:
        if issues_tokens:
            metrics.TOKENS_REFUSED.labels("throttled").inc()
        raise
    if attempt.unreadable:  # Authlib would decode them as UTF-8 without a guard
        unreadable = ClientNotAuthenticated(AuthFailure.MALFORMED_CREDENTIALS, UNREADABLE_BASIC)
        outcome: OAuthOutcome = OAuthFailure(unreadable)
    elif threaded or "client_assertion" in form.form:
        outcome = await run_in_threadpool(call, form)
    else:
        outcome = call(form)
    failed = outcome.error if isinstance(outcome, OAuthFailure) else None
    if isinstance(failed, InvalidClientError):
        reason = (
            failed.reason
            if isinstance(failed, ClientNotAuthenticated)
            else AuthFailure.NO_CREDENTIALS  # Authlib's own: no method's credentials were sent
        )
        await run_in_threadpool(server.failures.record, attempt, reason)
    if issues_tokens:
        if isinstance(outcome, OAuthFailure):
            metrics.TOKENS_REFUSED.labels(outcome.error.error or "invalid_request").inc()
        else:  # only a grant type the server knows can succeed: the label set stays small
            metrics.TOKENS_ISSUED.labels(form.form.get("grant_type", "")).inc()
    return _respond(outcome)


def _refuse_throttled(server: HubAuthorizationServer, attempt: Attempt) -> None:
    wait = server.failures.retry_after(attempt)
    if wait:
        raise Problem(
            AUTHENTICATION_THROTTLED,
            Text(
                f"客户端认证失败次数过多，请 {wait} 秒后再试",
                f"Too many failed client authentications; try again in {wait} seconds",
            ),
            headers={"Retry-After": str(wait)},
        )


@router.post(
    "/oauth/token",
    summary="Issue an access token (client_credentials; authorization_code with PKCE)",
    response_description="An RFC 9068 JWT access token",
    responses=_success(TokenIssued),
    openapi_extra=_form(
        ["grant_type"],
        grant_type={"enum": ["client_credentials", "authorization_code"]},
        code={"type": "string", "description": "authorization_code: the code received"},
        redirect_uri={"type": "string", "description": "authorization_code: as authorized"},
        code_verifier={
            "type": "string",
            "pattern": "^[A-Za-z0-9._~-]{43,128}$",
            "description": "authorization_code: the PKCE verifier (RFC 7636)",
        },
        scope={
            "type": "string",
            "pattern": f"^({_SCOPE_LIST})( ({_SCOPE_LIST}))*$",
            "description": "scopes wanted, space-separated (default: all the client may hold)",
        },
    ),
)
@public
async def token(request: Request) -> JSONResponse:
    return await _answer(request, _server(request).create_token_response, issues_tokens=True)


@router.post(
    "/oauth/introspect",
    summary="Token introspection (RFC 7662)",
    responses=_success(Introspected),
    openapi_extra=_form(["token"], token={"type": "string"}, token_type_hint=_TOKEN_HINT),
)
@public
async def introspect(request: Request) -> JSONResponse:
    server = _server(request)
    return await _answer(
        request, lambda form: server.create_endpoint_response("introspection", form)
    )


@router.post(
    "/oauth/revoke",
    summary="Token revocation (RFC 7009)",
    responses=_success(Revoked),
    openapi_extra=_form(["token"], token={"type": "string"}, token_type_hint=_TOKEN_HINT),
)
@public
async def revoke(request: Request) -> JSONResponse:
    server = _server(request)
    call = lambda form: server.create_endpoint_response("revocation", form)  # noqa: E731
    return await _answer(request, call, threaded=True)


@router.get("/.well-known/oauth-authorization-server", summary="Server metadata (RFC 8414)")
@public
async def metadata(request: Request) -> dict[str, Any]:
    server = _server(request)
    methods = ["client_secret_basic", "private_key_jwt"]
    return {
        "issuer": server.issuer,
        "token_endpoint": server.token_endpoint,
        "jwks_uri": f"{server.issuer}/oauth/jwks.json",
        "introspection_endpoint": f"{server.issuer}/oauth/introspect",
        "revocation_endpoint": f"{server.issuer}/oauth/revoke",
        "authorization_endpoint": f"{server.issuer}/oauth/authorize",
        "grant_types_supported": ["client_credentials", "authorization_code"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": sorted(SCOPES),
        "token_endpoint_auth_methods_supported": [*methods, "none"],
        "token_endpoint_auth_signing_alg_values_supported": list(CLIENT_ASSERTION_ALGORITHMS),
        "introspection_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_methods_supported": methods,
        "access_token_signing_alg_values_supported": [TOKEN_ALGORITHM],
    }


@router.get(
    "/oauth/jwks.json",
    summary="The hub's token-verification keys",
    responses={200: {"model": JsonWebKeySet}},
)
@public
async def jwks(request: Request) -> JSONResponse:
    state: AuthState = request.app.state.auth_state
    keys = [key.public_jwk for key in state.keys]
    return JSONResponse({"keys": keys}, headers={"Cache-Control": "max-age=60"})


@router.get("/auth/v1/whoami", summary="The caller as its access token describes it")
@requires()
async def whoami(request: Request) -> dict[str, Any]:
    principal = principal_of(request)
    return {
        "client_id": principal.client_id,
        "department": principal.department.value,
        "client_kind": principal.kind.value,
        "scopes": sorted(principal.scopes),
        "expires_at": principal.expires_at,
    }
