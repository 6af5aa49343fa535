"""One unit of work per request: all of a request's writes commit together or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from hub.app import create_app
from hub.audit import AuditEntry, AuditEvent
from hub.auth.guard import public
from hub.clock import FixedClock
from hub.db import make_engine, unit_of_work
from hub.deps import CurrentHub, DbSession
from hub.problems import NOT_FOUND, Problem
from hub.settings import Settings


@pytest.fixture
def writer(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine, clock=clock)

    @app.post("/write/{count}")
    @public
    def write(count: int, fail: bool, session: DbSession, hub: CurrentHub) -> dict[str, int]:
        for _ in range(count):
            event = AuditEvent("tester", "test.write", "done")
            hub.audit.record(session, event, hub.clock.now())
        if fail:
            raise Problem(NOT_FOUND)
        return {"written": count}

    with TestClient(app) as client:
        yield client


def _rows(engine: Engine) -> int:
    """Audit rows the test's requests wrote (the app's start registers the built-in schemas)."""
    with Session(engine) as session:
        actions = session.exec(select(AuditEntry.action)).all()
    return sum(not action.startswith("schema.") for action in actions)


def test_a_successful_request_is_committed_before_the_response(
    writer: TestClient, engine: Engine
) -> None:
    assert writer.post("/write/3", params={"fail": False}).json() == {"written": 3}
    assert _rows(engine) == 3


def test_a_failed_request_leaves_nothing_behind(writer: TestClient, engine: Engine) -> None:
    response = writer.post("/write/3", params={"fail": True})
    assert response.status_code == 404
    assert _rows(engine) == 0
    assert writer.post("/write/1", params={"fail": False}).status_code == 200
    assert _rows(engine) == 1


def _backend_pid(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return int(session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(postgres_url: str, pid: int) -> None:
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    finally:
        admin.dispose()


@contextmanager
def _server_ended_its_connection(postgres_url: str, ping_after: float) -> Iterator[Engine]:
    """An engine whose one pooled connection the server has just ended (a restart, a
    firewall's idle timeout), after `ping_after` is set; yields the engine."""
    engine = make_engine(postgres_url, pool_size=1, ping_after=ping_after)
    try:
        first = _backend_pid(engine)
        _terminate(postgres_url, first)
        yield engine
        assert _backend_pid(engine) != first  # in the end, a new connection either way
    finally:
        engine.dispose()


def test_a_connection_the_server_closed_while_idle_is_replaced_unseen(postgres_url: str) -> None:
    # The connection has been idle longer than `ping_after`, so it is checked before use and
    # the next unit of work gets a new one instead of an error.
    with _server_ended_its_connection(postgres_url, ping_after=0.0) as engine:
        assert _backend_pid(engine) > 0


def test_a_connection_in_use_moments_ago_is_not_pinged(postgres_url: str) -> None:
    # The other side of the bargain: a connection back from its last use less than `ping_after`
    # ago goes out unchecked (no round trip on a busy worker), so a server gone since then shows
    # in that unit of work, and the pool then replaces what it held.
    with _server_ended_its_connection(postgres_url, ping_after=3_600.0) as engine:
        with pytest.raises(sa.exc.OperationalError) as failed:
            _backend_pid(engine)
        assert failed.value.connection_invalidated
