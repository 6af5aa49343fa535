"""Rendering the console's pages: the templates, the reader's language, the headers every page
carries, and a problem shown as a page rather than as JSON where a person is reading.

The language is the one chosen with `?lang=` (kept in a cookie), else the browser's
(`Accept-Language`), else the hub's default. Pages load nothing from outside the hub: the
Content-Security-Policy says so to the browser too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from hub.auth.domain import Principal
from hub.console.session import sessions_of
from hub.db import INT_MAX
from hub.problems import VALIDATION_FAILED, Language, Problem, negotiate_language
from hub.text import Text

HERE: Final = Path(__file__).parent
STATIC_DIR: Final = HERE / "static"
LANGUAGE_COOKIE: Final = "hub_lang"
LANGUAGES: Final[tuple[Language, ...]] = ("zh-CN", "en")
PAGE_PREFIXES: Final = ("/console", "/oauth/authorize")
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # A sign-in's code and state ride in URLs: no page tells another site where it came from.
    # Not no-referrer: with it a browser posts forms with `Origin: null`, and the guard
    # refuses a post whose Origin is not the hub's.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SIGN_IN_NEEDED: Final = "sign-in-required"

_environment = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,  # a misspelt name fails the page's test, not the page silently
)


def language_of(request: Request) -> Language:
    chosen = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    default: Language = getattr(request.app.state, "default_language", "zh-CN")
    return negotiate_language(request.headers.get("accept-language"), default)


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """The page in the reader's language; `t(zh, en)` or `t(text)` picks the words."""
    language = language_of(request)

    def t(zh: str | Text, en: str = "") -> str:
        return zh.in_(language) if isinstance(zh, Text) else (zh if language == "zh-CN" else en)

    html = _environment.get_template(template).render(
        request=request, language=language, t=t, path=request.url.path, **context
    )
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    response.headers["Content-Language"] = language
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE, chosen, max_age=365 * 86_400, samesite="strict", httponly=True
        )
    return response


def is_page(request: Request) -> bool:
    path = request.url.path
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PAGE_PREFIXES)


def problem_page(request: Request, problem: Problem) -> Response | None:
    """A problem met on a console page, as a page (None elsewhere: the API answers JSON).
    A page that needs a signed-in person sends a browser to the sign-in instead."""
    if not is_page(request):
        return None
    if problem.kind.slug == SIGN_IN_NEEDED and request.method in ("GET", "HEAD"):
        return RedirectResponse("/console/sign-in", status_code=303, headers=SECURITY_HEADERS)
    response = render(
        request, "problem.html", status=problem.status or problem.kind.status, problem=problem
    )
    for name, value in problem.headers.items():
        if name.lower() != "www-authenticate":
            response.headers[name] = value
    return response


def page_context(request: Request, principal: Principal) -> dict[str, Any]:
    """What every signed-in page shows in its header: who, and the sign-out form's token."""
    return {
        "person": principal.client_id.removeprefix("staff:"),
        "department": principal.department.value,
        "csrf": sessions_of(request).csrf_token(principal),
    }


async def posted_form(request: Request) -> dict[str, str]:
    """A form-encoded body as a mapping (the last of a repeated field); the guard has checked
    its CSRF token already."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace")))


def form_number(text: str) -> int | None:
    """A posted version or sequence number: ASCII digits within the int4 range of the column
    it names (at most ten, so no huge number is ever parsed), or None."""
    if text.isascii() and text.isdigit() and len(text) <= 10 and 1 <= int(text) <= INT_MAX:
        return int(text)
    return None


def posted_number(text: str, refusal: Text) -> int:
    """`form_number`, or a 422 saying `refusal`."""
    number = form_number(text)
    if number is None:
        raise Problem(VALIDATION_FAILED, refusal)
    return number
