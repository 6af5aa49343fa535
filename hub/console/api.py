"""The console as an OAuth client: starting a sign-in, the callback that exchanges the code,
signing out; and the home page, which shows what the person's roles open to them."""

from __future__ import annotations

import hmac
import secrets
from typing import Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.auth.codes import CALLBACK_PATH, CONSOLE_CLIENT_ID
from hub.auth.domain import Principal, TokenRefused
from hub.auth.guard import GuardedRoute, principal_of, public, signed_in
from hub.auth.problems import oauth_problem
from hub.auth.server import FormRequest, HubAuthorizationServer, OAuthFailure
from hub.auth.signin import open_session, sign_out
from hub.console.pages import SECURITY_HEADERS, page_context, render
from hub.console.session import SESSION_COOKIE, STATE_COOKIE, sessions_of, set_cookie
from hub.db import unit_of_work
from hub.problems import Problem, Text, problem_type

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
CONSOLE: Final = "/console"
STATE_SECONDS: Final = 600
SIGN_IN_FAILED = problem_type("sign-in-failed", 400, "登录未完成", "The sign-in did not complete")

SECTIONS: Final = (
    (
        "governance",
        "schemas:admin",
        Text("数据治理", "Data governance"),
        Text("交换模式、版本与共享协议", "Exchange schemas, versions and agreements"),
    ),
    (
        "exchange",
        "exchange:admin",
        Text("交换状态", "Exchange health"),
        Text("各部门投递、积压与死信", "Deliveries, backlog and dead letters by department"),
    ),
    (
        "audit",
        "audit:read",
        Text("审计", "Audit"),
        Text("谁在何时为何目的访问了什么", "Who saw what, when, and for what purpose"),
    ),
    (
        "office",
        "registry:read",
        Text("受理", "Acceptance office"),
        Text(
            "查找办件、持证人页面、报告待办、查询记录报告",
            "Find a case, holders, the worklist, access reports",
        ),
    ),
    (
        "statistics",
        "registry:read",
        Text("统计", "Statistics"),
        Text(
            "登记、发证、签注、核验与交换的考核统计",
            "Registrations, issuance, taps and exchange, by month",
        ),
    ),
    (
        "window",
        "verification:tap",
        Text("窗口", "Service window"),
        Text("刷卡核验的结果", "The decisions of card taps"),
    ),
)


def _server(request: Request) -> HubAuthorizationServer:
    server: HubAuthorizationServer = request.app.state.authorization_server
    return server


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)


@router.get("/")
@public
async def root() -> RedirectResponse:
    """The hub's address leads a person to the console."""
    return _redirect(CONSOLE)


@router.get(CONSOLE + "/sign-in")
@public
async def start_sign_in(request: Request) -> Response:
    """Off to the authorization server, with a fresh state and its PKCE challenge."""
    state = secrets.token_urlsafe(32)
    server, sessions = _server(request), sessions_of(request)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CONSOLE_CLIENT_ID,
            "redirect_uri": server.console.redirect_uri,
            "state": state,
            "code_challenge": sessions.code_challenge(state),
            "code_challenge_method": "S256",
        }
    )
    response = _redirect(f"/oauth/authorize?{query}")
    set_cookie(request, response, STATE_COOKIE, state, max_age=STATE_SECONDS, path=CONSOLE)
    return response


@router.get(CALLBACK_PATH)
@public
async def callback(request: Request) -> Response:
    """The code exchanged at the token endpoint, as any public client would, and the token
    kept as the session cookie."""
    state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
    expected = request.cookies.get(STATE_COOKIE, "")
    if not expected or not hmac.compare_digest(state, expected):
        raise Problem(
            SIGN_IN_FAILED,
            Text("登录请求已过期或并非由本浏览器发起，请重新登录。", "Start the sign-in again."),
        )
    error = request.query_params.get("error")
    if error or not code:
        raise Problem(SIGN_IN_FAILED, Text(f"授权服务器拒绝：{error}", f"Refused: {error}"))
    principal = await _exchange(request, code, state)
    address = request.client.host if request.client else "unknown"
    hub = request.app.state.hub
    with unit_of_work(hub.engine) as session:
        open_session(session, principal, address=address, now=hub.clock.now())
    response = _redirect(CONSOLE)
    max_age = principal.expires_at - hub.clock.epoch_seconds()
    set_cookie(request, response, SESSION_COOKIE, _token_of(request), max_age=max_age, path="/")
    response.delete_cookie(STATE_COOKIE, path=CONSOLE)
    return response


_TOKEN_KEY: Final = "hub.console.token"


def _token_of(request: Request) -> str:
    token: str = request.scope[_TOKEN_KEY]
    return token


async def _exchange(request: Request, code: str, state: str) -> Principal:
    server = _server(request)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": server.console.redirect_uri,
        "client_id": CONSOLE_CLIENT_ID,
        "code_verifier": sessions_of(request).code_verifier(state),
    }
    outcome = await run_in_threadpool(
        server.create_token_response, FormRequest("POST", server.token_endpoint, {}, form)
    )
    if isinstance(outcome, OAuthFailure):
        raise oauth_problem(outcome.error)
    token = str(outcome.body["access_token"])
    try:
        principal = server.verifier.verify(token)
    except TokenRefused as refusal:
        raise Problem(SIGN_IN_FAILED, Text(refusal.description, refusal.description)) from None
    request.scope[_TOKEN_KEY] = token
    return principal


@router.post(CONSOLE + "/sign-out")
@signed_in()
async def sign_out_page(request: Request) -> Response:
    hub = request.app.state.hub
    await run_in_threadpool(sign_out, hub.sign_in, principal_of(request))
    response = render(request, "signed_out.html")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get(CONSOLE)
@signed_in()
async def home(request: Request) -> Response:
    """The sections the person's scopes open, and nothing of the others."""
    principal = principal_of(request)
    sections = [
        (slug, title, blurb) for slug, needs, title, blurb in SECTIONS if needs in principal.scopes
    ]
    return render(request, "home.html", **page_context(request, principal), sections=sections)
