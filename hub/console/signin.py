"""The authorization endpoint's pages (RFC 6749 §3.1): where a member of staff proves who they
are, by password and, for the roles that need it, a TOTP code, and, on a one-time password,
chooses their own. Then the browser goes back to the client with a code.

An invalid authorization request is shown here and never sent back to a redirect URI the
client has not registered (RFC 6749 §4.1.2.1). The forms carry a CSRF token bound to a cookie
of this browser, so no other site can sign a person in under an account of its choosing.
"""

from __future__ import annotations

import hmac
from typing import Any, Final
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.auth.guard import CSRF_REFUSED, GuardedRoute, public
from hub.auth.server import FormRequest
from hub.auth.signin import (
    SignInThrottled,
    change_password_by_ticket,
    change_ticket,
    sign_in,
)
from hub.auth.staff import Member, SignInRefused, StaffRefused
from hub.console.authorize import (
    AUTHORIZE,
    form_page,
    issue_code,
    oauth_request,
    request_fields,
    validated_grant,
)
from hub.console.session import FORM_COOKIE, sessions_of
from hub.problems import Problem, Text

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
REFUSED: Final = Text(
    "账号、密码或动态口令不正确。", "The account, password or one-time code is not right."
)


async def _posted_authorization(request: Request) -> tuple[dict[str, str], FormRequest, Any]:
    """A posted sign-in form: its fields, the authorization request it carries, and that
    request validated (or the redirect that answers it)."""
    fields = await _posted(request)
    oauth = oauth_request(request, fields)
    return fields, oauth, validated_grant(request, oauth)


async def _posted(request: Request) -> dict[str, str]:
    fields = request_fields(parse_qsl((await request.body()).decode("utf-8", "replace")))
    browser = request.cookies.get(FORM_COOKIE, "")
    expected = sessions_of(request).form_token(browser)
    if not browser or not hmac.compare_digest(fields.get("csrf", ""), expected):
        raise Problem(CSRF_REFUSED)
    return fields


@router.get(AUTHORIZE)
@public
async def authorize_page(request: Request) -> Response:
    oauth = oauth_request(request, request_fields(list(request.query_params.multi_items())))
    grant = validated_grant(request, oauth)
    if isinstance(grant, RedirectResponse):
        return grant
    return form_page(request, "sign_in.html", oauth)


@router.post(AUTHORIZE)
@public
async def authorize(request: Request) -> Response:
    fields, oauth, grant = await _posted_authorization(request)
    if isinstance(grant, RedirectResponse):
        return grant
    name = fields.get("name", "").strip()
    address = request.client.host if request.client else "unknown"
    desk = request.app.state.hub.sign_in
    try:
        member: Member = await run_in_threadpool(
            sign_in, desk, name, fields.get("password", ""), fields.get("code", ""), address=address
        )
    except SignInThrottled as throttled:
        minutes = -(-throttled.retry_after // 60)
        error = Text(
            f"登录失败次数过多，请 {minutes} 分钟后再试。",
            f"Too many failed sign-ins; try again in {minutes} minutes.",
        )
        response = form_page(request, "sign_in.html", oauth, status=429, error=error, name=name)
        response.headers["Retry-After"] = str(throttled.retry_after)
        return response
    except SignInRefused:
        return form_page(request, "sign_in.html", oauth, status=401, error=REFUSED, name=name)
    if member.must_change_password:
        ticket = await run_in_threadpool(change_ticket, desk, member)
        return form_page(request, "change_password.html", oauth, ticket=ticket, member=member)
    return await issue_code(request, oauth, grant, member)


@router.post(AUTHORIZE + "/password")
@public
async def choose_password(request: Request) -> Response:
    fields, oauth, grant = await _posted_authorization(request)
    if isinstance(grant, RedirectResponse):
        return grant
    ticket, password = fields.get("ticket", ""), fields.get("password", "")
    if password != fields.get("confirm", ""):
        error = Text("两次输入的新密码不一致。", "The two new passwords differ.")
        return form_page(
            request, "change_password.html", oauth, status=422, ticket=ticket, error=error
        )
    desk = request.app.state.hub.sign_in
    try:
        member = await run_in_threadpool(change_password_by_ticket, desk, ticket, password)
    except SignInRefused:
        error = Text(
            "修改密码的时限已过或已使用，请重新登录。",
            "The time to choose a password is over, or it was used; sign in again.",
        )
        return form_page(request, "sign_in.html", oauth, status=401, error=error)
    except StaffRefused as refusal:
        error = _password_refusal(str(refusal))
        return form_page(
            request, "change_password.html", oauth, status=422, ticket=ticket, error=error
        )
    return await issue_code(request, oauth, grant, member)


def _password_refusal(english: str) -> Text:
    zh = "新密码须为 12 至 128 个可打印字符。"
    if "differ" in english:
        zh = "新密码不得与原密码相同。"
    return Text(zh, english[:1].upper() + english[1:] + ".")
