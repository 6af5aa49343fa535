"""Problem details (RFC 9457): every failure a client can provoke is a typed, translated document.

The tests drive the real application over HTTP. Where the hub has no route of the needed shape
yet (a JSON body, a query parameter, a route that crashes), the test adds one to an app built by
`create_app`, so what is exercised is the handlers and middleware the hub installs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from typing import Annotated, Any, Literal

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.testclient import TestClient
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine
from starlette.types import Message, Receive, Scope, Send

from hub.app import create_app
from hub.auth.guard import public
from hub.clock import FixedClock
from hub.edge import Edge
from hub.problems import (
    MEDIA_TYPE,
    NOT_FOUND,
    PROBLEM_TYPES,
    Language,
    Problem,
    negotiate_language,
)
from hub.settings import Settings
from tests.factories import assert_problem
from tests.servers import LoopbackServer

SMALL_LIMIT = 1_024
SECRET = "do-not-leak-110101199003077777"
CITIZEN_ID = "11010119900307777X"  # typed by a caller where an id or a code belongs


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    street: str = Field(min_length=1)
    postcode: str = Field(pattern=r"^\d{6}$")


class Applicant(BaseModel):
    """A body with the shapes a permit application has: scalars, a nested object, a list."""

    model_config = ConfigDict(extra="forbid")

    age: int = Field(ge=16, le=120)
    name: str = Field(min_length=2, max_length=20)
    address: Address
    items: list[int] = Field(max_length=5)
    reference: int | str | None = None


class Employment(BaseModel):
    kind: Literal["employment"]


class Study(BaseModel):
    kind: Literal["study"]


def _on_file(value: str) -> str:
    """A validator whose message carelessly quotes the value."""
    raise ValueError(f"{value} is not on file")


class Claim(BaseModel):
    """A discriminated union and a validator of the hub's own: messages that could quote input."""

    proof: Annotated[Employment | Study, Field(discriminator="kind")]
    reference: Annotated[str, AfterValidator(_on_file)] = "ok"


BuildApp = Callable[..., FastAPI]


@pytest.fixture
def build_app(settings: Settings, engine: Engine, clock: FixedClock) -> BuildApp:
    """The hub's app with probe routes added; keyword arguments override settings."""

    def build(**overrides: Any) -> FastAPI:
        app = create_app(settings.model_copy(update=overrides), engine=engine, clock=clock)
        entered: list[str] = []
        app.state.entered = entered

        @app.post("/echo")
        @public
        async def echo(applicant: Applicant) -> dict[str, Any]:
            entered.append("echo")
            return applicant.model_dump()

        @app.get("/search")
        @public
        async def search(
            limit: Annotated[int, Query(ge=1, le=100)], since: date | None = None
        ) -> dict[str, Any]:
            return {"limit": limit, "since": since}

        @app.post("/raw")
        @public
        async def raw(request: Request) -> dict[str, Any]:
            entered.append("raw")
            body = await request.body()
            return {"size": len(body), "chunked": "transfer-encoding" in request.headers}

        @app.get("/people/{person_id}")
        @public
        async def person(
            person_id: uuid.UUID, role: Literal["holder", "guardian"] = "holder"
        ) -> dict[str, str]:
            return {"id": str(person_id), "role": role}

        @app.post("/claims")
        @public
        async def claims(claim: Claim) -> dict[str, Any]:
            return claim.model_dump()

        @app.get("/crash/{who}")
        @public
        async def crash(who: str) -> None:
            raise RuntimeError(SECRET)

        @app.get("/conflict")
        @public
        async def conflict() -> None:
            raise HTTPException(409, "already endorsed")

        return app

    return build


@pytest.fixture
def client(build_app: BuildApp) -> Iterator[TestClient]:
    with TestClient(build_app()) as client:
        yield client


@pytest.fixture
def small_client(build_app: BuildApp) -> Iterator[TestClient]:
    """An app whose body limit is small enough to cross in a test."""
    with TestClient(build_app(max_body_bytes=SMALL_LIMIT)) as client:
        yield client


JSON = {"Content-Type": "application/json"}
ZH = {"Accept-Language": "zh-CN"}
VALID = {
    "age": 30,
    "name": "李雷",
    "address": {"street": "长安街 1 号", "postcode": "100000"},
    "items": [1, 2],
}


