"""Alembic owns the schema: the migrations must build exactly what the models declare."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import hub.tables  # noqa: F401  (registers every table)
from hub.db import make_engine
from hub.migrate import downgrade, upgrade
from hub.partitions import include_name


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": include_name}
        )
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_downgrade_to_base_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/roundtrip.db"
    upgrade(url)
    downgrade(url, "base")
    engine = make_engine(url)
    with engine.connect() as connection:
        tables = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'alembic_version'"
        ).all()
    engine.dispose()
    assert tables == []
    upgrade(url)
