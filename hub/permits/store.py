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

from hub import bulk

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


REGISTRATIONS: sa.Table = Registration.__table__  # type: ignore[attr-defined]
# Bound as parameters of their own: JSON carries neither bytes nor an exact time.
_REGISTRATION_CONSTANTS = ("citizen_id_sealed", "created_at")
_REGISTRATION_ROW = tuple(
    column.name for column in REGISTRATIONS.c if column.name not in _REGISTRATION_CONSTANTS
)


def registration_insert(dialect: sa.Dialect, registration: Registration) -> bulk.Insert:
    """The INSERT of a new registration, for the audit to send with its entry (AuditLog.record's
    `alongside`): on PostgreSQL the row, the audit row and the head's hash are one statement,
    where the ORM would flush the row in a round trip of its own."""
    row = {name: getattr(registration, name) for name in _REGISTRATION_ROW}
    constants = {name: getattr(registration, name) for name in _REGISTRATION_CONSTANTS}
    return bulk.Insert.of(
        dialect, REGISTRATIONS, [row], constants=constants, parameter="registrations"
    )


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

    # Its event's seq, with no foreign key: a partitioned permit_event takes none (hub.partitions).
    event_seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    permit_id: str = Field(max_length=36)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    published_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    # The permit's facts after the event (hub.permits.outbox).
    snapshot: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    # The W3C trace of the request or job that recorded it: each delivery's traceparent.
    trace_id: str | None = Field(default=None, max_length=32)


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


_OPEN = sa.text("status = 'open'")


class ThirdPartyReport(SQLModel, table=True):
    """A hire or tenancy reported by an employer, property manager, agency or landlord
    [CF §6-9]. Matched to a registration it is a proof on file (`status` on-file); about a
    person with no registration it stays `open` on the office's worklist until they register
    (`registered`). The person's ID is sealed and keyed, as everywhere."""

    __tablename__ = "third_party_report"
    __table_args__ = (
        sa.UniqueConstraint("organisation_code", "report_id"),
        # The worklist: open reports by jurisdiction, the earliest declaration due first.
        sa.Index(
            "ix_third_party_report_open",
            "jurisdiction",
            "declare_by",
            "id",
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=16)  # hire, tenancy
    organisation_code: str = Field(max_length=18)
    organisation_name: str = Field(max_length=128)
    reporter_role: str = Field(max_length=32)
    reporter_client_id: str = Field(max_length=128)
    report_id: str = Field(max_length=128)
    content_hash: str = Field(max_length=64, description="what the reporter sent, for repeats")
    jurisdiction: str = Field(max_length=64)
    citizen_id_hash: str = Field(max_length=64, index=True)
    citizen_id_sealed: bytes = Field(sa_type=sa.LargeBinary)
    name: str = Field(max_length=64)
    address: str = Field(max_length=256)
    region: str = Field(max_length=6)
    occurred_on: date
    report_due_on: date | None = None
    reported_late: bool = False
    declare_by: date | None = None
    status: str = Field(max_length=16)  # on-file, open, registered
    proof_id: str | None = Field(default=None, max_length=36)
    received_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    resolved_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
