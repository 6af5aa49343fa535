"""The used challenges by expiry alone: the purge takes the oldest few without reading the table
(hub.verification.store.PURGE_AT_ONCE). Without it, each purge read every used challenge
kept, and deleted all that had aged out in one go: a tap's transaction that stalled the
worker for a hundred milliseconds and more.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_verification_challenge_expires_at", "verification_challenge", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_verification_challenge_expires_at", table_name="verification_challenge")
