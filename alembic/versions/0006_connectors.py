"""Connectors: the outbox keeps the permit's facts after each event; deliveries per department.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("snapshot", sa.JSON(), nullable=True))
    op.create_table(
        "delivery",
        sa.Column("event_seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("permit_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(64), nullable=True),
        sa.Column("last_error", sa.String(512), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_seq"], ["permit_event.seq"]),
        sa.PrimaryKeyConstraint("event_seq", "department"),
    )
    op.create_index(
        "ix_delivery_holder_order", "delivery", ["department", "permit_id", "event_seq"]
    )
    op.create_index(
        "ix_delivery_pending",
        "delivery",
        ["next_attempt_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index("ix_delivery_status", "delivery", ["status"])


def downgrade() -> None:
    op.drop_index("ix_delivery_status", table_name="delivery")
    op.drop_index("ix_delivery_pending", table_name="delivery")
    op.drop_index("ix_delivery_holder_order", table_name="delivery")
    op.drop_table("delivery")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("snapshot")
