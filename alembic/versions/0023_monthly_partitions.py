"""Monthly partitions on PostgreSQL for the tables that grow with every request (hub.partitions),
and the counts retention keeps of what it archives (hub.statistics.ArchivedCount).

On PostgreSQL each table becomes a table partitioned by range of its time column, and the
old table, renamed `<table>_default`, becomes its default partition as it stands: nothing is
copied, and its indexes are adopted by the new table's. The primary key gains the time
column (PostgreSQL requires it of a partitioned table), and is built again. The month
partitions are made by the hub (hub.partitions.ensure), which moves a month's rows out of
the default as it does.

On both databases: a partitioned permit_event can no longer be the target of a foreign key
on `seq` alone, so outbox and delivery lose theirs (each row is written in the transaction
that writes its event, or by the fan-out that reads it); and an audit chain's positions,
which no partitioned unique index can hold without the time, are kept unique by the chain's
head (each is taken under its row lock) and checked by every walk.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: (primary key constraint, its columns, the partition column, the sequence it owns)
TABLES = {
    "audit_log": ("audit_log_pkey", "seq", "at", "audit_log_seq_seq"),
    "permit_event": ("permit_event_pkey", "seq", "at", "permit_event_seq_seq"),
    "outbox": ("outbox_keyed_pkey", "event_seq", "created_at", None),
    "delivery": ("delivery_pkey", "event_seq, department", "created_at", None),
    "verification_decision": ("verification_decision_pkey", "id", "decided_at", None),
}
EVENT_FKS = {"outbox": "outbox_keyed_event_seq_fkey", "delivery": "delivery_event_seq_fkey"}
PERMIT_FK = "permit_event_permit_id_fkey"
FK_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "statistics_archived",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("figure", sa.String(32), nullable=False),
        sa.Column("jurisdiction", sa.String(64), nullable=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("dimensions", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_statistics_archived_figure_month", "statistics_archived", ["figure", "month"]
    )
    for table, constraint in EVENT_FKS.items():
        if postgresql:
            op.drop_constraint(constraint, table, type_="foreignkey")
        else:
            with op.batch_alter_table(table, naming_convention=FK_NAMES) as batch:
                batch.drop_constraint(f"fk_{table}_event_seq_permit_event", type_="foreignkey")
    op.drop_index("ux_audit_log_chain_position", table_name="audit_log")
    op.create_index("ix_audit_log_chain_position", "audit_log", ["chain", "position"])
    if postgresql:
        for table in TABLES:
            _partition(table)


def _index_definitions(table: str) -> dict[str, str]:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
            " WHERE indrelid = CAST(:table AS regclass) AND NOT indisprimary"
        ),
        {"table": table},
    )
    return {name: definition for name, definition in rows}


def _partition(table: str) -> None:
    pkey, key, column, sequence = TABLES[table]
    default = f"{table}_default"
    indexes = _index_definitions(table)  # before the rename: they name the table as it is
    op.execute(f"ALTER TABLE {table} RENAME TO {default}")
    # A partition has no key of its own beside its table's (built on it by the attach).
    op.execute(f"ALTER TABLE {default} DROP CONSTRAINT {pkey}")
    for name in indexes:
        op.execute(f"ALTER INDEX {name} RENAME TO {default}_{name}")
    if table == "permit_event":  # the new table's own key replaces it on every partition
        op.execute(f"ALTER TABLE {default} DROP CONSTRAINT {PERMIT_FK}")
    op.execute(
        f"CREATE TABLE {table} (LIKE {default} INCLUDING DEFAULTS) PARTITION BY RANGE ({column})"
    )
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {pkey} PRIMARY KEY ({key}, {column})")
    op.execute(f"ALTER TABLE {table} ATTACH PARTITION {default} DEFAULT")
    for definition in indexes.values():  # each adopts its twin on the default partition
        op.execute(definition)
    if table == "permit_event":
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {PERMIT_FK}"
            " FOREIGN KEY (permit_id) REFERENCES permit (id)"
        )
    if sequence:
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.{key}")


def _unpartition(table: str) -> None:
    """Back to one plain table, every partition's rows copied into it."""
    pkey, key, _column, sequence = TABLES[table]
    indexes = _index_definitions(table)  # the parent's: "ON ONLY" the table
    op.execute(f"ALTER TABLE {table} RENAME TO {table}_partitioned")
    op.execute(f"CREATE TABLE {table} (LIKE {table}_partitioned INCLUDING DEFAULTS)")
    op.execute(f"INSERT INTO {table} SELECT * FROM {table}_partitioned")
    if sequence:
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.{key}")
    op.execute(f"DROP TABLE {table}_partitioned CASCADE")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {pkey} PRIMARY KEY ({key})")
    for definition in indexes.values():
        op.execute(definition.replace(" ON ONLY ", " ON "))
    if table == "permit_event":
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {PERMIT_FK}"
            " FOREIGN KEY (permit_id) REFERENCES permit (id)"
        )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        for table in TABLES:
            _unpartition(table)
    op.drop_index("ix_audit_log_chain_position", table_name="audit_log")
    op.create_index("ux_audit_log_chain_position", "audit_log", ["chain", "position"], unique=True)
    for table, constraint in EVENT_FKS.items():
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(
                constraint if postgresql else f"fk_{table}_event_seq_permit_event",
                "permit_event",
                ["event_seq"],
                ["seq"],
            )
    op.drop_index("ix_statistics_archived_figure_month", table_name="statistics_archived")
    op.drop_table("statistics_archived")
