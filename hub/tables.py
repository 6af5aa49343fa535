"""Imports every module that defines tables, so SQLModel.metadata is complete for Alembic."""

from hub import audit, checkpoints, keycheck, statistics
from hub.auth import store as auth_store
from hub.card import store as card_store
from hub.connectors import checkpoints as checkpoints_sent
from hub.connectors import store as connectors_store
from hub.permits import store as permits_store
from hub.schemas import store as schemas_store
from hub.verification import store as verification_store

__all__ = [
    "audit",
    "auth_store",
    "card_store",
    "checkpoints",
    "checkpoints_sent",
    "connectors_store",
    "keycheck",
    "permits_store",
    "schemas_store",
    "statistics",
    "verification_store",
]
