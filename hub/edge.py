"""The hub's edge: what a request must be before any route, the OAuth endpoints included, sees it.

One ASGI middleware refuses two kinds of request:

- a body over `max_body_bytes` (413). The body is buffered, at most that many bytes, so that a
  chunked upload without Content-Length is held to the same limit before a handler reads a
  byte; a declared Content-Length over the limit is refused before a byte is read.
- a character no database column can hold (422 `validation-failed`, naming where, never the
  value): U+0000, which PostgreSQL refuses in text (a 500 whose traceback showed the row) and
  SQLite stores but cuts at in `json_extract`, and, from a JSON escape, an unpaired surrogate,
  which is not UTF-8 at all. It is looked for wherever a handler could pass one on: the path
  and the query string (percent-decoded), header values and the decoded Basic credentials of
  `Authorization`, URL-encoded form bodies and JSON bodies (a raw byte, or an escape).

A request without a body pays for a few substring searches; a body is searched once, in the
buffer, and parsed only when the search finds a candidate (an escaped backslash followed by
`u0000` is one, and parsing tells it from the real escape).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.problems import (
    MEDIA_TYPE,
    PAYLOAD_TOO_LARGE,
    VALIDATION_FAILED,
    FieldError,
    Language,
    Problem,
    Text,
    json_pointer,
    negotiate_language,
)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A raw NUL, or an escape of U+0000 or of a surrogate (a lone one, or half of a pair: parsing
# tells them apart). Other bytes of a JSON body cannot become an unstorable character.
_JSON_CANDIDATE = re.compile(rb"\x00|\\u(?:0000|[dD][89a-fA-F])")
_FORM = b"application/x-www-form-urlencoded"
_MUST_NOT = Text(
    "不得含有 NUL 字符（U+0000）或不成对的代理项",
    "must not contain NUL (U+0000) or a lone surrogate",
)
_REFUSED = Text(
    "请求中含有平台无法存储的字符（NUL 或不成对的代理项）",
    "The request contains a character the hub cannot store (NUL or a lone surrogate)",
)
_IN_PATH = Text(
    "请求路径中含有 NUL 字符（U+0000），平台无法存储",
    "The path contains NUL (U+0000), which the hub cannot store",
)
_IN_A_NAME = Text(
    "参数名不得含有 NUL 字符（U+0000）", "A parameter name must not contain NUL (U+0000)"
)


class Edge:
    """ASGI middleware: the body limit and the refusal of unstorable characters."""

    def __init__(self, app: ASGIApp, limit: int, default_language: Language) -> None:
        self.app = app
        self.limit = limit
        self.default_language = default_language

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The first of repeated headers, as Starlette's Headers.get (and so Authlib) reads them.
        headers = dict(reversed(scope["headers"]))
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            # A non-numeric length never gets past uvicorn's parser; should another server
            # pass one on, the body's size is unknown and refusing it is the safe answer.
            await self._refuse(send, headers, 413, self._too_large(), close=True)
            return
        if declared is None and b"transfer-encoding" not in headers and _framed_by_headers(scope):
            # HTTP/1.x (RFC 9112 §6.3): no Content-Length and no Transfer-Encoding means no
            # body at all: nothing to buffer or search.
            refusal = _in_head(scope, headers)
            if refusal is not None:
                await self._refuse(send, headers, 422, refusal)
                return
            await self.app(scope, receive, send)
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
                # The rest of the body is left unread: the connection cannot be reused.
                await self._refuse(send, headers, 413, self._too_large(), close=True)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        refusal = _in_head(scope, headers) or _in_body(headers.get(b"content-type", b""), body)
        if refusal is not None:
            await self._refuse(send, headers, 422, refusal)
            return
        await self.app(scope, replaying(body, receive), send)

    def _too_large(self) -> Problem:
        detail = Text(
            f"请求体不得超过 {self.limit} 字节", f"The body must not exceed {self.limit} bytes"
        )
        return Problem(PAYLOAD_TOO_LARGE, detail)

    async def _refuse(
        self,
        send: Send,
        headers: dict[bytes, bytes],
        status: int,
        problem: Problem,
        close: bool = False,
    ) -> None:
        """Answer before any route: no route matched yet, so the document has no `instance`."""
        accept = headers.get(b"accept-language", b"").decode("latin-1")
        language = negotiate_language(accept, self.default_language)
        payload = json.dumps(problem.render(language), ensure_ascii=False).encode()
        response_headers = [
            (b"content-type", MEDIA_TYPE.encode()),
            (b"content-length", str(len(payload)).encode()),
            (b"content-language", language.encode()),
            (b"vary", b"Accept-Language"),
        ]
        if close:
            response_headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})


def _framed_by_headers(scope: Scope) -> bool:
    """Whether headers alone say if a body follows: HTTP/1.x yes; HTTP/2 and 3 send bodies
    as frames that may come with neither header, so there the body is always counted."""
    return str(scope.get("http_version", "1.1")).startswith("1.")


def _refusal(where: FieldError | None = None, detail: Text = _REFUSED) -> Problem:
    return Problem(VALIDATION_FAILED, detail, errors=() if where is None else (where,))


def _pairs_refusal(encoded: str) -> Problem | None:
    """NUL in a URL-encoded query or form: the parameter that holds it, or its name."""
    for name, value in parse_qsl(encoded, keep_blank_values=True):
        if "\x00" in name:
            return _refusal(FieldError(_IN_A_NAME))
        if "\x00" in value:
            return _refusal(FieldError(_MUST_NOT, parameter=name))
    return None


def _in_head(scope: Scope, headers: dict[bytes, bytes]) -> Problem | None:
    """NUL in the path, the query string or a header value, percent-decoded where the hub
    decodes (a path, a query, the Basic credentials); None when there is none.

    Every request pays for this: a byte search of the path, the query and the header values
    joined (one search instead of one per header), and a look at Authorization's scheme.
    """
    if "\x00" in scope["path"]:  # the server percent-decoded it
        return _refusal(detail=_IN_PATH)
    query: bytes = scope.get("query_string", b"")
    if b"\x00" in query or b"%00" in query:
        refusal = _pairs_refusal(query.decode("latin-1"))  # as Starlette decodes it
        if refusal is not None:
            return refusal
    if b"\x00" in b"".join([value for _, value in scope["headers"]]):
        name = next(name for name, value in scope["headers"] if b"\x00" in value)
        return _refusal(FieldError(_MUST_NOT, parameter=name.decode("latin-1")))
    authorization = headers.get(b"authorization", b"")
    if authorization[:5].lower() == b"basic" and _nul_in_basic(authorization):
        return _refusal(FieldError(_MUST_NOT, parameter="authorization"))
    return None


def _nul_in_basic(authorization: bytes) -> bool:
    """Basic credentials are base64 of `client_id:client_secret`, each percent-encoded
    (RFC 6749 §2.3.1); split and decoded leniently, as Authlib does."""
    scheme, *credentials = authorization.split(None, 1)
    if scheme.lower() != b"basic" or not credentials:
        return False
    try:
        decoded = base64.b64decode(credentials[0])
    except binascii.Error:
        return False  # refused as unreadable further in
    return b"\x00" in decoded or b"%00" in decoded


def _in_body(content_type: bytes, body: bytes) -> Problem | None:
    """An unstorable character in a form or JSON body; other bodies are not read as text."""
    media_type = content_type.split(b";", 1)[0].strip().lower()
    if media_type == _FORM:
        if b"\x00" in body or b"%00" in body:
            return _pairs_refusal(body.decode("utf-8", errors="replace"))
        return None
    is_json = media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )
    if not is_json or not _JSON_CANDIDATE.search(body):
        return None
    try:
        document = json.loads(body)  # as FastAPI parses it, UTF-16 and UTF-32 included
    except (ValueError, RecursionError):
        # Not JSON: a malformed-json problem further in, unless a raw NUL is in it.
        return _refusal(FieldError(_MUST_NOT, pointer="")) if b"\x00" in body else None
    pointer = _unstorable_at(document)
    return None if pointer is None else _refusal(FieldError(_MUST_NOT, pointer=pointer))


def _unstorable_at(document: Any) -> str | None:
    """The pointer of the first string in `document` with an unstorable character, in document
    order; a member name with one points at its object. None when there is none."""
    pending: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while pending:  # depth first without recursion: the parser allows deeper nesting
        steps, node = pending.pop()
        if isinstance(node, str):
            if _UNSTORABLE.search(node):
                return json_pointer(steps)
        elif isinstance(node, dict):
            if any(_UNSTORABLE.search(name) for name in node):
                return json_pointer(steps)
            pending.extend(((*steps, name), value) for name, value in reversed(node.items()))
        elif isinstance(node, list):
            pending.extend(
                ((*steps, str(index)), value) for index, value in reversed(list(enumerate(node)))
            )
    return None


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body already read, whole, then whatever the server says
    next (a disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
