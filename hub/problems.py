"""RFC 9457 problem details: the one shape of every error the hub returns.

Each kind of problem has a stable `type` (a relative URI, `/problems/<slug>`, served by the hub
itself so a person can look it up) and a title in Chinese and English. The language follows
`Accept-Language`; machine clients rely on `type`, never on the wording.

The types (`Text`, `ProblemType`, `Problem`, `FieldError`) are what every domain raises and
imports; the web framework is imported only where a problem becomes a response, so a command
that raises or reads problems does not load it. A domain exception that is a problem for the
caller subclasses `DomainProblem` and says which; one handler answers it, and no route
translates it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Self, cast, get_args

from pydantic_core.core_schema import ErrorType
from sqlalchemy.exc import DataError

from hub.text import Language as Language  # re-exported: the routes import both from here
from hub.text import Text as Text

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.responses import Response

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)
_PHRASES = {status.value for status in HTTPStatus}


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: Text

    @property
    def uri(self) -> str:
        return f"/problems/{self.slug}"


PROBLEM_TYPES: dict[str, ProblemType] = {}


def problem_type(slug: str, status: int, zh: str, en: str) -> ProblemType:
    """Register a problem type; a slug is a public contract, so it may be defined only once."""
    if slug in PROBLEM_TYPES:
        raise ValueError(f"problem type {slug!r} is already defined")
    kind = ProblemType(slug, status, Text(zh, en))
    PROBLEM_TYPES[slug] = kind
    return kind


MALFORMED_JSON = problem_type("malformed-json", 400, "请求体不是有效的 JSON", "Malformed JSON body")
VALIDATION_FAILED = problem_type("validation-failed", 422, "请求内容校验失败", "Validation failed")
STALE_WRITE = problem_type(
    "stale-write", 412, "已被他人修改", "Changed by someone else since it was read"
)
NOT_FOUND = problem_type("not-found", 404, "资源不存在", "Not found")
METHOD_NOT_ALLOWED = problem_type(
    "method-not-allowed", 405, "不支持该请求方法", "Method not allowed"
)
PAYLOAD_TOO_LARGE = problem_type("payload-too-large", 413, "请求体过大", "Payload too large")
UNSUPPORTED_MEDIA_TYPE = problem_type(
    "unsupported-media-type", 415, "不支持的内容类型", "Unsupported media type"
)
# Any other HTTPException (Starlette's multipart parser, a library's 400): its status varies, so
# the title names no particular status.
HTTP_ERROR = problem_type("http-error", 400, "请求无法处理", "Request not processed")
INTERNAL_ERROR = problem_type("internal-error", 500, "服务器内部错误", "Internal server error")


@dataclass(frozen=True)
class FieldError:
    """One failed field: a `pointer` (RFC 6901) into the body, or a query/path/header `parameter`.

    Pointers let a form highlight the exact input; `detail` is what to tell the person.
    """

    detail: Text
    pointer: str | None = None
    parameter: str | None = None

    def render(self, language: Language) -> dict[str, str]:
        out = {"detail": self.detail.in_(language)}
        if self.pointer is not None:
            out["pointer"] = self.pointer
        if self.parameter is not None:
            out["parameter"] = self.parameter
        return out


@dataclass(eq=False)
class Problem(Exception):
    """Raise anywhere below a router to answer with a problem document.

    `eq=False` keeps identity equality and hashing, as every exception has: tracebacks, anyio
    and logging put exceptions in sets and dicts.
    """

    kind: ProblemType
    detail: Text | None = None
    errors: Sequence[FieldError] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    extensions: Mapping[str, Any] = field(default_factory=dict)
    status: int | None = None

    def __str__(self) -> str:
        return f"{self.kind.slug}: {self.detail.en if self.detail else self.kind.title.en}"

    def render(self, language: Language, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.kind.uri,
            "title": self.kind.title.in_(language),
            "status": self.status or self.kind.status,
        }
        if self.detail is not None:
            body["detail"] = self.detail.in_(language)
        if instance is not None:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [error.render(language) for error in self.errors]
        for name, value in self.extensions.items():  # RFC 9457 §3.2: extensions add, never replace
            body.setdefault(name, value)
        return body


class DomainProblem(Exception):
    """A domain exception that is a problem for the caller and knows which: the one handler
    (`install`) answers it with `problem()`, so no route translates it. Domain modules raise
    it without knowing HTTP (this module loads no web framework until it answers).

    A refusal that must still be audited is not raised: it is returned, for the caller to
    commit its audit entry and then answer."""

    pointer: str | None = None
    """The member of the request the problem is about (RFC 6901), where the code that raised
    it knows which: set by `at`, answered as the problem's one `errors` entry."""

    def at(self, pointer: str) -> Self:
        """This problem, about the request member at `pointer`."""
        self.pointer = pointer
        return self

    def field_errors(self, text: Text) -> list[FieldError]:
        """`text` at the member the problem is about; none where no member is named."""
        return [FieldError(text, pointer=self.pointer)] if self.pointer is not None else []

    def problem(self) -> Problem:
        raise NotImplementedError(f"{type(self).__name__} names no problem")


