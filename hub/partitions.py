"""Monthly partitions of the tables that grow with every request, on PostgreSQL.

A province appends a few hundred million audit entries, events and deliveries a year. Each of
the tables below is partitioned by range of one time column, one partition per civil month
in China (the months the statistics count and retention closes), named `<table>_pYYYYMM`,
and a `<table>_default` partition that takes any row no month partition takes: the rows
from before partitioning (migration 0023 made each old table its default partition, with no
copy), and any time outside the months created (a clock set years ahead in a test, an
offline decision reported for a month already archived).

`ensure` creates the current month and `ahead` months after it; the hub runs it at start-up
(Hub.prepare) and the scheduler daily, so inserts always find their month. A month created
while the default holds rows of it takes those rows over in the same transaction.

PostgreSQL requires a partitioned table's primary key to hold the partition column: on
PostgreSQL the keys below are the models' keys plus that column (migration 0023). The
models keep their own keys, which stay unique (sequences, the relay's one row per event and
department, a decision id), and which SQLite, unpartitioned, keeps as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub.clock import china_date, china_day_start

PARTITIONED: Final = {
    "audit_log": "at",
    "permit_event": "at",
    "outbox": "created_at",
    "delivery": "created_at",
    "verification_decision": "decided_at",
}
"""Each partitioned table and the time column it is partitioned by."""
_PARTITION_NAME: Final = re.compile("^(" + "|".join(PARTITIONED) + r")_(default|p(\d{4})(\d{2}))$")
_LOCK: Final = 0x48554250  # the advisory lock that keeps two processes from one month


@dataclass(frozen=True, order=True)
class Month:
    """A civil month in China, e.g. Month(2026, 12)."""

    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime) -> Month:
        day = china_date(moment)
        return cls(day.year, day.month)

    @classmethod
    def parse(cls, text: str) -> Month:
        """'YYYY-MM'; ValueError for anything else."""
        found = re.fullmatch(r"(\d{4})-(\d{2})", text)
        if found is None or not 1 <= int(found[2]) <= 12:
            raise ValueError(f"not a month (YYYY-MM): {text!r}")
        return cls(int(found[1]), int(found[2]))

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    @property
    def start(self) -> datetime:
        """Its first instant (midnight in China), in UTC."""
        return china_day_start(date(self.year, self.month, 1))

    @property
    def end(self) -> datetime:
        """The first instant after it."""
        return self.next().start

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def partition(self, table: str) -> str:
        return f"{table}_p{self.year:04d}{self.month:02d}"


def months(first: Month, count: int) -> Iterator[Month]:
    month = first
    for _ in range(count):
        yield month
        month = month.next()


def is_partition(name: str) -> bool:
    """Whether a table name is one of the partitions (which the models do not declare)."""
    return _PARTITION_NAME.match(name) is not None


def partitioned(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "postgresql"


def existing(connection: Connection, table: str) -> dict[Month, str]:
    """The month partitions of `table` now attached, by month."""
    names = connection.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = CAST(:table AS regclass)"
        ),
        {"table": table},
    ).scalars()
    found = {}
    for name in names:
        matched = _PARTITION_NAME.match(name)
        if matched and matched[3]:
            found[Month(int(matched[3]), int(matched[4]))] = name
    return found


def ensure(engine: Engine, now: datetime, ahead: int) -> list[str]:
    """Create the partitions of this month and the `ahead` next for every partitioned table,
    those not there yet; returns the names created (none on SQLite)."""
    if not partitioned(engine):
        return []
    wanted = list(months(Month.of(now), ahead + 1))
    with engine.connect() as connection:
        missing = [
            (table, month)
            for table in PARTITIONED
            for month in sorted(set(wanted) - set(existing(connection, table)))
        ]
    created = []
    for table, month in missing:
        with engine.begin() as connection:
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": _LOCK})
            if month not in existing(connection, table):  # another process made it meanwhile
                _create(connection, table, month)
                created.append(month.partition(table))
    return created


def _create(connection: Connection, table: str, month: Month) -> None:
    """The month's partition, with the rows of its month the default partition holds.

    The default is locked against writes first: a row of the month written to it between the
    move and the attach would make the attach fail. Inserts of other months are not held."""
    name, column = month.partition(table), PARTITIONED[table]
    default = f"{table}_default"
    bounds = {"start": month.start, "end": month.end}
    in_month = f"{column} >= :start AND {column} < :end"
    connection.exec_driver_sql(f"LOCK TABLE {default} IN EXCLUSIVE MODE")
    connection.exec_driver_sql(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)")
    connection.execute(
        sa.text(f"INSERT INTO {name} SELECT * FROM {default} WHERE {in_month}"), bounds
    )
    connection.execute(sa.text(f"DELETE FROM {default} WHERE {in_month}"), bounds)
    # DDL takes no parameters; the bounds are times this module computed, never input.
    start, end = month.start.isoformat(), month.end.isoformat()
    connection.exec_driver_sql(
        f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ('{start}') TO ('{end}')"
    )


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's filter of reflected names: the partitions are the database's, not the
    models' (alembic/env.py, and the test that the migrations match the models)."""
    return not (type_ == "table" and name is not None and is_partition(name))
