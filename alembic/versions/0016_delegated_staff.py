"""Staff accounts signed in through an OpenID Connect provider: the provider's issuer, so a
delegated sign-in never takes over a local account of the same name.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("staff_account", sa.Column("identity_provider", sa.String(256), nullable=True))


def downgrade() -> None:
    op.drop_column("staff_account", "identity_provider")