class Stale(DomainProblem):
    """A change made to a version that is no longer the current one (its If-Match was read
    before someone else's change): a 412 naming the current version, worded by each kind of
    resource in `wording` ({version} stands for it)."""

    wording: Text

    def __init__(self, current_version: int) -> None:
        super().__init__(f"now at version {current_version}")
        self.current_version = current_version

    def problem(self) -> Problem:
        version = self.current_version
        return Problem(
            STALE_WRITE,
            Text(self.wording.zh.format(version=version), self.wording.en.format(version=version)),
            extensions={"current_version": version},
        )


_PRIMARY_LANGUAGES: dict[str, Language] = {"zh": "zh-CN", "en": "en"}


def negotiate_language(header: str | None, default: Language) -> Language:
    """Pick zh-CN or en from Accept-Language (RFC 9110 §12.5.4); otherwise `default`.

    Ranges match by primary subtag, so zh-TW and zh-Hant get the only Chinese the hub has;
    `*` stands for the default. The highest q wins and the earlier range breaks a tie. A range
    whose q is unreadable or outside (0, 1] is ignored, so a garbled header never fails a request.
    """
    best: tuple[float, Language] | None = None
    for part in (header or "").split(","):
        tag, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = -1.0
        if not 0 < quality <= 1:  # also false for nan
            continue
        primary = tag.lower().split("-", 1)[0]
        language = default if primary == "*" else _PRIMARY_LANGUAGES.get(primary)
        if language is not None and (best is None or quality > best[0]):
            best = (quality, language)
    return best[1] if best else default


def route_template(request: Request) -> str | None:
    """The path template of the route the request matched, as OpenAPI names it
    (`/registry/v1/permits/{permit_id}`); None when no route matched.

    This, not the path as sent, is a problem's `instance` and what a log line names: a path
    holds what the caller typed, and a citizen ID typed where a permit id belongs must not come
    back in the answer or go into a log. The template still says which operation failed.
    """
    from starlette.routing import Route

    route = request.scope.get("route")
    return route.path_format if isinstance(route, Route) else None


def answer(request: Request, problem: Problem) -> Response:
    """What the one handler sends: the problem document, or, where a person is reading a
    console page, the page the app's `problem_page` makes of it."""
    page = getattr(request.app.state, "problem_page", None)
    answered = page(request, problem) if page is not None else None
    if answered is not None:
        return cast("Response", answered)
    return problem_response(request, problem)


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    from fastapi.responses import JSONResponse

    default: Language = getattr(request.app.state, "default_language", "zh-CN")
    language = negotiate_language(request.headers.get("accept-language"), default)
    body = problem.render(language, instance=route_template(request))
    headers = {"Content-Language": language, "Vary": "Accept-Language", **problem.headers}
    return JSONResponse(body, status_code=body["status"], headers=headers, media_type=MEDIA_TYPE)


# Pydantic error types a person is likely to meet, worded in Chinese with the limit from the
# error's `ctx` (a bare "too short" leaves the reader guessing); others keep pydantic's English
# message in both languages rather than an invented translation.
_ZH_MESSAGES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_type": "应为字符串",
    "string_unicode": "应为有效的 Unicode 字符串",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "finite_number": "应为有限数值",
    "bool_parsing": "应为布尔值",
    "bool_type": "应为布尔值",
    "list_type": "应为数组",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "string_pattern_mismatch": "格式不符合要求",
    "literal_error": "取值须为 {expected}",
    "enum": "取值须为 {expected}",
    "greater_than": "须大于 {gt}",
    "greater_than_equal": "不得小于 {ge}",
    "less_than": "须小于 {lt}",
    "less_than_equal": "不得大于 {le}",
    "multiple_of": "须为 {multiple_of} 的倍数",
    "date_type": "应为日期",
    "date_parsing": "应为日期",
    "date_from_datetime_parsing": "应为日期",
    "date_from_datetime_inexact": "应为日期，不含时间",
    "datetime_type": "应为日期时间",
    "datetime_parsing": "应为日期时间",
    "uuid_type": "应为 UUID",
    "uuid_parsing": "应为 UUID",
    "url_parsing": "应为有效的 URL",
    "url_type": "应为有效的 URL",
    "union_tag_invalid": "类型标记无效",
    "union_tag_not_found": "缺少类型标记字段",
    "value_error": "取值无效",
    "unique_items": "各项不得重复",
}