# --- malformed bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "title", "detail_start"),
    [
        ("en", "Malformed JSON body", "The body is not valid JSON"),
        ("zh-CN", "请求体不是有效的 JSON", "无法解析 JSON"),
    ],
)
def test_malformed_json_is_400_in_the_negotiated_language(
    client: TestClient, language: str, title: str, detail_start: str
) -> None:
    response = client.post(
        "/echo", content=b'{"age": 30,', headers={**JSON, "Accept-Language": language}
    )
    body = assert_problem(response, 400, "malformed-json")
    assert body["title"] == title
    assert body["detail"].startswith(detail_start)
    assert response.headers["content-language"] == language
    assert body["instance"] == "/echo"
    assert client.app.state.entered == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b'{"name": "\xff\xfe"}', "The body is not valid UTF-8"),
        (b"[" * 50_000, "The JSON is nested too deeply"),
        (b'{"age": ' + b"9" * 5_000 + b"}", "The body could not be parsed as JSON"),
    ],
    ids=["not-utf8", "too-deep", "integer-too-long"],
)
def test_bodies_the_json_parser_chokes_on_are_malformed_json(
    client: TestClient, content: bytes, detail: str
) -> None:
    """FastAPI reports these as a bare 400; they are the same problem as a syntax error."""
    body = assert_problem(
        client.post("/echo", content=content, headers=JSON), 400, "malformed-json"
    )
    assert body["detail"] == detail


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml"])
def test_a_body_not_declared_as_json_is_415(client: TestClient, content_type: str | None) -> None:
    """FastAPI only parses JSON it is told is JSON; saying 'should be an object' would mislead."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/echo", content=json.dumps(VALID).encode(), headers=headers)
    body = assert_problem(response, 415, "unsupported-media-type")
    assert "application/json" in body["detail"]


# --- validation -----------------------------------------------------------------------------


def test_a_valid_body_reaches_the_route(client: TestClient) -> None:
    response = client.post("/echo", json=VALID)
    assert response.status_code == 200, response.text
    assert response.json()["address"]["postcode"] == "100000"


def test_each_invalid_field_gets_an_rfc6901_pointer(client: TestClient) -> None:
    response = client.post(
        "/echo",
        json={
            "age": "thirty",
            "name": "x",
            "address": {"street": "长安街", "postcode": 100000},
            "items": [1, "two", 3],
        },
    )
    body = assert_problem(response, 422, "validation-failed")
    by_pointer = {error["pointer"]: error["detail"] for error in body["errors"]}
    assert by_pointer == {
        "/age": "Input should be a valid integer, unable to parse string as an integer",
        "/name": "String should have at least 2 characters",
        "/address/postcode": "Input should be a valid string",
        "/items/1": "Input should be a valid integer, unable to parse string as an integer",
    }
    assert all("parameter" not in error for error in body["errors"])


def test_missing_fields_point_where_they_should_be(client: TestClient) -> None:
    response = client.post("/echo", json={"age": 30, "address": {"street": "x"}})
    body = assert_problem(response, 422, "validation-failed")
    assert sorted(error["pointer"] for error in body["errors"]) == [
        "/address/postcode",
        "/items",
        "/name",
    ]
    assert {error["detail"] for error in body["errors"]} == {"Field required"}


def test_a_body_of_the_wrong_shape_points_at_the_whole_document(client: TestClient) -> None:
    body = assert_problem(client.post("/echo", json=[1, 2]), 422, "validation-failed")
    assert body["errors"] == [
        {
            "detail": "Input should be a valid dictionary or object to extract fields from",
            "pointer": "",
        }
    ]


def test_union_member_names_are_not_part_of_the_pointer(client: TestClient) -> None:
    """Pydantic's location for `int | str` ends in 'int' and 'str'; the document has no such key."""
    body = assert_problem(
        client.post("/echo", json={**VALID, "reference": [1]}), 422, "validation-failed"
    )
    assert [error["pointer"] for error in body["errors"]] == ["/reference", "/reference"]


def test_pointer_tokens_are_escaped(client: TestClient) -> None:
    """RFC 6901 §3: '~' is written '~0' and '/' is written '~1'."""
    response = client.post("/echo", json={**VALID, "a/b~c": 1})
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"] == [{"detail": "Extra inputs are not permitted", "pointer": "/a~1b~0c"}]


