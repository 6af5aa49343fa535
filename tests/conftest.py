"""Fixtures: every test that touches storage runs on SQLite AND on PostgreSQL.

PostgreSQL: one database per test session (`hub_test_<pid>`), migrated once; each test starts
from the rows the migrations seeded. SQLite: a migrated template file copied per test.
Set HUB_TEST_BACKENDS=sqlite (or postgresql) to run on one database while developing.
"""

from __future__ import annotations

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
from hub.composition import Hub
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


@pytest.fixture(scope="session")
def postgres_seed(postgres_url: str) -> dict[str, list[dict[str, Any]]]:
    """The rows the migrations put in, restored before each test (a partitioned table's
    rows through the table: its partitions come and go with the tests' clocks)."""
    engine = sa.create_engine(postgres_url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        seed = {
            table.name: [dict(row._mapping) for row in connection.execute(table.select())]
            for table in metadata.sorted_tables
            if table.name != "alembic_version" and not is_partition(table.name)
        }
    engine.dispose()
    return seed


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "hub.db"
    upgrade(f"sqlite:///{path}")
    return path


def _reset_postgres(url: str, seed: dict[str, list[dict[str, Any]]]) -> None:
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine, only=list(seed))
    with engine.begin() as connection:
        names = ", ".join(f'"{name}"' for name in seed)
        connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        for table in metadata.sorted_tables:
            if seed[table.name]:
                connection.execute(table.insert(), seed[table.name])
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    _reset_postgres(url, request.getfixturevalue("postgres_seed"))
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
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        secret_key_file=tmp_path / "unused.key",
        issuer=ISSUER,
        default_language="en",
        scheduler_enabled=False,
        relay_enabled=False,
        agreements_dir=_empty(tmp_path / "agreements"),  # tests seed what they need
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
