"""Schema registry: subjects, immutable versions, the default mode, data-sharing agreements.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schema_subject",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("compatibility", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "schema_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("compatibility", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO schema_settings (id, compatibility) VALUES (1, 'BACKWARD')")
    op.create_table(
        "schema_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("deprecated_uses", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subject"], ["schema_subject.name"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subject", "fingerprint"),
        sa.UniqueConstraint("subject", "version"),
    )
    op.create_table(
        "agreement",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(256), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("allowed_fields", sa.JSON(), nullable=False),
        sa.Column("legal_basis", sa.String(256), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("changed_by", sa.String(128), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subject"], ["schema_subject.name"]),
        sa.PrimaryKeyConstraint("id", "version"),
    )
    with op.batch_alter_table("agreement", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agreement_department"), ["department"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("agreement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agreement_department"))
    op.drop_table("agreement")
    op.drop_table("schema_version")
    op.drop_table("schema_settings")
    op.drop_table("schema_subject")
