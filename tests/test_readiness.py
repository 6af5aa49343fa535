"""Readiness (/readyz) on both databases: ready when the schema is at head, the master key is
the database's, the relay keeps up and the scheduler runs; otherwise a 503 naming each check
that failed, and nothing secret said. /healthz stays trivial."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from hub import readiness
from hub.composition import Hub
from hub.db import make_engine, unit_of_work
from hub.keycheck import MasterKeyCheck
from hub.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import STORED_AT, add_deliveries, add_permits


def test_ready_then_not_with_the_failed_checks_named(app_client: TestClient, hub: Hub) -> None:
    assert app_client.get("/healthz").json() == {"status": "ok"}
    ready = app_client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert (body["status"], body["failed"]) == ("ready", [])
    assert list(body["checks"]) == list(readiness.CHECKS)
    assert body["checks"]["relay"]["detail"] == "not run by this process"
    assert ready.headers["cache-control"] == "no-store"

    with unit_of_work(hub.engine) as session:
        session.execute(sa.text("UPDATE alembic_version SET version_num = '0016'"))
        session.get(MasterKeyCheck, 1).check_value = "0" * 64  # type: ignore[union-attr]
    refused = app_client.get("/readyz")
    assert refused.status_code == 503
    assert refused.json()["failed"] == ["database", "master-key"]
    assert "0016" in refused.json()["checks"]["database"]["detail"]
    assert TEST_SECRET not in refused.text and str(hub.engine.url) not in refused.text


def test_the_relay_lag_and_the_scheduler(hub: Hub, settings: Settings) -> None:
    running = settings.model_copy(
        update={"relay_enabled": True, "scheduler_enabled": True, "ready_relay_lag_seconds": 600}
    )
    probe = readiness.Probe(hub.engine, hub.keyring.check_value(), running)
    [permit_id] = add_permits(hub, "valid")
    now = STORED_AT + timedelta(seconds=300)
    found = {c.name: c for c in readiness.check(probe, now, True)}
    assert found["relay"].ok and found["relay"].detail == "nothing pending"
    assert found["scheduler"].ok

    add_deliveries(hub.engine, permit_id, housing="pending")
    found = {c.name: c for c in readiness.check(probe, now, False)}
    assert found["relay"].ok and "300 s" in found["relay"].detail
    assert not found["scheduler"].ok
    late = {c.name: c for c in readiness.check(probe, now + timedelta(hours=1), True)}
    assert not late["relay"].ok and "limit 600 s" in late["relay"].detail


def test_a_database_out_of_reach_fails_what_reads_it(settings: Settings, tmp_path: Path) -> None:
    gone = make_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'hub.db'}")
    probe = readiness.Probe(gone, "x" * 64, settings)
    found = readiness.check(probe, STORED_AT, None)
    assert [c.name for c in found if not c.ok] == ["database", "master-key", "relay"]
    assert all("unreachable" in c.detail for c in found if not c.ok)
