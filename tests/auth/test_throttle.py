"""Failed client authentications are counted per client id and per source address, in every
hub process alike (through the database): at the limit, a 429 with Retry-After until the
window that the first failure opened has passed, on the hub's clock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.app import create_app
from hub.audit import AuditEntry
from hub.clock import FixedClock
from hub.composition import Hub
from hub.settings import Settings
from tests.auth.helpers import request_token
from tests.conftest import RegisterClient
from tests.factories import SHIPPED_ACCESS_POLICY

WINDOW, PER_CLIENT, PER_ADDRESS = 60, 3, 5
FORM = {"grant_type": "client_credentials"}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The shipped policy with small limits, so a test reaches them in a few requests."""
    text = SHIPPED_ACCESS_POLICY.read_text(encoding="utf-8")
    for name, value in (
        ("window_seconds", WINDOW),
        ("per_client", PER_CLIENT),
        ("per_address", PER_ADDRESS),
    ):
        text = re.sub(rf"(?m)^{name} = \d+$", f"{name} = {value}", text)
    path = tmp_path / "access.toml"
    path.write_text(text, encoding="utf-8")
    return settings.model_copy(update={"access_file": path})


def from_address(app_client: TestClient, address: str) -> TestClient:
    return TestClient(app_client.app, client=(address, 50000))


def _fail(client: TestClient, client_id: str, path: str = "/oauth/token") -> None:
    answer = client.post(path, data={**FORM, "token": "t"}, auth=(client_id, "guess"))
    assert answer.status_code == 401, answer.text


def _assert_throttled(answer: Response, retry_after: int) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["retry-after"] == str(retry_after)
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "/problems/client-authentication-throttled"
    assert f"{retry_after} seconds" in problem["detail"]


def test_a_client_id_is_throttled_from_every_address_until_the_window_ends(
    app_client: TestClient, register_client: RegisterClient, hub: Hub, clock: FixedClock
) -> None:
    new = register_client()
    for n, path in enumerate(("/oauth/token", "/oauth/introspect", "/oauth/revoke"), start=1):
        _fail(from_address(app_client, f"192.0.2.{n}"), new.client_id, path)
        clock.advance(timedelta(seconds=5))
    elsewhere = from_address(app_client, "198.51.100.7")
    _assert_throttled(request_token(elsewhere, new), WINDOW - 15)  # even with its secret

    clock.advance(timedelta(seconds=WINDOW - 16))
    _assert_throttled(request_token(elsewhere, new), 1)
    clock.advance(timedelta(seconds=1))
    assert request_token(elsewhere, new).status_code == 200
    with Session(hub.engine) as session:  # refusals by the throttle are not written anywhere
        query = select(AuditEntry).where(col(AuditEntry.action) == "client.authenticate")
        assert len(session.exec(query).all()) == PER_CLIENT


def test_an_address_is_throttled_for_every_client_id(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> None:
    new = register_client()
    prober = from_address(app_client, "203.0.113.9")
    for n in range(PER_ADDRESS):
        _fail(prober, f"made-up-{n}")
    _assert_throttled(request_token(prober, new), WINDOW)
    assert request_token(from_address(app_client, "203.0.113.10"), new).status_code == 200
    clock.advance(timedelta(seconds=WINDOW))
    assert request_token(prober, new).status_code == 200


def test_throttling_does_not_tell_whether_a_client_id_exists(
    app_client: TestClient, register_client: RegisterClient
) -> None:
    new = register_client()
    answers = []
    for n, client_id in enumerate((new.client_id, "public-security-000000000000")):
        for _ in range(PER_CLIENT):
            _fail(from_address(app_client, f"192.0.2.{n}"), client_id)
        throttled = from_address(app_client, "198.51.100.1").post(
            "/oauth/token", data=FORM, auth=(client_id, "guess")
        )
        _assert_throttled(throttled, WINDOW)
        answers.append(throttled.content)
    assert answers[0] == answers[1]


def test_a_window_that_has_passed_starts_the_count_again(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> None:
    new = register_client()
    for _ in range(PER_CLIENT - 1):
        _fail(app_client, new.client_id)
    clock.advance(timedelta(seconds=WINDOW))
    for _ in range(PER_CLIENT - 1):
        _fail(app_client, new.client_id)
    assert request_token(app_client, new).status_code == 200  # the first two are forgotten
    clock.advance(timedelta(seconds=10))
    _fail(app_client, new.client_id)  # the third of the new window
    _assert_throttled(request_token(app_client, new), WINDOW - 10)


@pytest.fixture
def other_process(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[TestClient]:
    """A second hub process: its own app and in-memory snapshot on the same database."""
    with TestClient(create_app(settings, engine=engine, clock=clock)) as client:
        yield client


def test_failures_in_several_processes_add_up_and_blocks_reach_them_all(
    app_client: TestClient, register_client: RegisterClient, hub: Hub, other_process: TestClient
) -> None:
    new = register_client()
    for _ in range(PER_CLIENT - 1):
        _fail(app_client, new.client_id)
    _fail(other_process, new.client_id)  # the third failure, counted with the first two
    _assert_throttled(request_token(other_process, new), WINDOW)
    # The first process learns of the block with its snapshot's refresh, as it would within
    # revocation_refresh_seconds while serving.
    hub.auth_state.refresh()
    _assert_throttled(request_token(app_client, new), WINDOW)
