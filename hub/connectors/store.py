"""Deliveries: one row per (event, push department), the relay's work list; and one circuit
row per push department, the relays' shared view of whether it answers.

`pending` rows are due at `next_attempt_at`; a relay worker leases a batch (`lease_until`) in a
short transaction, sends without holding any lock, and records the outcome in another, so a
slow department never holds the database and a worker killed mid-delivery only delays its
batch until the lease runs out. `dead` rows are the dead-letter list; replay makes them
pending again. Nothing is deleted: the table is also the record of what went where.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
CLOSED, OPEN = "closed", "open"
_PENDING = sa.text("status = 'pending'")


class Delivery(SQLModel, table=True):
    __tablename__ = "delivery"
    __table_args__ = (
        sa.Index("ix_delivery_holder_order", "department", "permit_id", "event_seq"),
        sa.Index("ix_delivery_delivered_at", "delivered_at"),
        sa.Index(
            "ix_delivery_pending",
            "next_attempt_at",
            sqlite_where=_PENDING,
            postgresql_where=_PENDING,
        ),
    )

    # Its event's seq, with no foreign key: a partitioned permit_event takes none (hub.partitions).
    event_seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    department: str = Field(primary_key=True, max_length=64)
    permit_id: str = Field(max_length=36)
    status: str = Field(max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    last_attempt_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    lease_until: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    leased_by: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=512)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    delivered_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class DepartmentCircuit(SQLModel, table=True):
    """The circuit breaker of one push department (hub.connectors.circuit), in the database
    because every relay process must see the same state. Created by the first recorded send;
    no row means closed and never answered yet."""

    __tablename__ = "department_circuit"

    department: str = Field(primary_key=True, max_length=64)
    state: str = Field(max_length=16)
    failures: int = 0  # rounds in a row in which every send to the department failed
    opened_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    next_probe_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    last_success_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    last_failure_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    last_error: str | None = Field(default=None, max_length=512)
