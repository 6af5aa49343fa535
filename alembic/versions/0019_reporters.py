"""Reporter clients: an employer, property manager, agency or landlord reporting hires and
tenants to the acceptance office [CF §6-9], each for one organisation (its unified social
credit code, name and duty); and the reports they file, with the office's worklist.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("oauth_client", sa.Column("organisation_code", sa.String(18), nullable=True))
    op.add_column("oauth_client", sa.Column("organisation_name", sa.String(128), nullable=True))
    op.add_column("oauth_client", sa.Column("reporter_role", sa.String(32), nullable=True))
    op.create_table(
        "third_party_report",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("organisation_code", sa.String(18), nullable=False),
        sa.Column("organisation_name", sa.String(128), nullable=False),
        sa.Column("reporter_role", sa.String(32), nullable=False),
        sa.Column("reporter_client_id", sa.String(128), nullable=False),
        sa.Column("report_id", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("jurisdiction", sa.String(64), nullable=False),
        sa.Column("citizen_id_hash", sa.String(64), nullable=False),
        sa.Column("citizen_id_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("address", sa.String(256), nullable=False),
        sa.Column("region", sa.String(6), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("report_due_on", sa.Date(), nullable=True),
        sa.Column("reported_late", sa.Boolean(), nullable=False),
        sa.Column("declare_by", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("proof_id", sa.String(36), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("organisation_code", "report_id"),
    )
    op.create_index(
        "ix_third_party_report_citizen_id_hash", "third_party_report", ["citizen_id_hash"]
    )
    open_only = sa.text("status = 'open'")
    op.create_index(
        "ix_third_party_report_open",
        "third_party_report",
        ["jurisdiction", "declare_by", "id"],
        sqlite_where=open_only,
        postgresql_where=open_only,
    )


def downgrade() -> None:
    op.drop_table("third_party_report")
    for column in ("reporter_role", "organisation_name", "organisation_code"):
        op.drop_column("oauth_client", column)
