"""Engine, sessions and the unit of work.

SQLite is the embedded default and PostgreSQL the production database; both must behave the
same for the code above this module. On SQLite every transaction starts with BEGIN IMMEDIATE:
writers then queue on the busy timeout instead of failing on a lock upgrade, which is what
makes read-then-write sequences (the audit chain, jti replay checks) safe there as they are
with row locks on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

INT_MAX: Final = 2**31 - 1
"""The largest value of an INTEGER column on PostgreSQL (int4): sequence numbers, versions and
ids the hub stores. A path or body integer compared with such a column is bounded by it at the
edge, so an out-of-range number is a 4xx, never a driver error."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One transaction: committed if the block ends normally, rolled back on any exception.

    A request either fully applies or changes nothing.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def aware(moment: datetime) -> datetime:
    """A stored time with its zone: SQLite returns times naive (they are stored in UTC),
    PostgreSQL with theirs."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    return aware(moment).isoformat()


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
