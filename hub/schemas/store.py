"""Tables of the schema registry and of data-sharing agreements.

A version row is written once and only its state and its count of uses while DEPRECATED change
afterwards. Agreements are versioned the same way: a change writes a new row (id, version+1),
so what a department was allowed to receive on any past day can be read back.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select


class SchemaSubject(SQLModel, table=True):
    __tablename__ = "schema_subject"

    name: str = Field(primary_key=True, max_length=128)
    compatibility: str | None = Field(default=None, max_length=32)  # None: the global default
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    __table_args__ = (
        sa.UniqueConstraint("subject", "version"),
        sa.UniqueConstraint("subject", "fingerprint"),
    )

    id: int | None = Field(default=None, primary_key=True)  # the global id
    subject: str = Field(foreign_key="schema_subject.name", max_length=128)
    version: int
    definition: dict[str, Any] = Field(sa_type=sa.JSON)
    fingerprint: str = Field(max_length=64)
    state: str = Field(max_length=16)
    deprecated_uses: int = 0
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    state_changed_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class SchemaSettings(SQLModel, table=True):
    """One row: the registry-wide default compatibility mode."""

    __tablename__ = "schema_settings"

    id: int = Field(default=1, primary_key=True)
    compatibility: str = Field(max_length=32)


class Agreement(SQLModel, table=True):
    __tablename__ = "agreement"

    id: str = Field(primary_key=True, max_length=36)
    version: int = Field(primary_key=True)
    department: str = Field(max_length=64, index=True)
    purpose: str = Field(max_length=256)
    subject: str = Field(foreign_key="schema_subject.name", max_length=128)
    allowed_fields: list[str] = Field(sa_type=sa.JSON)
    legal_basis: str = Field(max_length=256)
    valid_from: date
    valid_to: date | None = None
    status: str = Field(max_length=16)
    changed_by: str = Field(max_length=128)
    changed_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


def current_agreements(
    session: Session, *, department: str | None = None, subject: str | None = None
) -> list[Agreement]:
    """The latest version of every agreement (of one department, on one subject)."""
    newest = (
        select(col(Agreement.id), sa.func.max(Agreement.version).label("version"))
        .group_by(col(Agreement.id))
        .subquery()
    )
    query = select(Agreement).join(
        newest,
        sa.and_(col(Agreement.id) == newest.c.id, col(Agreement.version) == newest.c.version),
    )
    if department is not None:
        query = query.where(col(Agreement.department) == department)
    if subject is not None:
        query = query.where(col(Agreement.subject) == subject)
    return list(session.exec(query.order_by(col(Agreement.department), col(Agreement.id))).all())
