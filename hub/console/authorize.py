"""The authorization endpoint's shared parts (RFC 6749 §3.1): its parameters read once each,
the request validated (or its error sent back or shown), a sign-in form carrying it with a
CSRF token for this browser, and the code issued once the person is known, whether by
password (hub.console.signin) or through the identity platform (hub.console.delegated).
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.auth.problems import INVALID_REQUEST, oauth_problem
from hub.auth.server import FormRequest, HubAuthorizationServer, OAuthSuccess
from hub.auth.staff import Member
from hub.console.pages import SECURITY_HEADERS, render
from hub.console.session import FORM_COOKIE, sessions_of, set_cookie
from hub.problems import Problem, Text

AUTHORIZE: Final = "/oauth/authorize"
OAUTH_FIELDS: Final = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
FIELD_LIMIT: Final = 512


def _server(request: Request) -> HubAuthorizationServer:
    server: HubAuthorizationServer = request.app.state.authorization_server
    return server


def request_fields(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Each parameter once (RFC 6749 §3.1), bounded in length, as a form or query gave it."""
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise Problem(INVALID_REQUEST, Text(f"参数重复：{name}", f"{name} is repeated"))
        fields[name] = value[:FIELD_LIMIT]
    return fields


def oauth_request(request: Request, fields: dict[str, str]) -> FormRequest:
    params: dict[str, str] = {name: fields[name] for name in OAUTH_FIELDS if name in fields}
    return FormRequest("GET", _server(request).issuer + AUTHORIZE, request.headers, params)


def validated_grant(request: Request, oauth: FormRequest) -> Any:
    """The validated authorization request; or its error, sent back to the client (a
    redirect) when its redirect URI is known good, else shown here (raised)."""
    try:
        return _server(request).get_consent_grant(oauth)
    except OAuth2Error as error:
        if error.redirect_uri:
            return see_other(add_params_to_uri(error.redirect_uri, error.get_body()))
        raise oauth_problem(error) from None


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)


def form_page(
    request: Request,
    template: str,
    oauth: FormRequest,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    """A form of the sign-in, with the authorization request carried along and a CSRF token
    for this browser (its cookie made on first sight)."""
    browser = request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)
    csrf = sessions_of(request).form_token(browser)
    delegation = request.app.state.delegation
    response = render(
        request,
        template,
        status=status,
        oauth=oauth.form,
        csrf=csrf,
        action=AUTHORIZE,
        delegated=None if delegation is None else delegation.name,
        **context,
    )
    if FORM_COOKIE not in request.cookies:
        set_cookie(request, response, FORM_COOKIE, browser, max_age=3600, path=AUTHORIZE)
    return response


async def issue_code(request: Request, oauth: FormRequest, grant: Any, member: Member) -> Response:
    server = _server(request)
    outcome = await run_in_threadpool(
        server.create_authorization_response, oauth, grant_user=member, grant=grant
    )
    if not isinstance(outcome, OAuthSuccess):
        raise oauth_problem(outcome.error)
    return see_other(dict(outcome.headers)["Location"])
