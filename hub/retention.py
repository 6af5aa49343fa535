"""Retention: closed months of deliveries and window decisions go to files, then leave the
database.

A province's deliveries and tap decisions run to hundreds of millions of rows a year; what
the exchange needs of them is the last months (the relay's work, a holder's access report).
`archive` writes each month before a given one to `<table>-<YYYY-MM>.jsonl.gz` with a
manifest (rows, SHA-256, time range), counts it into the statistics it feeds
(hub.statistics.roll_up, so assessment figures for archived months do not change), then
drops the month's partition on PostgreSQL (deletes its rows on SQLite) and records the
archive in the audit log. The audit log itself is never archived: its chains, checkpoints
and verification are untouched.

A month of deliveries with any still pending is held back (the relay still owes them), and
said so. On PostgreSQL the month's partition is detached first, in a transaction of its
own: nobody writes to a detached table, so it is written out without holding any lock the
relay or the windows need; only the rows of that month the default partition holds are
read under a lock, briefly. The file is on disk, flushed, before the transaction that drops
the rows commits; a crash between the two leaves the rows in place and a file a rerun
writes again under the next free name, so nothing is ever lost, at worst archived twice.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel

from hub import partitions, statistics
from hub.audit import Actor, AuditLog
from hub.db import unit_of_work
from hub.partitions import Month

ACTION: Final = "retention.archive"
OPERATOR: Final = Actor("hub", "public-security")
ORDER: Final = {
    "delivery": ("created_at", "event_seq", "department"),
    "verification_decision": ("decided_at", "id"),
}
"""Each archived table and the order its rows are written in."""
_BATCH: Final = 10_000


class NotClosed(ValueError):
    """A month that has not ended yet cannot be archived."""


@dataclass(frozen=True)
class Archived:
    """One month of one table archived: its rows, the file (None when it had none) and how
    many of them the statistics count."""

    table: str
    month: Month
    rows: int
    file: Path | None
    counted: int


@dataclass(frozen=True)
class Held:
    """A month of deliveries kept: `pending` of them are still to be made."""

    table: str
    month: Month
    pending: int


class _Pending(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(f"{count} pending")
        self.count = count


def archive(
    engine: Engine,
    audit: AuditLog,
    before: Month,
    directory: Path,
    now: datetime,
    progress: Callable[[Archived | Held], None] = lambda _: None,
) -> list[Archived | Held]:
    """Archive every month before `before` of the deliveries and the window decisions into
    `directory`; `before` may be this month at the latest (the months before it have ended).
    Raises NotClosed for a later one."""
    if before > Month.of(now):
        raise NotClosed(f"{before} has not begun: only months that have ended are archived")
    directory.mkdir(parents=True, exist_ok=True)
    done: list[Archived | Held] = []
    for table in ORDER:
        for month in _months_before(engine, table, before):
            outcome = _archive_month(engine, audit, table, month, directory, now)
            progress(outcome)
            done.append(outcome)
    return done


def _months_before(engine: Engine, table: str, before: Month) -> list[Month]:
    """The months before `before` with rows to archive, or a partition to drop."""
    column = partitions.PARTITIONED[table]
    with engine.connect() as connection:
        found = set()
        if partitions.partitioned(engine):
            found |= {month for month in partitions.existing(connection, table) if month < before}
            found |= {month for month in _detached(connection, table) if month < before}
        rest = _rest(engine, table)
        months = connection.execute(
            sa.select(statistics.china_month(rest.c[column]))
            .where(rest.c[column] < before.start)
            .group_by(sa.literal_column("1"))
        ).scalars()
        found |= {Month.parse(month) for month in months}
    return sorted(found)


def _detached(connection: Connection, table: str) -> list[Month]:
    """Month partitions an interrupted archive detached and did not drop."""
    names = connection.execute(
        sa.text(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND NOT relispartition"
            " AND relname LIKE :prefix"
        ),
        {"prefix": f"{table}_p%"},
    ).scalars()
    return [Month(int(name[-6:-2]), int(name[-2:])) for name in names if name[-6:].isdigit()]


def _archive_month(
    engine: Engine, audit: AuditLog, table: str, month: Month, directory: Path, now: datetime
) -> Archived | Held:
    try:
        detached = _detach(engine, table, month) if partitions.partitioned(engine) else None
    except _Pending as pending:
        return Held(table, month, pending.count)
    path = _free_name(directory, table, month)
    partial = path.with_name(path.name + ".partial")
    try:
        return _write_and_drop(engine, audit, table, month, detached, partial, path, now)
    except _Pending as pending:  # a dead letter replayed meanwhile: the month stays
        if detached is not None:
            _attach(engine, table, month)
        return Held(table, month, pending.count)
    finally:
        partial.unlink(missing_ok=True)


def _write_and_drop(
    engine: Engine,
    audit: AuditLog,
    table: str,
    month: Month,
    detached: sa.Table | None,
    partial: Path,
    path: Path,
    now: datetime,
) -> Archived:
    rest = _rest(engine, table)
    with gzip.open(partial, "wt", encoding="utf-8") as out:
        rows, counts = 0, []
        if detached is not None:  # nobody writes to it: read without a lock
            with Session(engine) as session:
                rows += _write(session, detached, month, out)
                counts = statistics.roll_up(session, table, detached, month.start, month.end)
        with unit_of_work(engine) as session:
            if partitions.partitioned(engine):  # the month's rows here are few: lock briefly
                session.execute(sa.text(f"LOCK TABLE {rest.name} IN SHARE MODE"))
            pending = _pending(session, table, rest, month)
            if pending:
                raise _Pending(pending)
            rows += _write(session, rest, month, out)
            counts += statistics.roll_up(session, table, rest, month.start, month.end)
            out.close()
            kept = _keep(partial, path, table, month, rows, now)
            try:
                counted = statistics.keep_counts(session, counts)
                if detached is not None:
                    session.execute(sa.text(f"DROP TABLE {detached.name}"))
                column = rest.c[partitions.PARTITIONED[table]]
                session.execute(sa.delete(rest).where(column >= month.start, column < month.end))
                event = OPERATOR.did(ACTION, str(rows), None, f"{table} {month}")
                audit.record(session, event, now)
            except BaseException:
                _discard(path)
                raise
    return Archived(table, month, rows, kept, counted)


def _detach(engine: Engine, table: str, month: Month) -> sa.Table | None:
    """The month's partition, detached (or as an earlier run left it), None if there is
    none; raises _Pending, the partition left attached, if deliveries in it are pending."""
    name = month.partition(table)
    with engine.begin() as connection:
        if month in partitions.existing(connection, table):
            connection.exec_driver_sql(f"ALTER TABLE {table} DETACH PARTITION {name}")
        elif month not in _detached(connection, table):
            return None
        shaped = _shaped(table, name)
        pending = _pending(connection, table, shaped, month)
        if pending:
            raise _Pending(pending)  # rolls the detach back
    return shaped


def _attach(engine: Engine, table: str, month: Month) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"ALTER TABLE {table} ATTACH PARTITION {month.partition(table)}"
            f" FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"
        )


def _pending(bind: Session | Connection, table: str, source: sa.Table, month: Month) -> int:
    if table != "delivery":
        return 0
    column = source.c.created_at
    return int(
        bind.execute(
            sa.select(sa.func.count()).where(
                source.c.status == "pending", column >= month.start, column < month.end
            )
        ).scalar_one()
    )


def _rest(engine: Engine, table: str) -> sa.Table:
    """Where a month's rows are when they are not in its partition: the default partition
    on PostgreSQL, the table itself on SQLite."""
    return _shaped(table, f"{table}_default") if partitions.partitioned(engine) else _table(table)


def _table(name: str) -> sa.Table:
    return SQLModel.metadata.tables[name]


def _shaped(table: str, name: str) -> sa.Table:
    """A table of `table`'s columns under another name (one of its partitions)."""
    return _table(table).to_metadata(sa.MetaData(), name=name)


