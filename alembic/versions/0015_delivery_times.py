"""Deliveries by the time they were delivered: the console's deliveries-per-minute chart reads
the last hour without scanning every delivery ever made.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_delivery_delivered_at", "delivery", ["delivered_at"])


def downgrade() -> None:
    op.drop_index("ix_delivery_delivered_at", table_name="delivery")
