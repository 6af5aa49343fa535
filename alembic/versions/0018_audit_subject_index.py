"""Find a holder's audit entries by their keyed hash without reading the whole log (the audit
search by holder, the holder's access report); and the entries the statistics count by time
(refused applications, look-ups, feed pages), in a partial index the other actions add
nothing to.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_log_subject", "audit_log", ["subject", "seq"])
    counted = sa.text("action IN ('application.assess', 'exchange.lookup', 'exchange.feed')")
    op.create_index(
        "ix_audit_log_counted",
        "audit_log",
        ["action", "at"],
        sqlite_where=counted,
        postgresql_where=counted,
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_counted", table_name="audit_log")
    op.drop_index("ix_audit_log_subject", table_name="audit_log")
