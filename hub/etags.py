"""Optimistic concurrency for every resource that two people may change at once.

A read answers with the row's version as its ETag; a change must send it back as If-Match,
so two windows (or two governance staff) cannot overwrite each other: a missing If-Match is a
428, a version that is no longer current a 412.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import Request
from fastapi.responses import JSONResponse

from hub.db import INT_MAX
from hub.problems import STALE_WRITE, Problem, Text, problem_type

PRECONDITION_REQUIRED = problem_type(
    "precondition-required", 428, "须携带 If-Match 版本号", "If-Match required"
)


ETAG_HEADER: Final[dict[str, Any]] = {
    "ETag": {"description": "The version just read or written", "schema": {"type": "string"}}
}
"""The response header of a versioned resource, for `responses={...: {"headers": ...}}`."""
PRECONDITION_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    412: {"description": "If-Match is not the current version: read again"},
    428: {"description": "If-Match missing"},
}


def if_match_required() -> dict[str, Any]:
    """The `openapi_extra` of a route that needs If-Match. It is declared here, not as a
    FastAPI Header parameter, which would answer a missing one with a 422 instead of the 428
    that `expected_version` gives."""
    header = {
        "name": "If-Match",
        "in": "header",
        "required": True,
        "description": "The ETag last read; any other value is a 412",
        "schema": {"type": "string", "examples": ['"1"']},
    }
    return {"parameters": [header]}


def expected_version(request: Request) -> int:
    """The version named by If-Match."""
    header = request.headers.get("if-match")
    if header is None:
        raise Problem(
            PRECONDITION_REQUIRED,
            Text(
                "请携带读取时返回的 ETag 作为 If-Match",
                "Send the ETag you read as If-Match",
            ),
        )
    tag = header.strip().removeprefix("W/").strip('"')
    # ASCII digits within the int4 range of a version column; the header is not repeated.
    if not (tag.isascii() and tag.isdigit() and len(tag) <= 10 and int(tag) <= INT_MAX):
        raise Problem(
            STALE_WRITE,
            Text("If-Match 不是本资源的版本号", "If-Match is not a version of this resource"),
        )
    return int(tag)


def with_etag(body: dict[str, Any], status_code: int = 200, **headers: str) -> JSONResponse:
    """`body` (which has a "version") with its ETag."""
    return JSONResponse(
        body, status_code=status_code, headers={"ETag": f'"{body["version"]}"', **headers}
    )
