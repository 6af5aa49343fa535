"""Engine, sessions and the unit of work.

SQLite is the embedded default and PostgreSQL the production database; both must behave the
same for the code above this module. On SQLite every transaction starts with BEGIN IMMEDIATE:
writers then queue on the busy timeout instead of failing on a lock upgrade, which is what
makes read-then-write sequences (the audit chain, jti replay checks) safe there as they are
with row locks on PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import WithJsonSchema
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine, ExceptionContext, make_url
from sqlmodel import Session, create_engine

INT_MAX: Final = 2**31 - 1
"""The largest value of an INTEGER column on PostgreSQL (int4): sequence numbers, versions and
ids the hub stores. A path or body integer compared with such a column is bounded by it at the
edge, so an out-of-range number is a 4xx, never a driver error."""


PING_AFTER_IDLE_SECONDS: Final = 1.0


def make_engine(
    url: str, pool_size: int = 10, ping_after: float = PING_AFTER_IDLE_SECONDS, **kwargs: Any
) -> Engine:
    """An engine whose errors never carry the values of a statement.

    Bound parameters hold citizens' names, addresses and sealed ID numbers, and a database
    error ends up in a log with its traceback: SQLAlchemy leaves them out of its messages
    (`hide_parameters`), and PostgreSQL's own sentences are left out too (see
    `_without_server_text`).

    On PostgreSQL the pool keeps `pool_size` connections and opens no more: a unit of work
    beyond them waits for one. With overflow connections, a busy worker (more requests in
    flight than the pool holds) opened and closed a connection for every request past the
    pool, a new server process each time: 4% of a registration's CPU in the worker alone.
    A connection idle for `ping_after` seconds is pinged before use (see `_ping_when_idle`).
    """
    kwargs["hide_parameters"] = True
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_size=pool_size, max_overflow=0, **kwargs)
        event.listen(engine, "handle_error", _without_server_text)
        _ping_when_idle(engine, ping_after)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
    _configure_sqlite(engine)
    return engine


def _ping_when_idle(engine: Engine, after: float) -> None:
    """Check a connection that has been idle `after` seconds before handing it out; a dead one
    (the server restarted, a firewall dropped it overnight) is replaced, unseen by the request.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip in each unit of work,
    when a busy worker takes back a connection it returned milliseconds before. If the server
    goes away under such a worker, the requests it has in flight fail as they would with the
    ping, and the first failure discards every connection the pool held before it.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED)
        if returned is None or time.monotonic() - returned < after:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.DisconnectionError("the database closed an idle connection") from None
            raise


_RETURNED = "returned_at"  # a pooled connection's record: when it last went back to the pool


def _without_server_text(context: ExceptionContext) -> exc.DBAPIError | None:
    """The error PostgreSQL answered a statement with, told by its SQLSTATE and the names it
    concerns (table, column, constraint, type) instead of the server's sentences.

    Those sentences quote data: a constraint's DETAIL is "Failing row contains (...)", the whole
    row with its personal fields; a unique violation's is the key; a message about a bad value
    may quote the value. The exception class still says what happened (CheckViolation,
    NumericValueOutOfRange) and `orig.diag` still holds every field for code that needs them.
    Errors raised before the server answered (a refused connection, a NUL the driver will not
    send) are psycopg's own words, without data, and stay as they are.
    """
    import psycopg  # loaded already by the PostgreSQL engine this is attached to; a command on
    # SQLite does not pay for it

    orig = context.original_exception
    wrapped = context.sqlalchemy_exception
    if not isinstance(orig, psycopg.Error) or orig.pgresult is None:
        return None
    if not isinstance(wrapped, exc.DBAPIError):
        return None
    diag = orig.diag
    names = [
        f"{label} {name}"
        for label, name in (
            ("table", diag.table_name),
            ("column", diag.column_name),
            ("constraint", diag.constraint_name),
            ("type", diag.datatype_name),
        )
        if name
    ]
    orig.args = (", ".join([f"SQLSTATE {orig.sqlstate}", *names]),)
    return type(wrapped)(
        wrapped.statement,
        wrapped.params,
        orig,
        hide_parameters=wrapped.hide_parameters,
        connection_invalidated=wrapped.connection_invalidated,
        code=wrapped.code,
        ismulti=wrapped.ismulti,
    )


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

    event.listen(engine, "handle_error", _integer_overflow_as_data_error)


def _integer_overflow_as_data_error(context: ExceptionContext) -> exc.DataError | None:
    """sqlite3 refuses an integer beyond 64 bits with a bare OverflowError before the statement
    runs; it is the same fault as PostgreSQL's "integer out of range", so it is raised as the
    same DataError and answered the same way (a 422, hub.problems)."""
    orig = context.original_exception
    if not isinstance(orig, OverflowError):
        return None
    return exc.DataError(context.statement, context.parameters, orig, hide_parameters=True)


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


def json_value(value: Any) -> Any:
    """Dates as ISO strings; times always with their zone (SQLite returns them naive, in UTC)."""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


Rfc3339 = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""A field of an answer holding what `rfc3339` wrote: a string, documented as a date-time."""


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
