"""Fixtures: every test that touches storage runs on SQLite AND on PostgreSQL.

PostgreSQL: one database per test session or xdist worker (`hub_test_<pid>`), migrated and
started once; each test starts from the rows the start left. SQLite: a started template file copied
per test. Started: a hub has started on it once (see _prepare); a test marked `new_database`
gets one that is only migrated. Set HUB_TEST_BACKENDS=sqlite (or postgresql) to run on one
database while developing.
"""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from hub.app import create_app
from hub.audit import Actor
from hub.auth.domain import ClientKind
from hub.auth.service import NewClient
from hub.clock import FixedClock
from hub.composition import Hub, build_hub
from hub.db import make_engine, unit_of_work
from hub.migrate import upgrade
from hub.partitions import is_partition
from hub.schemas import agreements
from hub.settings import Settings

BACKENDS = [b for b in os.environ.get("HUB_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
POSTGRES_ADMIN_URL = os.environ.get(
    "HUB_TEST_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/test"
)
TEST_SECRET = "test-master-secret-0123456789abcdef-0123456789"
ISSUER = "http://127.0.0.1:8000"


@pytest.fixture(scope="session", autouse=True)
def frozen_heap() -> Iterator[None]:
    """What the session made to start (pytest, the test modules, the hub's modules) out of
    the collector's sight, once: a starting app freezes a heap no one froze before it
    (hub.app.keep_for_life), and a full collection of this one, on each test's start, cost
    more than the test."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"hub_test_{os.getpid()}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _prepare(url: str, directory: Path) -> None:
    """What a hub's first start writes (its master secret's check value, the first signing
    and issuing keys, the built-in schemas and their audit entries), written once into a
    template: each test's app then starts as a restarted hub does, finding them, instead of
    spending half its start writing them again."""
    engine = make_engine(url)
    build_hub(settings_for(url, directory), engine=engine).prepare()
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_reset(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[bool], None]]:
    """Put the database back, before each test, to the rows the migrations seeded (started
    False) or to those and what a first start adds (True); a partitioned table's rows through
    the table: its partitions come and go with the tests' clocks.

    DELETE, children first, and every sequence set back: for tables of a few rows it is a
    tenth of TRUNCATE's cost, which makes new files for every table and its indexes, and the
    tables are reflected once, not before every test."""
    engine = sa.create_engine(postgres_url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    tables = [
        table
        for table in metadata.sorted_tables
        if table.name != "alembic_version" and not is_partition(table.name)
    ]

    def state() -> tuple[dict[sa.Table, list[dict[str, Any]]], str]:
        """The tables' rows, and a statement that sets every sequence back to where it is."""
        with engine.connect() as connection:
            rows = {
                table: [dict(row) for row in connection.execute(table.select()).mappings()]
                for table in tables
            }
            sequences = connection.exec_driver_sql(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename),"
                " COALESCE(last_value, start_value), last_value IS NOT NULL FROM pg_sequences"
            )
            return rows, "; ".join(
                f"SELECT setval('{name}', {value}, {called})" for name, value, called in sequences
            )

    empty = "; ".join(f'DELETE FROM "{table.name}"' for table in reversed(tables))
    seeds = {False: state()}
    _prepare(postgres_url, tmp_path_factory.mktemp("prepare"))
    seeds[True] = state()

    def reset(started: bool) -> None:
        rows, sequences = seeds[started]
        with engine.begin() as connection:
            connection.exec_driver_sql(empty)
            connection.exec_driver_sql(sequences)
            for table, seed in rows.items():
                if seed:
                    connection.execute(table.insert(), seed)

    yield reset
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database no hub has started on."""
    path = tmp_path_factory.mktemp("template") / "hub.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def started_sqlite_template(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    directory = tmp_path_factory.mktemp("started")
    path = directory / "hub.db"
    shutil.copy(sqlite_template, path)
    _prepare(f"sqlite:///{path}", directory)
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database a hub has started on (see _prepare), on each backend; in a test marked
    `new_database`, a migrated one no hub has started on yet (a test of the start itself, or
    of the rows a service writes, counted from none)."""
    started = request.node.get_closest_marker("new_database") is None
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        template = "started_sqlite_template" if started else "sqlite_template"
        shutil.copy(request.getfixturevalue(template), path)
        return f"sqlite:///{path}"
    request.getfixturevalue("postgres_reset")(started)
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path)


def settings_for(database_url: str, directory: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        secret_key_file=directory / "unused.key",
        issuer=ISSUER,
        default_language="en",
        scheduler_enabled=False,
        relay_enabled=False,
        agreements_dir=_empty(directory / "agreements"),  # tests seed what they need
    )


def _empty(directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    return directory


@pytest.fixture
def app_client(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine, clock=clock)) as client:
        yield client


@pytest.fixture
def hub(app_client: TestClient) -> Hub:
    return app_client.app.state.hub  # type: ignore[attr-defined, no-any-return]


RegisterClient = Callable[..., NewClient]


@pytest.fixture
def register_client(hub: Hub) -> RegisterClient:
    """Register a client the way `hub clients add` does."""

    def register(
        department: str = "public-security",
        scopes: tuple[str, ...] = ("registry:read",),
        jwks: dict[str, Any] | None = None,
        kind: ClientKind = ClientKind.DEPARTMENT,
        jurisdictions: tuple[str, ...] = (),
    ) -> NewClient:
        return hub.add_client(
            department=department,
            scopes=list(scopes),
            jwks=jwks,
            kind=kind,
            jurisdictions=list(jurisdictions),
        )

    return register


SHIPPED_AGREEMENTS = Path(__file__).resolve().parents[1] / "config" / "agreements"


def seed_shipped_agreements(hub: Hub) -> Hub:
    """The shipped agreements (config/agreements), as a first start seeds them: tests start
    with none (settings.agreements_dir is empty) and add them where they need them."""
    with unit_of_work(hub.engine) as session:
        agreements.seed(
            session,
            hub.schemas,
            hub.audit,
            SHIPPED_AGREEMENTS,
            actor=Actor("hub", "public-security"),
            now=hub.clock.now(),
        )
    return hub