def test_validation_details_in_chinese_state_the_limit(client: TestClient) -> None:
    response = client.post(
        "/echo",
        json={**VALID, "age": 7, "name": "张" * 21, "items": [1, 2, 3, 4, 5, 6]},
        headers=ZH,
    )
    body = assert_problem(response, 422, "validation-failed")
    assert body["title"] == "请求内容校验失败"
    assert {error["pointer"]: error["detail"] for error in body["errors"]} == {
        "/age": "不得小于 16",
        "/name": "最多 20 个字符",
        "/items": "最多 5 项",
    }


def test_rejected_input_is_never_echoed(client: TestClient) -> None:
    """A body may hold a citizen ID number; problem documents end up in logs."""
    response = client.post("/echo", json={**VALID, "address": {"street": "x", "postcode": SECRET}})
    assert_problem(response, 422, "validation-failed")
    assert SECRET not in response.text


@pytest.mark.parametrize(
    ("query", "parameter", "detail"),
    [
        ("", "limit", "Field required"),
        (
            "?limit=many",
            "limit",
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        ("?limit=0", "limit", "Input should be greater than or equal to 1"),
        ("?limit=5&since=yesterday", "since", None),
    ],
)
def test_query_parameter_errors_name_the_parameter(
    client: TestClient, query: str, parameter: str, detail: str | None
) -> None:
    body = assert_problem(client.get(f"/search{query}"), 422, "validation-failed")
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["parameter"] == parameter
    assert "pointer" not in error
    if detail is not None:
        assert error["detail"] == detail


# --- language -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("zh-CN", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("en-US,en;q=0.9", "en"),
        ("fr, en;q=0.5", "en"),
        ("en;q=0.1, zh;q=0.9", "zh-CN"),
        ("zh;q=0, en;q=0.2", "en"),
        ("de, fr;q=0.8", "en"),
        ("*", "en"),
        ("english", "en"),
        (";;;,,q=, zh;q=abc, en;q=nan", "en"),
        ("\u00e9\u00e8;q=1.5", "en"),
        (None, "en"),
    ],
)
def test_accept_language_picks_title_and_content_language(
    client: TestClient, accept_language: str | None, expected: Language
) -> None:
    # Bytes, so a header that is not ASCII reaches the hub as raw UTF-8, as a careless client
    # would send it.
    headers = {} if accept_language is None else {"Accept-Language": accept_language.encode()}
    response = client.get("/no/such/route", headers=headers)
    body = assert_problem(response, 404, "not-found")
    assert body["title"] == NOT_FOUND.title.in_(expected)
    assert response.headers["content-language"] == expected
    assert response.headers["vary"] == "Accept-Language"


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [(None, "zh-CN"), ("fr", "zh-CN"), ("garbage;;q=x", "zh-CN"), ("*", "zh-CN"), ("en", "en")],
)
def test_without_a_usable_preference_the_configured_default_wins(
    build_app: BuildApp, accept_language: str | None, expected: Language
) -> None:
    headers = {} if accept_language is None else {"Accept-Language": accept_language}
    app = build_app(default_language="zh-CN", max_body_bytes=SMALL_LIMIT)
    with TestClient(app) as client:
        response = client.get("/no/such/route", headers=headers)
        assert response.json()["title"] == NOT_FOUND.title.in_(expected)
        assert response.headers["content-language"] == expected
        too_big = client.post("/raw", content=b"x" * (SMALL_LIMIT + 1), headers=headers)
        assert too_big.status_code == 413
        assert too_big.headers["content-language"] == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [("en;q=1, zh;q=1", "en"), ("zh, en", "zh-CN"), ("en-GB;level=1;q=0.4, zh;q=0.3", "en")],
)
def test_ties_go_to_the_earlier_range_and_other_parameters_are_skipped(
    header: str, expected: Language
) -> None:
    assert negotiate_language(header, "zh-CN" if expected == "en" else "en") == expected


# --- routing --------------------------------------------------------------------------------


