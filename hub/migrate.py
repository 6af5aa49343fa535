"""Run the Alembic migrations from code, so `hub db upgrade` works from any directory."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command

SCRIPT_LOCATION = Path(__file__).resolve().parent.parent / "alembic"


def upgrade(database_url: str, revision: str = "head") -> None:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    command.upgrade(config, revision)
