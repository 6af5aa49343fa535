"""The edge refuses characters no database column can hold, wherever a handler could pass one on.

U+0000 in a string gave a 500 on PostgreSQL (psycopg will not send it) and was stored on SQLite;
an unpaired surrogate from a JSON escape cannot even be encoded as UTF-8. The probe routes
below record what reached them, so each refusal is shown to come before any handler; the
registry and OAuth routes show the same on both databases.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

import psycopg
import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Header, Query, Request
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from hub.app import create_app
from hub.auth.guard import public
from hub.clock import FixedClock
from hub.db import INT_MAX, is_postgresql
from hub.deps import DbSession
from hub.permits.store import PermitEvent, Registration
from hub.settings import Settings
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient
from tests.factories import assert_problem, registration_body

MARK = "110101199003077777"  # a citizen ID beside the NUL: the refusal must not repeat it
ANY_LOCATION = object()


@pytest.fixture
def probe(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[TestClient]:
    """The hub's app with routes that take each kind of input and record what they got."""
    app: FastAPI = create_app(settings, engine=engine, clock=clock)
    seen: list[Any] = []
    app.state.seen = seen

    @app.post("/probe/json")
    @public
    async def json_body(document: dict[str, Any]) -> dict[str, Any]:
        seen.append(document)
        return document

    @app.post("/probe/form")
    @public
    async def form_body(request: Request) -> dict[str, str]:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        seen.append(form)
        return form

    @app.post("/probe/raw")
    @public
    async def raw_body(request: Request) -> dict[str, int]:
        body = await request.body()
        seen.append(body)
        return {"size": len(body)}

    @app.get("/probe/items/{item}")
    @public
    async def item(
        item: str,
        q: Annotated[str | None, Query()] = None,
        x_purpose: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        seen.append((item, q, x_purpose))
        return {"item": item, "q": q, "purpose": x_purpose}

    with TestClient(app) as client:
        yield client


def seen(client: TestClient) -> list[Any]:
    return client.app.state.seen  # type: ignore[attr-defined, no-any-return]


def basic(credentials: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}

# (id, request, where): where is a pointer ("/...") or a parameter name, or None for the path.
REFUSED: list[tuple[str, Callable[[TestClient], Any], str | object | None]] = [
    ("path", lambda c: c.get(f"/probe/items/{MARK}%00"), None),
    ("query", lambda c: c.get("/probe/items/x", params={"q": f"{MARK}\x00"}), "q"),
    ("query-raw-percent", lambda c: c.get(f"/probe/items/x?z=1&q={MARK}%00"), "q"),
    ("query-name", lambda c: c.get("/probe/items/x?q%00=1"), ANY_LOCATION),
    ("header", lambda c: c.get("/probe/items/x", headers={"X-Purpose": "a\x00b"}), "x-purpose"),
    ("basic", lambda c: c.get("/probe/items/x", headers=basic(b"id\x00:secret")), "authorization"),
    (
        "basic-first-of-two",  # Starlette's Headers.get, and so Authlib, reads the first
        lambda c: c.get(
            "/probe/items/x",
            headers=[
                ("Authorization", basic(b"id\x00:s")["Authorization"]),
                ("Authorization", "Bearer x"),
            ],
        ),
        "authorization",
    ),
    (
        "basic-percent-encoded",
        lambda c: c.get("/probe/items/x", headers=basic(b"id:se%00cret")),
        "authorization",
    ),
    (
        "form",
        lambda c: c.post("/probe/form", content=f"a=1&b={MARK}%00".encode(), headers=FORM),
        "b",
    ),
    (
        "form-raw-byte",
        lambda c: c.post("/probe/form", content=b"a=\x00", headers=FORM),
        "a",
    ),
    (
        "json-escape",
        lambda c: c.post("/probe/json", json={"name": f"{MARK}\x00"}),
        "/name",
    ),
    (
        "json-nested",
        lambda c: c.post("/probe/json", json={"a": [{"b": "ok"}, {"b": "x\x00", "a/b": 1}]}),
        "/a/1/b",
    ),
    (
        "json-in-a-name",
        lambda c: c.post("/probe/json", json={"outer": {"k\x00": MARK}}),
        "/outer",
    ),
    (
        "json-escape-after-escaped-backslash",
        lambda c: c.post("/probe/json", content=b'{"s": "\\\\\\u0000"}', headers=JSON),
        "/s",
    ),
    (
        "json-raw-byte",
        lambda c: c.post("/probe/json", content=b'{"s": "a\x00"}', headers=JSON),
        "",
    ),
    (
        "json-lone-high-surrogate",
        lambda c: c.post("/probe/json", content=b'{"s": "\\ud800x"}', headers=JSON),
        "/s",
    ),
    (
        "json-lone-low-surrogate",
        lambda c: c.post("/probe/json", content=b'{"s": ["\\uDC00"]}', headers=JSON),
        "/s/0",
    ),
    (
        "json-suffix-media-type",
        lambda c: c.post(
            "/probe/json",
            content=b'{"s": "\\u0000"}',
            headers={"Content-Type": "application/merge-patch+json; charset=utf-8"},
        ),
        "/s",
    ),
    (
        "json-utf16",
        lambda c: c.post("/probe/json", content='{"s": "\\u0000"}'.encode("utf-16"), headers=JSON),
        "/s",
    ),
]


@pytest.mark.parametrize(
    ("request_", "where"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_an_unstorable_character_is_refused_before_any_handler(
    probe: TestClient, request_: Callable[[TestClient], Any], where: str | object | None
) -> None:
    response = request_(probe)
    body = assert_problem(response, 422, "validation-failed")
    assert "U+0000" in body["detail"] or "NUL" in body["detail"]
    assert seen(probe) == []
    assert MARK not in response.text
    assert "instance" not in body  # the path as sent is the caller's; no route matched yet
    if where is None:
        assert "errors" not in body
        assert "path" in body["detail"]
    elif where is not ANY_LOCATION:
        [error] = body["errors"]
        key = "pointer" if isinstance(where, str) and where[:1] in ("/", "") else "parameter"
        assert error == {"detail": error["detail"], key: where}
        assert "NUL (U+0000)" in error["detail"]


def test_the_refusal_is_bilingual(probe: TestClient) -> None:
    response = probe.post(
        "/probe/json", json={"name": "a\x00"}, headers={"Accept-Language": "zh-CN"}
    )
    body = assert_problem(response, 422, "validation-failed")
    assert body["title"] == "请求内容校验失败"
    assert body["detail"].startswith("请求中含有平台无法存储的字符")
    assert body["errors"] == [
        {"detail": "不得含有 NUL 字符（U+0000）或不成对的代理项", "pointer": "/name"}
    ]
    assert response.headers["content-language"] == "zh-CN"


# Inputs that look like a candidate to a byte search but hold no unstorable character.
ACCEPTED: list[tuple[str, Callable[[TestClient], Any], Any]] = [
    (
        "escaped-backslash-then-u0000",
        lambda c: c.post("/probe/json", content=b'{"s": "\\\\u0000"}', headers=JSON),
        {"s": "\\u0000"},
    ),
    (
        "surrogate-pair",
        lambda c: c.post("/probe/json", content=b'{"s": "\\ud83d\\ude00"}', headers=JSON),
        {"s": "\U0001f600"},
    ),
    (
        "utf16-without-nul",
        lambda c: c.post("/probe/json", content='{"s": "李雷"}'.encode("utf-16"), headers=JSON),
        {"s": "李雷"},
    ),
    (
        "percent-encoded-percent",
        lambda c: c.get("/probe/items/x?q=%2500"),  # (TestClient decodes a path twice)
        ("x", "%00", None),
    ),
    (
        "binary-body",
        lambda c: c.post(
            "/probe/raw", content=b"\x89PNG\x00\x00", headers={"Content-Type": "image/png"}
        ),
        b"\x89PNG\x00\x00",
    ),
    (
        "plain-basic-credentials",
        lambda c: c.get("/probe/items/x", headers=basic(b"id:secret")),
        ("x", None, None),
    ),
    (
        "form-with-percent-encoded-percent",
        lambda c: c.post("/probe/form", content=b"a=%2500", headers=FORM),
        {"a": "%00"},
    ),
]


@pytest.mark.parametrize(
    ("request_", "got"), [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED]
)
def test_what_only_looks_like_one_reaches_the_handler(
    probe: TestClient, request_: Callable[[TestClient], Any], got: Any
) -> None:
    response = request_(probe)
    assert response.status_code == 200, response.text
    assert seen(probe) == [got]


def test_a_malformed_json_body_without_nul_is_still_malformed_json(probe: TestClient) -> None:
    response = probe.post("/probe/json", content=b'{"s": "\\u0000', headers=JSON)
    assert_problem(response, 400, "malformed-json")


# --- the hub's own routes, on both databases ------------------------------------------------


@pytest.fixture
def office(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> dict[str, str]:
    clock.set(datetime(2026, 10, 13, 2, 0, tzinfo=UTC))
    new = register_client("public-security", ("registry:read", "registry:write"))
    return bearer(access_token(app_client, new))


def test_a_registration_with_nul_in_a_name_is_refused_and_nothing_stored(
    app_client: TestClient, office: dict[str, str], engine: Engine
) -> None:
    response = app_client.post(
        "/registry/v1/registrations", headers=office, json=registration_body(name="王\x00芳")
    )
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"][0]["pointer"] == "/name"
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Registration)).one() == 0
    accepted = app_client.post(
        "/registry/v1/registrations", headers=office, json=registration_body()
    )
    assert accepted.status_code == 201, accepted.text


def test_a_path_id_with_nul_is_refused(app_client: TestClient, office: dict[str, str]) -> None:
    response = app_client.get(f"/registry/v1/permits/{MARK}%00", headers=office)
    assert_problem(response, 422, "validation-failed")
    assert MARK not in response.text


@pytest.mark.parametrize("credentials", [b"unknown\x00:secret", b"%00:secret", b"id:\x00"])
def test_basic_credentials_with_nul_are_refused_at_the_token_endpoint(
    app_client: TestClient, credentials: bytes
) -> None:
    response = app_client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(credentials)
    )
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"] == [{"detail": body["errors"][0]["detail"], "parameter": "authorization"}]


def test_a_form_field_with_nul_is_refused_at_the_token_endpoint(app_client: TestClient) -> None:
    response = app_client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": f"{MARK}\x00"},
    )
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"][0]["parameter"] == "client_id"
    assert MARK not in response.text


