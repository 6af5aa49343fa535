"""The outbox row's snapshot of a permit, defined once for both of its writers.

What a holder record published later says of the permit is what was true at its event, so
the outbox row keeps the permit's facts as they were just after it: `permit_snapshot` builds
that object for one permit in Python (every use case through `record_event`),
`snapshot_sql` has the database build the same object for many (the bulk path of jobs,
`perform_claimed`). Both write `SNAPSHOT_FIELDS`; a holder record's `permit` carries
`PERMIT_FIELDS` of it (hub.publishing.records).
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from hub import bulk
from hub.db import json_value
from hub.permits.store import Outbox, Permit

OUTBOX: Final[sa.Table] = Outbox.__table__  # type: ignore[attr-defined]

PERMIT_FIELDS: Final = (
    "id",
    "jurisdiction",
    "state",
    "card_serial",
    "valid_from",
    "expires_on",
    "suspended_on",
    "residence_start",
    "cancel_reason",
)
"""The permit facts a holder record carries."""

SNAPSHOT_FIELDS: Final = (*PERMIT_FIELDS, "version")
"""What the outbox keeps: the facts, and the permit's version (the record's `permit_version`)."""


def permit_snapshot(permit: Permit) -> dict[str, Any]:
    """The snapshot of one permit, JSON-ready."""
    return {name: json_value(getattr(permit, name)) for name in SNAPSHOT_FIELDS}


def snapshot_sql(dialect: Dialect) -> str:
    """The same object built by the database from the `permit` row of a bulk insert's join."""
    return bulk.json_object(dialect, "permit", SNAPSHOT_FIELDS)