def _write(session: Session, source: sa.Table, month: Month, out: IO[str]) -> int:
    """Write the month's rows of `source` as JSON lines; returns how many."""
    column = source.c[partitions.PARTITIONED[_origin(source)]]
    query = (
        sa.select(source)
        .where(column >= month.start, column < month.end)
        .order_by(*(source.c[name] for name in ORDER[_origin(source)]))
    )
    written = 0
    for row in session.execute(query, execution_options={"yield_per": _BATCH}):
        out.write(json.dumps(dict(row._mapping), default=_plain, ensure_ascii=False) + "\n")
        written += 1
    return written


def _origin(source: sa.Table) -> str:
    return next(table for table in ORDER if source.name.startswith(table))


def _plain(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not archived")


def _free_name(directory: Path, table: str, month: Month) -> Path:
    """`<table>-<month>.jsonl.gz`, or with .2, .3... when a month's rows arrived after it was
    archived (an offline decision reported late) or a run was interrupted after writing."""
    for number in itertools.count(1):
        suffix = "" if number == 1 else f".{number}"
        path = directory / f"{table}-{month}{suffix}.jsonl.gz"
        if not path.exists():
            return path
    raise AssertionError("unreachable")


def _keep(
    partial: Path, path: Path, table: str, month: Month, rows: int, now: datetime
) -> Path | None:
    """The archive, flushed to disk, under its name with its manifest beside it; None (and
    no file) for a month that had no rows."""
    if rows == 0:
        return None
    with partial.open("rb") as written:
        os.fsync(written.fileno())
        sha256 = hashlib.file_digest(written, "sha256").hexdigest()
    partial.rename(path)
    manifest = {
        "table": table,
        "month": str(month),
        "from": month.start.isoformat(),
        "to": month.end.isoformat(),
        "column": partitions.PARTITIONED[table],
        "rows": rows,
        "file": path.name,
        "sha256": sha256,
        "columns": [column.name for column in _table(table).columns],
        "archived_at": now.isoformat(),
    }
    _manifest(path).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def _manifest(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".jsonl.gz") + ".manifest.json")


def _discard(path: Path) -> None:
    """An archive whose rows stay in the database after all."""
    path.unlink(missing_ok=True)
    _manifest(path).unlink(missing_ok=True)
