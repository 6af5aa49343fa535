"""Walking the console's sign-in as a browser would, without one: forms read from the HTML,
cookies kept by the client, redirects followed one at a time so each can be checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

import pyotp
from fastapi.testclient import TestClient
from httpx import Response

from hub.audit import Actor
from hub.auth.staff import Credentials, add_staff
from hub.composition import Hub
from hub.db import unit_of_work
from tests.conftest import ISSUER

_INPUT = re.compile(r'<input[^>]*\bname="([^"]+)"[^>]*\bvalue="([^"]*)"', re.S)
_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


def browser(app_client: TestClient) -> TestClient:
    """A client on the hub's loopback address (cookies there are not Secure) that lets each
    redirect be seen."""
    return TestClient(app_client.app, base_url=ISSUER, follow_redirects=False)


def new_staff(
    hub: Hub,
    name: str,
    *roles: str,
    department: str = "public-security",
    jurisdictions: tuple[str, ...] = (),
) -> Credentials:
    with unit_of_work(hub.engine) as session:
        return add_staff(
            session,
            hub.staff,
            name=name,
            display_name="测试",
            department=department,
            roles=roles,
            actor=Actor("hub-admin", "hub"),
            now=hub.clock.now(),
            jurisdictions=jurisdictions,
        )


def totp(credentials: Credentials, hub: Hub, offset: int = 0) -> str:
    assert credentials.otpauth_uri is not None
    secret = pyotp.parse_uri(credentials.otpauth_uri).secret
    return str(pyotp.TOTP(secret).at(hub.clock.now(), counter_offset=offset))


def hidden_fields(page: Response) -> dict[str, str]:
    """The hidden inputs of a page's form (the CSRF token and the authorization request)."""
    return {name: unescape(value) for name, value in _INPUT.findall(page.text)}


def form_action(page: Response) -> str:
    found = _ACTION.findall(page.text)
    assert found, page.text
    return unescape(found[-1])


def submit(client: TestClient, page: Response, **fields: str) -> Response:
    """Post the page's (last) form with its hidden fields and these."""
    return client.post(form_action(page), data={**hidden_fields(page), **fields})


def sign_in_page(client: TestClient) -> Response:
    """From the console's address to the sign-in form, checking each step."""
    start = client.get("/console")
    assert start.status_code == 303 and start.headers["location"] == "/console/sign-in"
    to_server = client.get("/console/sign-in")
    assert to_server.status_code == 303
    page = client.get(to_server.headers["location"])
    assert page.status_code == 200, page.text
    return page


def follow(client: TestClient, response: Response) -> Response:
    assert response.status_code == 303, response.text
    return client.get(response.headers["location"])


@dataclass(frozen=True)
class SignedIn:
    client: TestClient
    home: Response

    @property
    def token(self) -> str:
        return str(self.client.cookies["hub_session"])


def sign_in(
    client: TestClient, name: str, password: str, code: str = "", new_password: str = ""
) -> SignedIn:
    """The whole sign-in; with `new_password` when the account still has a one-time one."""
    answer = submit(client, sign_in_page(client), name=name, password=password, code=code)
    if new_password:
        assert answer.status_code == 200 and "password" in form_action(answer), answer.text
        answer = submit(client, answer, password=new_password, confirm=new_password)
    callback = answer
    assert callback.status_code == 303, callback.text
    assert callback.headers["location"].startswith(ISSUER + "/console/callback?code=")
    home = follow(client, follow(client, callback))
    assert home.status_code == 200, home.text
    return SignedIn(client, home)


def clerk(app_client: TestClient, hub: Hub, name: str = "zhao.lei") -> TestClient:
    """An acceptance-office clerk of Chifeng signed in (no second factor for the role)."""
    given = new_staff(hub, name, "acceptance-office", jurisdictions=("chifeng",))
    client = browser(app_client)
    sign_in(client, name, given.password, new_password="y" * 16)
    return client


def officer(app_client: TestClient, hub: Hub, name: str = "wang.fang") -> TestClient:
    """A governance officer signed in (one-time password, TOTP, then a password of their own)."""
    given = new_staff(hub, name, "governance")
    client = browser(app_client)
    sign_in(client, name, given.password, totp(given, hub), new_password="x" * 16)
    return client
