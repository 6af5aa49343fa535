"""Staff sign-in through the identity platform (hub.auth.delegation), offered on the
authorization endpoint's page when hub.toml configures one.

The hub's own authorization request (the console's) waits in a cookie while the person is at
the platform, with the state sent there; the cookie is MAC'd under the console's key, so it
cannot be forged or swapped for another browser's, and SameSite=Lax, since the platform sends
the browser back by a top-level redirect from another site. The PKCE verifier and the nonce
are derived from that state under the same key, as the console derives its own
(`ConsoleSessions`), so nothing else is stored. Back with a code,
the hub asks the platform who signed in, admits them with the roles their claims map to, and
answers its own authorization request with a code, as after a password.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.auth.delegation import (
    Delegation,
    DelegationRefused,
    Identity,
    ProviderUnavailable,
    admit,
    refused,
)
from hub.auth.guard import GuardedRoute, public
from hub.auth.problems import INVALID_REQUEST
from hub.auth.staff import Member
from hub.console.authorize import (
    AUTHORIZE,
    form_page,
    issue_code,
    oauth_request,
    request_fields,
    see_other,
    validated_grant,
)
from hub.console.session import LOOPBACK, sessions_of
from hub.db import unit_of_work
from hub.problems import Problem
from hub.text import Text

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
START: Final = AUTHORIZE + "/delegated"
CALLBACK: Final = START + "/callback"
COOKIE: Final = "hub_delegated"
COOKIE_SECONDS: Final = 600
UNAVAILABLE: Final = Text(
    "统一身份认证平台暂时无法访问，请稍后再试或使用本平台账号登录。",
    "The identity platform cannot be reached; try again later or sign in with a hub account.",
)
EXPIRED: Final = Text(
    "登录已超时或不是在此浏览器中发起的，请重新登录。",
    "The sign-in took too long or was not started in this browser; sign in again.",
)


def _delegation(request: Request) -> Delegation:
    delegation: Delegation | None = request.app.state.delegation
    if delegation is None:
        raise Problem(INVALID_REQUEST, Text("未配置统一身份认证", "No identity platform is set up"))
    return delegation


def _nonce(request: Request, state: str) -> str:
    return sessions_of(request).mac("delegated-nonce", state)


def _cookie_mac(request: Request, waiting: str) -> str:
    return sessions_of(request).mac("delegated-cookie", waiting)


def _redirect_uri(request: Request) -> str:
    return str(request.app.state.authorization_server.issuer) + CALLBACK


@router.get(START)
@public
async def start(request: Request) -> Response:
    """From the sign-in page to the platform, the console's request kept for the way back."""
    delegation = _delegation(request)
    oauth = oauth_request(request, request_fields(list(request.query_params.multi_items())))
    grant = validated_grant(request, oauth)
    if isinstance(grant, RedirectResponse):
        return grant
    state = secrets.token_urlsafe(32)
    try:
        location = await run_in_threadpool(
            delegation.authorization_url,
            _redirect_uri(request),
            state,
            _nonce(request, state),
            sessions_of(request).code_challenge(state),
        )
    except ProviderUnavailable:
        return form_page(request, "sign_in.html", oauth, status=502, error=UNAVAILABLE)
    waiting = urlencode({**oauth.form, "upstream_state": state})
    response = see_other(location)
    response.set_cookie(
        COOKIE,
        f"{waiting}|{_cookie_mac(request, waiting)}",
        max_age=COOKIE_SECONDS,
        path=START,
        httponly=True,
        samesite="lax",
        secure=request.url.hostname not in LOOPBACK,
    )
    return response


@router.get(CALLBACK)
@public
async def callback(request: Request) -> Response:
    """Back from the platform: who signed in, admitted, and a code for the console."""
    delegation = _delegation(request)
    waiting, _, mac = request.cookies.get(COOKIE, "").rpartition("|")
    fields = dict(parse_qsl(waiting)) if waiting else {}
    state = fields.pop("upstream_state", "")
    expected = _cookie_mac(request, waiting)
    if not state or not hmac.compare_digest(mac, expected):
        raise Problem(INVALID_REQUEST, EXPIRED)
    oauth = oauth_request(request, fields)
    grant = validated_grant(request, oauth)
    if isinstance(grant, RedirectResponse):
        return grant
    params = request.query_params
    if not hmac.compare_digest(params.get("state", ""), state):
        return form_page(request, "sign_in.html", oauth, status=400, error=EXPIRED)
    if "error" in params or "code" not in params:
        error = params.get("error", "no-code")[:64]
        await run_in_threadpool(_refused, request, f"platform: {error}")
        text = Text(
            f"统一身份认证平台未完成登录（{error}）。",
            f"The platform did not sign you in ({error}).",
        )
        return form_page(request, "sign_in.html", oauth, status=401, error=text)
    try:
        identity = await run_in_threadpool(
            delegation.identity,
            params["code"],
            sessions_of(request).code_verifier(state),
            _redirect_uri(request),
            _nonce(request, state),
        )
        member = await run_in_threadpool(_admit, request, delegation, identity)
    except ProviderUnavailable:
        return form_page(request, "sign_in.html", oauth, status=502, error=UNAVAILABLE)
    except DelegationRefused as refusal:
        await run_in_threadpool(_refused, request, refusal.outcome)
        return form_page(request, "sign_in.html", oauth, status=403, error=refusal.text)
    if isinstance(member, DelegationRefused):  # audited as it was refused
        return form_page(request, "sign_in.html", oauth, status=403, error=member.text)
    response = await issue_code(request, oauth, grant, member)
    response.delete_cookie(COOKIE, path=START)
    return response


def _admit(
    request: Request, delegation: Delegation, identity: Identity
) -> Member | DelegationRefused:
    hub = request.app.state.hub
    with unit_of_work(hub.engine) as session:
        return admit(session, hub.audit, delegation.config.issuer, identity, hub.clock.now())


def _refused(request: Request, outcome: str) -> None:
    hub = request.app.state.hub
    with unit_of_work(hub.engine) as session:
        refused(hub.audit, session, outcome, hub.clock.now())
