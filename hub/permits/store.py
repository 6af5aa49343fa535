"""Tables of the permit registry.

Citizen ID numbers are never stored in clear: `citizen_id_sealed` holds the AES-GCM ciphertext
and `citizen_id_hash` the keyed hash used for look-ups and for one-person-one-permit.
Every change to a permit writes a `permit_event` row and an `outbox` row in the same
transaction as the new state (DESIGN.md, "event-sourced-lite"); the event's `seq` is the
changes-feed cursor.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

LIVE_STATES = ("accepted", "valid", "suspended")
_LIVE = sa.text("state IN ('accepted', 'valid', 'suspended')")
_VALID = sa.text("state = 'valid'")
_ACCEPTED = sa.text("state = 'accepted'")
_PROVISIONAL = sa.text("declaration_provisional")


class Registration(SQLModel, table=True):
    """A residence registration (居住登记) with the fields of [CF §11].

    `residence_start` is where registered residence counts from (`domain.declaration`). A
    deadline judged on Monday-Friday is `declaration_provisional` until the year's holiday
    schedule is known; then the daily jobs settle it (hub/jobs.py).
    """

    __tablename__ = "registration"
    __table_args__ = (
        # What the settling job looks for: partial, so settled registrations add no entry.
        sa.Index(
            "ix_registration_provisional",
            "id",
            sqlite_where=_PROVISIONAL,
            postgresql_where=_PROVISIONAL,
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    jurisdiction: str = Field(max_length=64, index=True)
    citizen_id_hash: str = Field(max_length=64, index=True)
    citizen_id_sealed: bytes = Field(sa_type=sa.LargeBinary)
    name: str = Field(max_length=64)
    sex: str = Field(max_length=8)
    ethnicity: str = Field(max_length=32)
    birth_date: date
    household_address: str = Field(max_length=256)
    household_region: str = Field(max_length=6)
    current_address: str = Field(max_length=256)
    current_region: str = Field(max_length=6)
    reason: str = Field(max_length=32)
    workplace: str | None = Field(default=None, max_length=256)
    contact: str = Field(max_length=32)
    arrived_on: date
    registered_on: date
    declaration_due_on: date | None = None
    declared_late: bool = False
    # A server default too, so that a row inserted without it (raw SQL in bench/) is settled.
    declaration_provisional: bool = Field(
        default=False, sa_column_kwargs={"server_default": sa.false()}
    )
    residence_start: date
    imported_from_temporary_permit: bool = False
    declarant_relation: str | None = Field(default=None, max_length=32)
    declarant_id_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class Permit(SQLModel, table=True):
    __tablename__ = "permit"
    __table_args__ = (
        # One person, one permit [CF §17]: at most one live permit per citizen ID.
        sa.Index(
            "uq_permit_live_holder",
            "citizen_id_hash",
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
        # What the jobs look for (hub/jobs.py); partial, so a state change that leaves the
        # state adds no entry (see migration 0004).
        sa.Index(
            "ix_permit_valid_expiry",
            "expires_on",
            "id",
            sqlite_where=_VALID,
            postgresql_where=_VALID,
        ),
        sa.Index(
            "ix_permit_accepted_due",
            "issue_due_on",
            sqlite_where=_ACCEPTED,
            postgresql_where=_ACCEPTED,
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    registration_id: str = Field(foreign_key="registration.id", max_length=36, index=True)
    jurisdiction: str = Field(max_length=64)
    citizen_id_hash: str = Field(max_length=64)
    state: str = Field(max_length=16)
    receipt_number: str = Field(max_length=32, unique=True)
    accepted_on: date
    issue_due_on: date
    card_serial: str | None = Field(default=None, max_length=32)
    valid_from: date | None = None
    expires_on: date | None = None
    suspended_on: date | None = None
    residence_start: date
    cancel_reason: str | None = Field(default=None, max_length=32)
    version: int = 1
    updated_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class PermitEvent(SQLModel, table=True):
    __tablename__ = "permit_event"

    seq: int | None = Field(default=None, primary_key=True)
    permit_id: str = Field(foreign_key="permit.id", max_length=36, index=True)
    type: str = Field(max_length=32)
    payload: dict[str, Any] = Field(sa_type=sa.JSON)
    state_after: str = Field(max_length=16)
    actor_client_id: str = Field(max_length=128)
    at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class Outbox(SQLModel, table=True):
    """Committed events awaiting publication to the departments (connectors claim them)."""

    __tablename__ = "outbox"

    event_seq: int = Field(
        foreign_key="permit_event.seq", primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    permit_id: str = Field(max_length=36)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    published_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    # The permit's facts after the event (hub.permits.outbox).
    snapshot: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class Proof(SQLModel, table=True):
    """A condition on file with its competent department ("record on file" [NB]).

    Staff record proofs now; department connectors fill the same table later.
    """

    __tablename__ = "proof"
    __table_args__ = (sa.UniqueConstraint("source_department", "source_proof_id"),)

    id: str = Field(primary_key=True, max_length=36)
    citizen_id_hash: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=32)
    source_department: str = Field(max_length=64)
    source_proof_id: str = Field(max_length=128)
    valid_from: date
    valid_to: date | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    recorded_by: str = Field(max_length=128)
    recorded_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
