"""One master secret per database.

Everything the hub keys (audit MACs, subject hashes, client-secret hashes, the encryption of its
signing and card-issuing keys) is keyed by the master secret of the host that first ran
`hub db upgrade`. A second host that minted a secret of its own would misread all of it and
key what it writes differently. So the database keeps a check value of its secret
(Keyring.check_value, never the secret) and a process compares its own with it before it
writes anything.

A database made before there were check values gets one from the first process with a key,
provided its audit log agrees: its oldest or newest entry verifies under that key (or there is
none), so a wrong key cannot claim a database that already holds keyed records.
"""

from __future__ import annotations

import hmac

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, Session, SQLModel, col, select

from hub.audit import AUDIT_LOG, AuditEntry, AuditLog
from hub.db import unit_of_work
from hub.keyring import Keyring, secret_source
from hub.settings import ConfigError, Settings


class MasterKeyCheck(SQLModel, table=True):
    """The check value of the database's master secret (one row, written once)."""

    __tablename__ = "master_key_check"

    id: int = Field(default=1, primary_key=True)
    check_value: str = Field(max_length=64)


MASTER_KEY_CHECK: sa.Table = MasterKeyCheck.__table__  # type: ignore[attr-defined]
_CLAIM = sa.text(
    "INSERT INTO master_key_check (id, check_value) VALUES (1, :check_value) ON CONFLICT DO NOTHING"
)


class ForeignDatabase(ConfigError):
    """The database belongs to another master secret than this process's (or to one this
    process does not have)."""


def foreign_database(engine: Engine, settings: Settings, *, have_secret: bool) -> ForeignDatabase:
    """The one sentence that says whose the database is and how to bring its secret here."""
    url = engine.url.render_as_string(hide_password=True)
    mine = f"than this host's ({secret_source(settings)})" if have_secret else "this host lacks"
    return ForeignDatabase(
        f"the database {url} belongs to another master secret {mine}: copy the key file"
        " (var/hub.key) of the host that first ran `hub db upgrade` against it to"
        f" {settings.secret_key_file}, or set HUB_SECRET_KEY to that host's secret"
    )


def owned(engine: Engine) -> bool:
    """Some master secret keys this database already: it has a check value, or audit entries
    written before there were check values. Read only: `hub db upgrade` asks before it may
    create a key file."""
    with engine.connect() as connection:
        return any(
            _has_table(connection, table.name)
            and connection.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first()
            is not None
            for table in (MASTER_KEY_CHECK, AUDIT_LOG)
        )


def check_master_key(engine: Engine, keyring: Keyring, audit: AuditLog, settings: Settings) -> None:
    """Raise ForeignDatabase unless `keyring` holds the database's master secret; record its
    check value first when the database has none yet. In a transaction of its own, rolled
    back on refusal: a refused process writes nothing. On a schema from before check values
    (`hub db upgrade` checks before it migrates) only the audit log is asked."""
    mine = keyring.check_value()
    with unit_of_work(engine) as session:
        connection = session.connection()
        can_record = _has_table(connection, MASTER_KEY_CHECK.name)
        stored = session.get(MasterKeyCheck, 1) if can_record else None
        if stored is None:
            if not _audit_agrees(session, audit):
                raise foreign_database(engine, settings, have_secret=True)
            if not can_record:
                return
            session.execute(_CLAIM, {"check_value": mine})  # a racing process may win
            stored = session.get(MasterKeyCheck, 1)
            assert stored is not None  # inserted now, or by the winner of the race
        if not hmac.compare_digest(stored.check_value, mine):
            raise foreign_database(engine, settings, have_secret=True)


def _has_table(connection: Connection, name: str) -> bool:
    return sa.inspect(connection).has_table(name)


def _audit_agrees(session: Session, audit: AuditLog) -> bool:
    """The audit log, if it has entries, was written under `audit`'s key: its oldest or its
    newest entry verifies (one tampered end does not disown the database)."""
    if not _has_table(session.connection(), AUDIT_LOG.name):
        return True
    seq = col(AuditEntry.seq)
    ends = select(AuditEntry).where(
        sa.or_(
            seq == sa.select(sa.func.min(seq)).scalar_subquery(),
            seq == sa.select(sa.func.max(seq)).scalar_subquery(),
        )
    )
    entries = session.exec(ends).all()
    return not entries or any(audit.wrote(entry) for entry in entries)
