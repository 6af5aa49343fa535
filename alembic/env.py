"""Alembic environment: the database URL comes from the hub's settings, never from alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import hub.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from hub.db import make_engine
from hub.partitions import include_name
from hub.settings import load_settings

config = context.config
url = config.attributes.get("database_url") or load_settings().database_url


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
