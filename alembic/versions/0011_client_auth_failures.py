"""Failed client authentications, counted per client id and source address to slow guessing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_auth_failure",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_ends", sa.BigInteger(), nullable=False, index=True),
        sa.Column("blocked_until", sa.BigInteger(), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("client_auth_failure")
