"""Indexes shaped by the jobs: partial permit indexes; the outbox keyed by its event.

A permit's state change is never a HOT update (state is indexed), so every index on the table
takes a new entry for every change: the daily sweep over a backlog paid for eight. The jobs
only ever look for valid permits by expiry and accepted ones by issuance deadline, so two
partial indexes serve them, and a suspended or issued permit leaves them instead of adding an
entry. The whole-column indexes on state (three values) and jurisdiction served no query.

The outbox had a surrogate id beside a unique event_seq, and an index on permit_id no query
used: three index entries per event where one (event_seq as the key) does. The table is
rebuilt with its rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALID = sa.text("state = 'valid'")
ACCEPTED = sa.text("state = 'accepted'")
WHOLE_COLUMN = ("expires_on", "issue_due_on", "jurisdiction", "state")
OUTBOX_COLUMNS = "event_seq, permit_id, created_at, published_at"


def upgrade() -> None:
    with op.batch_alter_table("permit", schema=None) as batch_op:
        for column in WHOLE_COLUMN:
            batch_op.drop_index(batch_op.f(f"ix_permit_{column}"))
        batch_op.create_index(
            "ix_permit_valid_expiry",
            ["expires_on", "id"],
            sqlite_where=VALID,
            postgresql_where=VALID,
        )
        batch_op.create_index(
            "ix_permit_accepted_due",
            ["issue_due_on"],
            sqlite_where=ACCEPTED,
            postgresql_where=ACCEPTED,
        )
    op.create_table(
        "outbox_keyed",
        sa.Column("event_seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("permit_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_seq"], ["permit_event.seq"]),
        sa.PrimaryKeyConstraint("event_seq"),
    )
    op.execute(f"INSERT INTO outbox_keyed ({OUTBOX_COLUMNS}) SELECT {OUTBOX_COLUMNS} FROM outbox")
    op.drop_index("ix_outbox_permit_id", table_name="outbox")
    op.drop_table("outbox")
    op.rename_table("outbox_keyed", "outbox")


def downgrade() -> None:
    op.create_table(
        "outbox_numbered",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("permit_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_seq"], ["permit_event.seq"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_seq"),
    )
    op.execute(
        f"INSERT INTO outbox_numbered ({OUTBOX_COLUMNS}) SELECT {OUTBOX_COLUMNS} FROM outbox"
        " ORDER BY event_seq"
    )
    op.drop_table("outbox")
    op.rename_table("outbox_numbered", "outbox")
    op.create_index("ix_outbox_permit_id", "outbox", ["permit_id"], unique=False)
    with op.batch_alter_table("permit", schema=None) as batch_op:
        batch_op.drop_index("ix_permit_accepted_due")
        batch_op.drop_index("ix_permit_valid_expiry")
        for column in WHOLE_COLUMN:
            batch_op.create_index(batch_op.f(f"ix_permit_{column}"), [column], unique=False)
