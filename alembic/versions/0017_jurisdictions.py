"""The jurisdictions an acceptance office serves: a client or a member of staff finds permits
only there (space-separated jurisdiction codes; none, nothing).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("oauth_client", "staff_account"):
        op.add_column(
            table, sa.Column("jurisdictions", sa.String(512), nullable=False, server_default="")
        )


def downgrade() -> None:
    for table in ("oauth_client", "staff_account"):
        op.drop_column(table, "jurisdictions")
