"""Signed checkpoints of the audit chains (hub.checkpoints), and how far each department has
acknowledged them (hub.connectors.checkpoints).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
    )
    op.create_table(
        "audit_checkpoint_sent",
        sa.Column("department", sa.String(64), primary_key=True),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(512), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoint_sent")
    op.drop_table("audit_checkpoint")
