"""Monthly partitions on PostgreSQL (hub.partitions, migration 0023): months made ahead, rows
a default partition held moved into their month when it is made, two processes making the
same month at once, and a database with rows upgraded to partitions and back unchanged."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub import partitions
from hub.audit import Actor
from hub.clock import FixedClock
from hub.composition import Hub
from hub.db import make_engine, unit_of_work
from hub.migrate import downgrade, upgrade
from hub.partitions import Month
from tests.conftest import POSTGRES_ADMIN_URL

LATER = datetime(2031, 5, 10, 3, tzinfo=UTC)


def _homes(engine: Engine, table: str) -> set[str]:
    """Where a table's rows are: its partitions' names (the table's own on SQLite)."""
    with engine.connect() as connection:
        return (
            set(
                connection.execute(
                    sa.text(f"SELECT DISTINCT tableoid::regclass::text FROM {table}")
                )
                .scalars()
                .all()
            )
            if partitions.partitioned(engine)
            else {table}
        )


def test_a_month_made_takes_its_rows_from_the_default_and_the_chains_still_hold(
    hub: Hub, clock: FixedClock
) -> None:
    clock.set(LATER)  # no partition of 2031 yet: these land in the default partition
    with unit_of_work(hub.engine) as session:
        for n in range(5):
            hub.audit.record(session, Actor("t", "health").did("x", str(n), f"h{n}", "p"), LATER)
    postgresql = partitions.partitioned(hub.engine)
    assert "audit_log_default" in _homes(hub.engine, "audit_log") or not postgresql

    created = partitions.ensure(hub.engine, LATER, ahead=1)

    if postgresql:
        assert set(created) == {
            Month(2031, month).partition(table)
            for table in partitions.PARTITIONED
            for month in (5, 6)
        }
        with hub.engine.connect() as connection:
            moved = connection.execute(
                sa.text("SELECT count(*) FROM audit_log_p203105")
            ).scalar_one()
        assert moved == 5
    else:
        assert created == []
    assert partitions.ensure(hub.engine, LATER, ahead=1) == []  # made once
    with Session(hub.engine) as session:
        assert hub.audit.verify(session).intact


def test_two_processes_making_the_same_months_make_each_once(hub: Hub) -> None:
    made: list[list[str]] = []
    engines = [make_engine(hub.engine.url.render_as_string(hide_password=False)) for _ in "ab"]
    start = threading.Barrier(2)

    def make(engine: Engine) -> None:
        start.wait()
        made.append(partitions.ensure(engine, datetime(2032, 2, 1, tzinfo=UTC), ahead=2))

    threads = [threading.Thread(target=make, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    names = [name for each in made for name in each]
    assert len(names) == len(set(names))
    expected = 3 * len(partitions.PARTITIONED) if partitions.partitioned(hub.engine) else 0
    assert len(names) == expected


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = "hub_test_partitioning"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


ROWS = {
    "audit_log": "SELECT count(*), max(seq) FROM audit_log",
    "verification_decision": "SELECT count(*), max(id) FROM verification_decision",
}


def test_a_database_with_rows_is_partitioned_and_back_without_losing_one(
    fresh_postgres: str,
) -> None:
    upgrade(fresh_postgres, "0022")
    engine = make_engine(fresh_postgres)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO audit_log (at, actor_client_id, action, outcome, prev_hash,"
                " row_hash, chain, position) VALUES (:at, 'c', 'a', 'o', 'p', 'r', 1, :n)"
            ),
            [{"at": datetime(2026, month, 3, tzinfo=UTC), "n": month} for month in (1, 2, 3)],
        )
        connection.execute(
            sa.text(
                "INSERT INTO verification_decision (id, client_id, department, service,"
                " decision, reasons, offline, decided_at, recorded_at) VALUES"
                " (:id, 'w', 'health', 's', 'grant', '[]', false, :at, :at)"
            ),
            [{"id": f"d{n}", "at": datetime(2026, 5, n, tzinfo=UTC)} for n in (1, 2)],
        )

    def counts() -> dict[str, tuple[object, ...]]:
        with engine.connect() as connection:
            return {
                table: tuple(connection.execute(sa.text(query)).one())
                for table, query in ROWS.items()
            }

    before = counts()
    upgrade(fresh_postgres)
    assert counts() == before
    assert _homes(engine, "audit_log") == {"audit_log_default"}
    partitions.ensure(engine, datetime(2026, 2, 10, tzinfo=UTC), ahead=0)
    assert _homes(engine, "audit_log") == {"audit_log_default", "audit_log_p202602"}
    with engine.begin() as connection:  # the sequence still numbers after the old rows
        seq = connection.execute(
            sa.text(
                "INSERT INTO audit_log (at, actor_client_id, action, outcome, prev_hash,"
                " row_hash, chain, position) VALUES (now(), 'c', 'a', 'o', 'p', 'r', 1, 4)"
                " RETURNING seq"
            )
        ).scalar_one()
    assert seq == 4

    downgrade(fresh_postgres, "0022")
    assert counts() == {**before, "audit_log": (4, 4)}
    with engine.connect() as connection:
        kind = connection.execute(
            sa.text("SELECT relkind FROM pg_class WHERE relname = 'audit_log'")
        ).scalar_one()
    assert kind == "r"
    engine.dispose()
