"""Imports every module that defines tables, so SQLModel.metadata is complete for Alembic."""

from hub import audit
from hub.auth import store

__all__ = ["audit", "store"]