def _zh_message(error: Mapping[str, Any], english: str) -> str:
    template = _ZH_MESSAGES.get(str(error.get("type")))
    if template is None:
        return english
    try:
        return template.format(**error.get("ctx", {}))
    except (KeyError, IndexError, ValueError):  # ctx without the expected member
        return template.split("{", 1)[0].strip() or english


class _NoDocument:
    """Marks a body that is not parsed JSON (form data, absent): locations are taken as is."""


_NO_DOCUMENT = _NoDocument()


def _pointer(location: Sequence[Any], document: Any, missing: bool) -> str:
    """The RFC 6901 pointer for a pydantic location inside `document`.

    Pydantic puts steps in a location that are not places in the document: the member of a
    union tried (`int`, `str`, a model's name), a validator (`function-after[...]`), `[key]` for
    a dict key. Walking the parsed body keeps only the steps that exist in it, plus the final
    name of a missing member, so `{"u": [1]}` against `int | str` points at `/u`, not `/u/int`.
    """
    steps: list[str] = []
    node = document
    for index, part in enumerate(location):
        if isinstance(node, _NoDocument):
            steps.append(str(part))
        elif isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
            steps.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            steps.append(str(part))
        elif missing and index == len(location) - 1:
            steps.append(str(part))
    return json_pointer(steps)


def json_pointer(steps: Iterable[str]) -> str:
    """The RFC 6901 pointer of `steps` ('~' written '~0', '/' written '~1')."""
    return "".join("/" + step.replace("~", "~0").replace("/", "~1") for step in steps)


# Pydantic messages of its own that quote the input: a discriminated union's tag ("Input tag
# '<tag>' found using ...") and the offending character of a UUID. Worded without it.
_EN_MESSAGES = {
    "union_tag_invalid": "Input tag does not match any of the expected tags: {expected_tags}",
    "uuid_parsing": "Input should be a valid UUID",
}
_BUILT_IN_TYPES = frozenset(get_args(ErrorType))
_QUOTABLE_LENGTH = 4  # shorter inputs ("1", "ab") would blank out words and numbers by chance


def _english_message(error: Mapping[str, Any]) -> str:
    """Pydantic's English message, never quoting the input.

    Pydantic's other built-in messages state the rule (a limit, a pattern, the expected values),
    not the value. A validator's own message (`value_error`, a custom error type) is the
    hub's wording, which does not quote the value either; should one slip, the input is cut
    out of it here.
    """
    kind = str(error.get("type"))
    template = _EN_MESSAGES.get(kind)
    if template is not None:
        try:
            return template.format(**error.get("ctx", {}))
        except (KeyError, IndexError, ValueError):
            return template.split(":", 1)[0]
    message = str(error.get("msg", "Invalid value"))
    value = error.get("input")
    if kind in _BUILT_IN_TYPES and kind not in ("value_error", "assertion_error"):
        return message
    if isinstance(value, str) and len(value) >= _QUOTABLE_LENGTH:
        return message.replace(value, "…")
    return message


def field_errors(errors: Sequence[Any], body: Any = _NO_DOCUMENT) -> list[FieldError]:
    """Translate FastAPI/pydantic errors into pointers into `body` or parameter names.

    `body` is the parsed JSON the errors were found in (RequestValidationError.body); without
    it, body locations become pointers step for step. Input values are never echoed: a body
    may carry a citizen ID number, and a problem document ends up in logs.
    """
    document = body if isinstance(body, dict | list) else _NO_DOCUMENT
    out: list[FieldError] = []
    for error in errors:
        location = tuple(error.get("loc", ()))
        english = _english_message(error)
        text = Text(_zh_message(error, english), english)
        if location and location[0] == "body":
            missing = error.get("type") == "missing"
            kept = FieldError(text, pointer=_pointer(location[1:], document, missing))
        else:
            kept = FieldError(text, parameter=str(location[-1]) if location else None)
        if kept not in out:  # union members can fail at the same place for the same reason
            out.append(kept)
    return out


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return answer(request, exc)


async def _on_domain_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainProblem)
    return answer(request, exc.problem())