# --- the net under the edge: a value the database refuses is a 422, never a 500 -------------


@pytest.fixture
def lookups(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[TestClient]:
    """Routes that pass a caller's value to the database unchecked, as a route that forgot its
    bound would: an integer compared with an INTEGER column, text decoded past the edge."""
    app = create_app(settings, engine=engine, clock=clock)

    @app.get("/lookup/events/{seq}")
    @public
    def event(seq: int, session: DbSession) -> dict[str, bool]:
        return {"found": session.get(PermitEvent, seq) is not None}

    @app.get("/lookup/permits/{encoded}")
    @public
    def permit(encoded: str, session: DbSession) -> dict[str, bool]:
        permit_id = base64.urlsafe_b64decode(encoded).decode()
        query = select(PermitEvent).where(PermitEvent.permit_id == permit_id)
        return {"found": session.exec(query).first() is not None}

    @app.post("/lookup/notes/{text}")
    @public
    def note(text: str, session: DbSession) -> dict[str, bool]:
        session.connection().exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS note (v VARCHAR(8))")
        session.connection().execute(sa.text("INSERT INTO note (v) VALUES (:v)"), {"v": text})
        return {"stored": True}

    with TestClient(app) as client:
        yield client


def test_an_integer_beyond_any_column_is_a_422(lookups: TestClient) -> None:
    """PostgreSQL: integer out of range (SQLSTATE 22003); SQLite: sqlite3's OverflowError."""
    response = lookups.get(f"/lookup/events/{2**63}")
    body = assert_problem(response, 422, "validation-failed")
    assert body["detail"] == "A number in the request is outside the range the hub stores"
    assert body["instance"] == "/lookup/events/{seq}"
    assert lookups.get(f"/lookup/events/{INT_MAX}").json() == {"found": False}


def test_an_integer_beyond_int4_is_a_422_on_postgresql(lookups: TestClient, engine: Engine) -> None:
    response = lookups.get(f"/lookup/events/{INT_MAX + 1}")
    if is_postgresql(engine):
        assert_problem(response, 422, "validation-failed")
    else:  # SQLite's INTEGER holds 64 bits: there is simply no such event
        assert response.json() == {"found": False}


def test_nul_past_the_edge_is_a_422_on_postgresql(lookups: TestClient, engine: Engine) -> None:
    encoded = base64.urlsafe_b64encode(b"a\x00b").decode()
    response = lookups.get(f"/lookup/permits/{encoded}")
    if is_postgresql(engine):  # psycopg will not send it
        body = assert_problem(response, 422, "validation-failed")
        assert body["detail"] == "A value in the request cannot be stored"
    else:
        assert response.json() == {"found": False}


def test_a_text_longer_than_its_column_is_a_422_on_postgresql(
    lookups: TestClient, engine: Engine
) -> None:
    response = lookups.post("/lookup/notes/123456789")
    if is_postgresql(engine):
        body = assert_problem(response, 422, "validation-failed")
        assert body["detail"] == "A text in the request is longer than the hub stores"
    else:  # SQLite does not hold VARCHAR to its length
        assert response.json() == {"stored": True}


# --- what a database error logs --------------------------------------------------------------

PERSONAL = registration_body(
    name="欧阳娜娜", household_address="沈阳市和平区南京街17号", workplace="赤峰隆盛建材厂"
)


@pytest.fixture
def refusing_registrations(engine: Engine) -> Iterator[str]:
    """The registration table refuses every new row, by a real constraint: its name."""
    if is_postgresql(engine):
        # PostgreSQL's DETAIL for this is "Failing row contains (...)": the whole row.
        add = "ALTER TABLE registration ADD CONSTRAINT refuse_rows CHECK (false) NOT VALID"
        drop = "ALTER TABLE registration DROP CONSTRAINT refuse_rows"
    else:
        add = (
            "CREATE TRIGGER refuse_rows BEFORE INSERT ON registration"
            " BEGIN SELECT RAISE(ABORT, 'refuse_rows'); END"
        )
        drop = "DROP TRIGGER refuse_rows"
    with engine.begin() as connection:
        connection.exec_driver_sql(add)
    yield "refuse_rows"
    with engine.begin() as connection:
        connection.exec_driver_sql(drop)


def test_a_database_error_logs_no_personal_data(
    app_client: TestClient,
    office: dict[str, str],
    refusing_registrations: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The statement fails after the edge let it through; everything logged on the way, the
    engine's own statement log included, is free of the row's values."""
    caplog.set_level(logging.INFO)
    response = TestClient(app_client.app, raise_server_exceptions=False).post(
        "/registry/v1/registrations", headers=office, json=PERSONAL
    )
    assert_problem(response, 500, "internal-error")
    [failure] = [r for r in caplog.records if r.name == "hub.problems"]
    assert failure.getMessage() == "unhandled error on POST /registry/v1/registrations"
    logged = caplog.text
    for value in (*PERSONAL.values(), "Failing row"):
        if len(value) > 3:  # the short codes (region, reason) are not personal
            assert value not in logged, value
    assert "INSERT INTO registration" in logged and refusing_registrations in logged
    assert "SQL parameters hidden" in logged


def test_a_database_error_keeps_its_diagnostics_for_code(engine: Engine) -> None:
    """The message drops the server's sentences (a NOT NULL violation's DETAIL is the row);
    the exception still has every field for code that needs one."""
    insert = sa.text("INSERT INTO registration (id, name) VALUES (:id, :name)")
    with pytest.raises(sa.exc.IntegrityError) as raised, engine.begin() as connection:
        connection.execute(insert, {"id": "r-1", "name": "欧阳娜娜"})
    error = raised.value
    assert "欧阳娜娜" not in str(error) and "r-1" not in str(error)
    assert "INSERT INTO registration" in str(error)
    if is_postgresql(engine):
        assert isinstance(error.orig, psycopg.errors.NotNullViolation)
        assert str(error.orig).startswith("SQLSTATE 23502, table registration, column ")
        assert "欧阳娜娜" in (error.orig.diag.message_detail or "")
