"""RFC 9457 problem details: the one shape of every error the hub returns.

Each kind of problem has a stable `type` (a relative URI, `/problems/<slug>`, served by the hub
itself so a person can look it up) and a title in Chinese and English. The language follows
`Accept-Language`; machine clients rely on `type`, never on the wording.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Language = Literal["zh-CN", "en"]
MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Text:
    """A sentence in both languages the hub speaks."""

    zh: str
    en: str

    def in_(self, language: Language) -> str:
        return self.zh if language == "zh-CN" else self.en


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
NOT_FOUND = problem_type("not-found", 404, "资源不存在", "Not found")
METHOD_NOT_ALLOWED = problem_type(
    "method-not-allowed", 405, "不支持该请求方法", "Method not allowed"
)
PAYLOAD_TOO_LARGE = problem_type("payload-too-large", 413, "请求体过大", "Payload too large")
UNSUPPORTED_MEDIA_TYPE = problem_type(
    "unsupported-media-type", 415, "不支持的内容类型", "Unsupported media type"
)
HTTP_ERROR = problem_type("http-error", 400, "请求错误", "Bad request")
INTERNAL_ERROR = problem_type("internal-error", 500, "服务器内部错误", "Internal server error")


@dataclass(frozen=True)
class FieldError:
    """One failed field: `pointer` (RFC 6901) into the body, or `parameter` for query/path/header."""

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


@dataclass
class Problem(Exception):
    """Raise anywhere below a router to answer with a problem document."""

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
        body.update(self.extensions)
        return body


def negotiate_language(header: str | None, default: Language) -> Language:
    """Pick zh-CN or en from Accept-Language by q-value; anything else falls back to default."""
    best: tuple[float, Language] | None = None
    for part in (header or "").split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        language: Language | None
        if tag.startswith("zh"):
            language = "zh-CN"
        elif tag.startswith("en"):
            language = "en"
        else:
            language = None
        if language and quality > 0 and (best is None or quality > best[0]):
            best = (quality, language)
    return best[1] if best else default


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    default: Language = getattr(request.app.state, "default_language", "zh-CN")
    language = negotiate_language(request.headers.get("accept-language"), default)
    body = problem.render(language, instance=request.url.path)
    headers = {"Content-Language": language, "Vary": "Accept-Language", **problem.headers}
    return JSONResponse(body, status_code=body["status"], headers=headers, media_type=MEDIA_TYPE)


# Pydantic error types a person is likely to meet, worded in Chinese; others keep pydantic's
# English message in both languages rather than an invented translation.
_ZH_MESSAGES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_type": "应为字符串",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为布尔值",
    "bool_type": "应为布尔值",
    "list_type": "应为数组",
    "dict_type": "应为对象",
    "model_attributes_type": "应为对象",
    "string_too_short": "字符串过短",
    "string_too_long": "字符串过长",
    "string_pattern_mismatch": "格式不符合要求",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "date_from_datetime_parsing": "应为日期",
    "date_parsing": "应为日期",
    "datetime_parsing": "应为日期时间",
    "value_error": "取值无效",
}


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """Translate FastAPI/pydantic errors into pointers (body) or parameter names."""
    out = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        message = str(error.get("msg", "invalid"))
        text = Text(_ZH_MESSAGES.get(str(error.get("type")), message), message)
        if location and location[0] == "body":
            pointer = "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in location[1:])
            out.append(FieldError(text, pointer=pointer))
        else:
            out.append(FieldError(text, parameter=location[-1] if location else None))
    return out


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(request, exc)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        position = errors[0].get("ctx", {}).get("error", "")
        detail = Text(f"无法解析 JSON：{position}", f"The body is not valid JSON: {position}")
        return problem_response(request, Problem(MALFORMED_JSON, detail))
    return problem_response(request, Problem(VALIDATION_FAILED, errors=field_errors(errors)))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        return problem_response(request, Problem(NOT_FOUND, headers=headers))
    if exc.status_code == 405:
        return problem_response(request, Problem(METHOD_NOT_ALLOWED, headers=headers))
    detail = Text(str(exc.detail), str(exc.detail))
    problem = Problem(HTTP_ERROR, detail, headers=headers, status=exc.status_code)
    return problem_response(request, problem)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, Problem(INTERNAL_ERROR))


def install(app: FastAPI) -> None:
    """Route every kind of failure through problem details."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


class BodyLimit:
    """ASGI middleware that refuses a body over `limit` bytes with a 413 problem.

    The body is buffered (it is at most `limit` bytes) so that a chunked upload without
    Content-Length is held to the same limit before any handler sees a byte of it.
    """

    def __init__(self, app: ASGIApp, limit: int, default_language: Language) -> None:
        self.app = app
        self.limit = limit
        self.default_language = default_language

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, send, headers)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, send, headers)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send, headers: dict[bytes, bytes]) -> None:
        accept = headers.get(b"accept-language", b"").decode("latin-1")
        language = negotiate_language(accept, self.default_language)
        detail = Text(f"请求体不得超过 {self.limit} 字节", f"The body must not exceed {self.limit} bytes")
        body = Problem(PAYLOAD_TOO_LARGE, detail).render(language, instance=scope.get("path"))
        payload = json.dumps(body, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (b"content-language", language.encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
