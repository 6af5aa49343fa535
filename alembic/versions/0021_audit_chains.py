"""The audit log in several chains, each with its own head (hub.audit): every row gets its
chain and its position in it. The log as it stands becomes chain 1, position = seq, so every
MAC already written still holds; `seq` becomes the database's to assign (rowid on SQLite, a
sequence on PostgreSQL), ordering entries across chains. More chains' heads are opened by
the hub (settings.audit_chains), which has the key their starting hashes need.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("chain", sa.SmallInteger(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("position", sa.BigInteger(), nullable=True))
    op.execute("UPDATE audit_log SET position = seq")
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("position", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("chain", existing_type=sa.SmallInteger(), server_default=None)
    op.create_index("ux_audit_log_chain_position", "audit_log", ["chain", "position"], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE audit_log_seq_seq OWNED BY audit_log.seq")
        op.execute(
            "SELECT setval('audit_log_seq_seq', COALESCE(MAX(seq), 0) + 1, false) FROM audit_log"
        )
        op.execute(
            "ALTER TABLE audit_log ALTER COLUMN seq SET DEFAULT nextval('audit_log_seq_seq')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_log ALTER COLUMN seq DROP DEFAULT")
        op.execute("DROP SEQUENCE audit_log_seq_seq")
    op.execute("DELETE FROM audit_head WHERE id <> 1")
    op.drop_index("ux_audit_log_chain_position", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("position")
        batch.drop_column("chain")
