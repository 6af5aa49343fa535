"""Permit registry: registrations, permits, cards, events, outbox, proofs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proof",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("citizen_id_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source_department", sa.String(64), nullable=False),
        sa.Column("source_proof_id", sa.String(128), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_department", "source_proof_id"),
    )
    with op.batch_alter_table("proof", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_proof_citizen_id_hash"), ["citizen_id_hash"], unique=False
        )

    op.create_table(
        "registration",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("jurisdiction", sa.String(64), nullable=False),
        sa.Column("citizen_id_hash", sa.String(64), nullable=False),
        sa.Column("citizen_id_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("sex", sa.String(8), nullable=False),
        sa.Column("ethnicity", sa.String(32), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("household_address", sa.String(256), nullable=False),
        sa.Column("household_region", sa.String(6), nullable=False),
        sa.Column("current_address", sa.String(256), nullable=False),
        sa.Column("current_region", sa.String(6), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("workplace", sa.String(256), nullable=True),
        sa.Column("contact", sa.String(32), nullable=False),
        sa.Column("arrived_on", sa.Date(), nullable=False),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.Column("declaration_due_on", sa.Date(), nullable=True),
        sa.Column("declared_late", sa.Boolean(), nullable=False),
        sa.Column("residence_start", sa.Date(), nullable=False),
        sa.Column("imported_from_temporary_permit", sa.Boolean(), nullable=False),
        sa.Column("declarant_relation", sa.String(32), nullable=True),
        sa.Column("declarant_id_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("registration", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registration_citizen_id_hash"), ["citizen_id_hash"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_registration_jurisdiction"), ["jurisdiction"], unique=False
        )

    op.create_table(
        "permit",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("registration_id", sa.String(36), nullable=False),
        sa.Column("jurisdiction", sa.String(64), nullable=False),
        sa.Column("citizen_id_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("receipt_number", sa.String(32), nullable=False),
        sa.Column("accepted_on", sa.Date(), nullable=False),
        sa.Column("issue_due_on", sa.Date(), nullable=False),
        sa.Column("card_serial", sa.String(32), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("suspended_on", sa.Date(), nullable=True),
        sa.Column("residence_start", sa.Date(), nullable=False),
        sa.Column("cancel_reason", sa.String(32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registration.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("receipt_number"),
    )
    with op.batch_alter_table("permit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_permit_expires_on"), ["expires_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_permit_issue_due_on"), ["issue_due_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_permit_jurisdiction"), ["jurisdiction"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_permit_registration_id"), ["registration_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_permit_state"), ["state"], unique=False)
        batch_op.create_index(
            "uq_permit_live_holder",
            ["citizen_id_hash"],
            unique=True,
            sqlite_where=sa.text("state IN ('accepted', 'valid', 'suspended')"),
            postgresql_where=sa.text("state IN ('accepted', 'valid', 'suspended')"),
        )

    op.create_table(
        "card",
        sa.Column("serial", sa.String(32), nullable=False),
        sa.Column("permit_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("fee", sa.String(16), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["permit_id"],
            ["permit.id"],
        ),
        sa.PrimaryKeyConstraint("serial"),
    )
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_permit_id"), ["permit_id"], unique=False)

    op.create_table(
        "permit_event",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("permit_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state_after", sa.String(16), nullable=False),
        sa.Column("actor_client_id", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["permit_id"],
            ["permit.id"],
        ),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("permit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_permit_event_permit_id"), ["permit_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("permit_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_seq"],
            ["permit_event.seq"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_seq"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_permit_id"), ["permit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_permit_id"))

    op.drop_table("outbox")
    with op.batch_alter_table("permit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_permit_event_permit_id"))

    op.drop_table("permit_event")
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_permit_id"))

    op.drop_table("card")
    with op.batch_alter_table("permit", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_permit_live_holder",
            sqlite_where=sa.text("state IN ('accepted', 'valid', 'suspended')"),
            postgresql_where=sa.text("state IN ('accepted', 'valid', 'suspended')"),
        )
        batch_op.drop_index(batch_op.f("ix_permit_state"))
        batch_op.drop_index(batch_op.f("ix_permit_registration_id"))
        batch_op.drop_index(batch_op.f("ix_permit_jurisdiction"))
        batch_op.drop_index(batch_op.f("ix_permit_issue_due_on"))
        batch_op.drop_index(batch_op.f("ix_permit_expires_on"))

    op.drop_table("permit")
    with op.batch_alter_table("registration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registration_jurisdiction"))
        batch_op.drop_index(batch_op.f("ix_registration_citizen_id_hash"))

    op.drop_table("registration")
    with op.batch_alter_table("proof", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proof_citizen_id_hash"))

    op.drop_table("proof")
