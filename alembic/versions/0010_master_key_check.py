"""A check value of the master secret, so a host with another key stops before writing.

The table starts empty: a migration has no key. The first process with one records its check
value (hub.keycheck), once the audit log, if any, agrees that the key is the database's.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "master_key_check",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("check_value", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("master_key_check")