def test_instance_is_the_route_template_never_the_path_as_sent(client: TestClient) -> None:
    """A citizen ID typed into a path must not come back: `instance` names the operation."""
    response = client.get(f"/people/{CITIZEN_ID}", params={"role": CITIZEN_ID})
    body = assert_problem(response, 422, "validation-failed")
    assert body["instance"] == "/people/{person_id}"
    details = {error["parameter"]: error["detail"] for error in body["errors"]}
    assert details == {
        "person_id": "Input should be a valid UUID",  # pydantic's names the offending character
        "role": "Input should be 'holder' or 'guardian'",
    }
    assert CITIZEN_ID not in response.text


def test_integer_parameters_do_not_echo_a_citizen_id(client: TestClient) -> None:
    response = client.get("/search", params={"limit": CITIZEN_ID, "since": CITIZEN_ID})
    body = assert_problem(response, 422, "validation-failed")
    assert [error["parameter"] for error in body["errors"]] == ["limit", "since"]
    assert CITIZEN_ID not in response.text


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_messages_that_would_quote_the_input_do_not(client: TestClient, language: str) -> None:
    """Pydantic quotes a discriminator's value; a validator of ours might quote its input."""
    response = client.post(
        "/claims",
        json={"proof": {"kind": CITIZEN_ID}, "reference": CITIZEN_ID},
        headers={"Accept-Language": language},
    )
    body = assert_problem(response, 422, "validation-failed")
    assert CITIZEN_ID not in response.text
    details = {error["pointer"]: error["detail"] for error in body["errors"]}
    assert set(details) == {"/proof", "/reference"}
    if language == "en":
        assert details["/proof"] == (
            "Input tag does not match any of the expected tags: 'employment', 'study'"
        )
        assert details["/reference"] == "Value error, … is not on file"


def test_unknown_route_is_404(client: TestClient) -> None:
    body = assert_problem(client.get("/nowhere", headers=ZH), 404, "not-found")
    assert body["title"] == "资源不存在"
    assert "instance" not in body  # no route matched: nothing but the caller's own path to name


@pytest.mark.parametrize("method", ["DELETE", "POST", "PUT", "PATCH"])
def test_wrong_method_is_405_with_allow(client: TestClient, method: str) -> None:
    response = client.request(method, "/healthz")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET"


def test_allow_names_every_route_of_the_path(client: TestClient) -> None:
    """GET and POST of /schemas/v1/agreements are two routes; a 405 names both."""
    response = client.request("DELETE", "/schemas/v1/agreements")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET, POST"


def test_other_http_exceptions_keep_their_status_and_detail(client: TestClient) -> None:
    body = assert_problem(client.get("/conflict"), 409, "http-error")
    assert body["detail"] == "already endorsed"


# --- body size ------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_413_before_the_route(
    small_client: TestClient,
) -> None:
    response = small_client.post("/raw", content=b"x" * (SMALL_LIMIT + 1), headers=ZH)
    body = assert_problem(response, 413, "payload-too-large")
    assert body["title"] == "请求体过大"
    assert str(SMALL_LIMIT) in body["detail"]
    assert response.headers["connection"] == "close"
    assert small_client.app.state.entered == []  # type: ignore[attr-defined]


def _chunks(total: int, size: int = 100) -> Iterator[bytes]:
    while total > 0:
        yield b"x" * min(size, total)
        total -= size


@pytest.mark.parametrize("route", ["/raw", "/echo"])
def test_a_chunked_body_over_the_limit_is_413_before_the_route(
    small_client: TestClient, route: str
) -> None:
    response = small_client.post(route, content=_chunks(SMALL_LIMIT + 1), headers=JSON)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, "payload-too-large")
    assert small_client.app.state.entered == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_exactly_at_the_limit_is_accepted(small_client: TestClient, chunked: bool) -> None:
    content = _chunks(SMALL_LIMIT) if chunked else b"x" * SMALL_LIMIT
    response = small_client.post("/raw", content=content)
    assert response.status_code == 200, response.text
    assert response.json() == {"size": SMALL_LIMIT, "chunked": chunked}


def test_the_default_limit_comes_from_settings(client: TestClient, settings: Settings) -> None:
    at_limit = client.post("/raw", content=b"x" * settings.max_body_bytes)
    assert at_limit.json()["size"] == settings.max_body_bytes
    over = client.post("/raw", content=b"x" * (settings.max_body_bytes + 1))
    assert_problem(over, 413, "payload-too-large")


