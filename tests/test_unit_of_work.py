"""One unit of work per request: all of a request's writes commit together or not at all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from hub.app import create_app
from hub.audit import AuditEntry, AuditEvent
from hub.auth.guard import public
from hub.clock import FixedClock
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
