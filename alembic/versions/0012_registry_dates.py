"""Registry dates: provisional declaration deadlines and registered residence.

A registration whose declaration deadline ran into a year without a known holiday schedule is
marked provisional, and a partial index lets the daily job find those to settle once the
schedule is known. Rows stored before this revision keep what was computed for them and are
not marked.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVISIONAL = sa.text("declaration_provisional")


def upgrade() -> None:
    with op.batch_alter_table("registration", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "declaration_provisional",
                sa.Boolean(),
                server_default=sa.false(),
                nullable=False,
            )
        )
        batch_op.create_index(
            "ix_registration_provisional",
            ["id"],
            sqlite_where=PROVISIONAL,
            postgresql_where=PROVISIONAL,
        )


def downgrade() -> None:
    with op.batch_alter_table("registration", schema=None) as batch_op:
        batch_op.drop_index("ix_registration_provisional")
        batch_op.drop_column("declaration_provisional")
