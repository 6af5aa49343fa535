"""One master secret per database: a hub with another secret does not start and writes
nothing; a database from before check values is claimed only by the secret its audit log was
written with. (The commands: tests/test_cli.py.)"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from hub.app import create_app
from hub.audit import AuditEvent, AuditLog
from hub.clock import FixedClock
from hub.composition import build_hub
from hub.db import unit_of_work
from hub.keycheck import ForeignDatabase, check_master_key
from hub.keyring import Keyring
from hub.settings import ConfigError, Settings
from tests.conftest import TEST_SECRET
from tests.factories import OTHER_SECRET, SENTENCE, rows_of

pytestmark = pytest.mark.new_database  # each test starts the first hub on its database


def stored_check(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        query = sa.text("SELECT check_value FROM master_key_check")
        return list(connection.execute(query).scalars())


def with_secret(settings: Settings, secret: str) -> Settings:
    return settings.model_copy(update={"secret_key": secret})


def start(settings: Settings, engine: Engine, clock: FixedClock) -> None:
    """Start a hub (create_app's lifespan) and stop it again."""
    with TestClient(create_app(settings, engine=engine, clock=clock)) as client:
        assert client.get("/healthz").status_code == 200


def test_a_hub_with_another_secret_does_not_start(
    settings: Settings, engine: Engine, clock: FixedClock
) -> None:
    assert stored_check(engine) == []
    start(settings, engine, clock)
    assert stored_check(engine) == [Keyring(TEST_SECRET.encode()).check_value()]
    before = rows_of(engine)

    with pytest.raises(ForeignDatabase) as refused:
        start(with_secret(settings, OTHER_SECRET), engine, clock)

    assert isinstance(refused.value, ConfigError)  # the CLI's one sentence and exit 2
    assert SENTENCE in str(refused.value)
    assert "\n" not in str(refused.value)
    assert OTHER_SECRET not in str(refused.value) and TEST_SECRET not in str(refused.value)
    assert rows_of(engine) == before
    start(settings, engine, clock)  # the database's own secret still starts


def test_the_check_value_gives_the_secret_away_to_no_purpose() -> None:
    keyring = Keyring(TEST_SECRET.encode())
    value = keyring.check_value()
    assert len(value) == 64 and value == keyring.check_value()
    assert value != Keyring(OTHER_SECRET.encode()).check_value()
    assert TEST_SECRET not in value
    purposes = ("audit-chain", "subject-hash", "client-secret", "signing-key-encryption")
    assert all(keyring.derive(purpose).hex() != value for purpose in purposes)


def _audit_rows_from_before_check_values(engine: Engine, secret: str) -> None:
    log = AuditLog(Keyring(secret.encode()).derive("audit-chain"))
    moment = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with unit_of_work(engine) as session:
        for number in range(3):
            log.record(session, AuditEvent("hub", "schema.register", str(number)), moment)


def test_a_database_from_before_check_values_is_claimed_only_by_its_own_secret(
    settings: Settings, engine: Engine, clock: FixedClock
) -> None:
    _audit_rows_from_before_check_values(engine, TEST_SECRET)
    before = rows_of(engine)

    with pytest.raises(ForeignDatabase, match="another master secret"):
        start(with_secret(settings, OTHER_SECRET), engine, clock)
    assert rows_of(engine) == before  # not claimed by the wrong secret

    start(settings, engine, clock)
    assert stored_check(engine) == [Keyring(TEST_SECRET.encode()).check_value()]


def test_one_tampered_end_of_the_audit_log_does_not_disown_the_database(
    settings: Settings, engine: Engine, clock: FixedClock
) -> None:
    _audit_rows_from_before_check_values(engine, TEST_SECRET)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_log SET outcome = 'x' WHERE seq = 3"))
    start(settings, engine, clock)
    assert stored_check(engine) == [Keyring(TEST_SECRET.encode()).check_value()]


@pytest.mark.parametrize("secrets", [(TEST_SECRET, TEST_SECRET), (TEST_SECRET, OTHER_SECRET)])
def test_processes_claiming_a_new_database_at_once_agree_on_one_secret(
    settings: Settings, engine: Engine, secrets: tuple[str, str]
) -> None:
    """Two hubs starting together on an empty database: one check value is recorded, and a
    hub with another secret than the winner's is refused."""
    hubs = [build_hub(with_secret(settings, secret), engine=engine) for secret in secrets]
    barrier = threading.Barrier(len(hubs))
    outcomes: list[str] = []

    def claim(keyring: Keyring, audit: AuditLog, settings: Settings) -> None:
        barrier.wait(timeout=30)
        try:
            check_master_key(engine, keyring, audit, settings)
            outcomes.append(keyring.check_value())
        except ForeignDatabase:
            outcomes.append("refused")

    threads = [
        threading.Thread(target=claim, args=(hub.keyring, hub.audit, hub.settings)) for hub in hubs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    (recorded,) = stored_check(engine)
    expected = ["refused", recorded] if secrets[0] != secrets[1] else [recorded, recorded]
    assert sorted(outcomes) == sorted(expected)