def _run_body_limit(scope_extra: dict[str, Any], messages: list[Message]) -> tuple[list[str], int]:
    """Drive the edge middleware directly: what the inner app saw, and the status sent."""
    pending = list(messages)
    seen: list[str] = []
    statuses: list[int] = []

    async def receive() -> Message:
        seen.append("receive")
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append("app")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], **scope_extra}
    asyncio.run(Edge(inner, SMALL_LIMIT, "en")(scope, receive, send))
    return seen, statuses[0]


def test_a_request_without_a_body_is_not_buffered() -> None:
    """HTTP/1.1 without Content-Length or Transfer-Encoding has no body: nothing to read."""
    seen, status = _run_body_limit({"http_version": "1.1"}, [])
    assert seen == ["app"]
    assert status == 204


def test_an_http2_body_without_length_headers_is_still_counted() -> None:
    """HTTP/2 frames a body itself; no header announces it, so it must be counted anyway."""
    body = {"type": "http.request", "body": b"x" * (SMALL_LIMIT + 1), "more_body": False}
    seen, status = _run_body_limit({"http_version": "2"}, [body])
    assert seen == ["receive"]
    assert status == 413


# --- failures inside the hub ----------------------------------------------------------------


def test_an_unexpected_exception_is_a_500_problem_without_internals(
    build_app: BuildApp, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(build_app(), raise_server_exceptions=False) as client:
        response = client.get(f"/crash/{CITIZEN_ID}", headers=ZH)
    body = assert_problem(response, 500, "internal-error")
    assert body["title"] == "服务器内部错误"
    assert SECRET not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert response.headers["connection"] == "close"
    logged = [record for record in caplog.records if record.name == "hub.problems"]
    assert logged and logged[0].exc_info is not None  # the traceback goes to the log instead
    assert logged[0].getMessage() == "unhandled error on GET /crash/{who}"
    assert CITIZEN_ID not in caplog.text


def test_a_500_closes_the_connection_and_the_next_request_gets_a_new_one(
    build_app: BuildApp,
) -> None:
    """uvicorn closes a connection whose request raised (Starlette re-raises after our answer):
    the answer says so, so a keep-alive client does not send its next request down it."""
    server = LoopbackServer(build_app())
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(b"GET /crash/x HTTP/1.1\r\nHost: hub\r\n\r\n")
            received = b""
            while chunk := raw.recv(65_536):  # until the server's FIN; a reset would raise
                received += chunk
        head, _, payload = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 500 ")
        assert b"\r\nconnection: close" in head.lower()
        assert json.loads(payload)["type"] == "/problems/internal-error"
        with httpx.Client(base_url=server.url, timeout=10) as client:
            crashed = client.get("/crash/x")
            assert crashed.status_code == 500
            assert crashed.headers["connection"] == "close"
            after = client.get("/healthz")
            assert after.status_code == 200
            assert after.extensions["network_stream"] is not crashed.extensions["network_stream"]
    finally:
        server.stop()


# --- problem type pages ---------------------------------------------------------------------


def test_every_problem_type_is_documented_at_its_uri(client: TestClient) -> None:
    assert {"malformed-json", "validation-failed", "token-missing"} <= set(PROBLEM_TYPES)
    for slug, kind in PROBLEM_TYPES.items():
        response = client.get(kind.uri)
        assert response.status_code == 200, slug
        assert response.json() == {
            "type": kind.uri,
            "status": kind.status,
            "title": {"zh-CN": kind.title.zh, "en": kind.title.en},
        }


def test_an_unknown_problem_type_is_404(client: TestClient) -> None:
    body = assert_problem(client.get("/problems/no-such-problem"), 404, "not-found")
    assert body["instance"] == "/problems/{slug}"


def test_extensions_never_replace_standard_members() -> None:
    problem = Problem(NOT_FOUND, extensions={"type": "about:blank", "status": 200, "hint": 1})
    rendered = problem.render("en")
    assert rendered["type"] == "/problems/not-found"
    assert rendered["status"] == 404
    assert rendered["hint"] == 1


# --- authentication -------------------------------------------------------------------------


def test_a_guarded_route_without_a_token_is_401_with_a_bearer_challenge(
    app_client: TestClient,
) -> None:
    response = app_client.get("/auth/v1/whoami", headers=ZH)
    body = assert_problem(response, 401, "token-missing")
    assert body["title"] == "缺少访问令牌"
    assert response.headers["www-authenticate"] == 'Bearer realm="permit-hub"'


def test_a_garbled_token_is_401_token_invalid(app_client: TestClient) -> None:
    response = app_client.get("/auth/v1/whoami", headers={"Authorization": "Bearer not.a.jwt"})
    assert_problem(response, 401, "token-invalid")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="permit-hub"')
    assert 'error="invalid_token"' in challenge


# --- no input produces a 500 ----------------------------------------------------------------


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, biased towards the names and shapes /echo expects."""
    roll = rng.random()
    if depth > 3 or roll < 0.45:
        return rng.choice(
            [
                None,
                True,
                rng.randint(-(10**30), 10**30),
                rng.uniform(-1e6, 1e6),
                rng.choice(["", "x", "李雷", "100000", "\u0000", "\ud7ff", "😀" * 30]),
                "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 40))),
            ]
        )
    if roll < 0.7:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 7))]
    names = ["age", "name", "address", "street", "postcode", "items", "reference", "", "a/b~"]
    return {
        rng.choice(names) if rng.random() < 0.8 else str(rng.random()): _random_json(rng, depth + 1)
        for _ in range(rng.randint(0, 6))
    }


def _random_bytes(rng: random.Random) -> bytes:
    raw = rng.randbytes(rng.randint(0, 200))
    prefix = rng.choice([b"", b"{", b"[", b'{"age":', b"\xef\xbb\xbf", b"\x00"])
    return prefix + raw


def _assert_handled(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == MEDIA_TYPE
        assert response.json()["status"] == response.status_code


def test_random_bodies_to_a_json_route_never_500(client: TestClient) -> None:
    rng = random.Random(9457)
    content_types = [None, "application/json", "application/json; charset=utf-8", "text/plain"]
    for _ in range(150):
        content_type = rng.choice(content_types)
        headers = {"Content-Type": content_type} if content_type else {}
        headers["Accept-Language"] = rng.choice(["zh", "en", "", "q=;,", "zh;q=x"])
        _assert_handled(client.post("/echo", content=_random_bytes(rng), headers=headers))
        document = json.dumps(_random_json(rng)).encode()
        _assert_handled(client.post("/echo", content=document, headers=JSON))


def test_random_requests_to_the_token_endpoint_never_500(app_client: TestClient) -> None:
    rng = random.Random(6749)
    names = [
        "grant_type",
        "client_id",
        "client_secret",
        "scope",
        "client_assertion_type",
        "client_assertion",
        "token",
    ]
    values = [
        "client_credentials",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "registry:read",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
        "",
        "%ff%00",
    ]
    for _ in range(300):
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if rng.random() < 0.5:
            noise = "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 40)))
            credentials = rng.choice(
                [noise.encode(), _random_bytes(rng), b"id:secret", b":", b"id:", b":secret"]
            )
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        elif rng.random() < 0.3:
            headers["Authorization"] = rng.choice(["Basic", "Basic !!!", "Bearer x", "Basic ="])
        if rng.random() < 0.5:
            content = _random_bytes(rng)
        else:
            # Mostly well-formed client_credentials requests, so that the random values reach
            # client authentication and assertion parsing rather than stopping at grant_type.
            pairs = [("grant_type", "client_credentials")] if rng.random() < 0.8 else []
            chosen = rng.sample(names[1:], rng.randint(0, 4)) + (
                [rng.choice(names)] if rng.random() < 0.1 else []  # sometimes a repeat
            )
            pairs += [
                (name, rng.choice(values) if rng.random() < 0.7 else str(rng.random()))
                for name in chosen
            ]
            content = "&".join(f"{name}={value}" for name, value in pairs).encode()
        _assert_handled(app_client.post("/oauth/token", content=content, headers=headers))


def test_basic_credentials_that_are_not_utf8_are_refused_not_500(app_client: TestClient) -> None:
    response = app_client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(b"\xbb\xff:secret").decode()},
    )
    assert_problem(response, 401, "invalid-client")