async def _on_validation(request: Request, exc: Exception) -> Response:
    from fastapi.exceptions import RequestValidationError

    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    for error in errors:
        if error.get("type") == "json_invalid":
            location = tuple(error.get("loc", ()))
            offset = location[1] if len(location) > 1 else "?"
            reason = error.get("ctx", {}).get("error", "")
            detail = Text(
                f"无法解析 JSON：第 {offset} 个字符处出错（{reason}）",
                f"The body is not valid JSON: {reason} at character {offset}",
            )
            return answer(request, Problem(MALFORMED_JSON, detail))
    if isinstance(exc.body, bytes) and any(tuple(e.get("loc", ())) == ("body",) for e in errors):
        # FastAPI hands a route the raw bytes when Content-Type is absent or not JSON: the
        # body was never read as JSON, so "should be an object" would mislead the caller.
        detail = Text(
            "请求体须为 JSON，并带 Content-Type: application/json",
            "The body must be JSON, sent with Content-Type: application/json",
        )
        return answer(request, Problem(UNSUPPORTED_MEDIA_TYPE, detail))
    problem = Problem(VALIDATION_FAILED, errors=field_errors(errors, exc.body))
    return answer(request, problem)


# FastAPI turns any failure to decode a JSON body other than JSONDecodeError (bytes that are not
# UTF-8, nesting deep enough to exhaust the parser's recursion, an integer over Python's digit
# limit) into HTTPException(400) with this detail and the original error as its cause.
_BODY_PARSE_FAILURE = "There was an error parsing the body"
_STATUS_TYPES = {
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
}


def _unparsable_body(exc: StarletteHTTPException) -> Text | None:
    if exc.status_code != 400 or exc.detail != _BODY_PARSE_FAILURE:
        return None
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return Text("请求体不是有效的 UTF-8 文本", "The body is not valid UTF-8")
    if isinstance(cause, RecursionError):
        return Text("JSON 嵌套层级过深", "The JSON is nested too deeply")
    if isinstance(cause, ValueError):
        return Text("无法解析 JSON", "The body could not be parsed as JSON")
    return None


async def _on_http_error(request: Request, exc: Exception) -> Response:
    from starlette.exceptions import HTTPException as StarletteHTTPException

    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    unparsable = _unparsable_body(exc)
    if unparsable is not None:
        return answer(request, Problem(MALFORMED_JSON, unparsable))
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    kind = _STATUS_TYPES.get(exc.status_code)
    # Starlette's default detail is the status phrase, which the title already says.
    default_detail = HTTPStatus(exc.status_code).phrase if exc.status_code in _PHRASES else None
    said = str(exc.detail) if exc.detail and exc.detail != default_detail else None
    detail = Text(said, said) if said else None
    if kind is not None:
        return answer(request, Problem(kind, detail, headers=headers))
    problem = Problem(HTTP_ERROR, detail, headers=headers, status=exc.status_code)
    return answer(request, problem)


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110 §15.5.6). Starlette's 405 names
    only the methods of the first route whose path matched, while the hub serves GET and POST
    of one path from two routes. Asked of the router itself, method by method (a 405 is rare),
    so included routers are searched as a request would search them."""
    from starlette.routing import Match

    served = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(served)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    """A 500 that ends the connection.

    Starlette's ServerErrorMiddleware sends this answer and then re-raises the exception to the
    server, and uvicorn closes a connection whose request raised, whether the answer said so or
    not. `Connection: close` says so, so that a keep-alive client opens a new connection for its
    next request instead of sending it down one that is closing.
    """
    route = route_template(request) or "(no route)"
    log.exception("unhandled error on %s %s", request.method, route, exc_info=exc)
    problem = Problem(INTERNAL_ERROR, headers={"Connection": "close"})
    return answer(request, problem)


# Data exceptions (SQLSTATE class 22) that can only come from a value the request carried: the
# routes bound what they read (hub.db.INT_MAX, lengths), and this is the net under a bound that
# is missing. psycopg refuses a NUL in text before sending it (no SQLSTATE), and hub.db raises
# SQLite's 64-bit overflow as 22003 too.
_REFUSED_VALUES = {
    "22001": Text(
        "请求中的文本超出平台可存储的长度", "A text in the request is longer than the hub stores"
    ),
    "22003": Text(
        "请求中的数值超出平台可存储的范围",
        "A number in the request is outside the range the hub stores",
    ),
    None: Text("请求中的值无法存储", "A value in the request cannot be stored"),
}


async def _on_data_error(request: Request, exc: Exception) -> Response:
    """A value the database refused is a 422, not a 500; any other data exception is a fault
    of the hub's own and answered as one."""
    assert isinstance(exc, DataError)
    state = "22003" if isinstance(exc.orig, OverflowError) else getattr(exc.orig, "sqlstate", None)
    detail = _REFUSED_VALUES.get(state)
    if detail is None:
        return await _on_unexpected(request, exc)
    route = route_template(request) or "(no route)"
    log.warning("the database refused a value on %s %s: %s", request.method, route, exc.orig)
    return answer(request, Problem(VALIDATION_FAILED, detail))


def install(app: FastAPI) -> None:
    """Route every kind of failure through problem details."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(DomainProblem, _on_domain_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(DataError, _on_data_error)
    app.add_exception_handler(Exception, _on_unexpected)
