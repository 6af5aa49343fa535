"""Run the Alembic migrations from code, so `hub db upgrade` works from any directory."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent.parent / "alembic"


def _config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    return config


def head_revision() -> str | None:
    """The newest migration this code carries (what a database must be at to be served)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config("")).get_current_head()


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(_config(database_url), revision)
