"""Lock waits per audited write with many concurrent writers: one audit chain against several.

    .venv/bin/python bench/audit_locks.py [--writers 32] [--seconds 10] [--chains 16]

Every audited write appends to a chain by advancing its head row (an UPDATE ... RETURNING,
whose row lock is held until commit). With one chain, every writer of every process queues on
that one row. In one run on one scratch PostgreSQL database, `--writers` processes (each its
own connection, as hub workers are) append for `--seconds`, each transaction one audit entry
for a random holder, as a request audits its one action:

1. with one chain (the log before it was split),
2. with `--chains` chains,
3. the floor: the same transactions writing the same row with no head at all (an INSERT of a
   row with two 64-character hashes, not MACs), which no chained log can beat.

For each: appends per second; the time of the head's UPDATE (almost all of it waiting for the
lock: the statement alone is a few hundred microseconds), median, 99th percentile and mean
per append; and the whole transaction's time.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import secrets
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

if __package__ in (None, ""):  # run as `python bench/...py`: bench/ is on the path, not the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import _bounded_int
from hub.audit import AuditEvent, AuditLog
from hub.db import make_engine, unit_of_work

SCRIPT = "bench/audit_locks.py"
FLOOR = sa.text(
    "INSERT INTO audit_log (chain, position, at, actor_client_id, actor_department, action,"
    " subject, purpose, outcome, prev_hash, row_hash)"
    " VALUES (0, :position, :at, 'window', 'housing', 'verification.tap', :subject,"
    " 'rental subsidy', 'grant', :hash, :hash)"
)


@dataclass(frozen=True)
class Timings:
    appends: int
    head_ms: list[float]
    transaction_ms: list[float]


def _writer(url: str, key: bytes, chains: int, seconds: float, start_at: float, n: int) -> Timings:
    """One writer process: appends until its time is up."""
    engine = make_engine(url, pool_size=1)
    head_ms: list[float] = []
    started: dict[str, float] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        started["at"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE audit_head SET seq"):
            head_ms.append((time.perf_counter() - started["at"]) * 1000)

    log = AuditLog(key, chains=chains)
    transaction_ms: list[float] = []
    time.sleep(max(0.0, start_at - time.time()))
    deadline = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < deadline:
        subject = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
        began = time.perf_counter()
        with unit_of_work(engine) as session:
            if chains:
                happened = AuditEvent("window", "verification.tap", "grant", "housing", subject)
                log.record(session, happened, datetime.now(UTC))
            else:
                position = n * 100_000_000 + count
                parameters = {"position": position, "at": datetime.now(UTC)}
                session.execute(FLOOR, {**parameters, "subject": subject, "hash": subject})
        transaction_ms.append((time.perf_counter() - began) * 1000)
        count += 1
    engine.dispose()
    return Timings(count, head_ms, transaction_ms)


def measure(url: str, key: bytes, chains: int, writers: int, seconds: float) -> Timings:
    """`writers` processes appending at once; chains 0 is the floor (no head)."""
    start_at = time.time() + 2.0  # every process connected before any appends
    fork = multiprocessing.get_context("fork")
    with fork.Pool(writers) as pool:
        runs = pool.starmap(
            _writer, [(url, key, chains, seconds, start_at, n) for n in range(writers)]
        )
    return Timings(
        sum(run.appends for run in runs),
        [ms for run in runs for ms in run.head_ms],
        [ms for run in runs for ms in run.transaction_ms],
    )


def _percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(args: argparse.Namespace, argv: Sequence[str], database: common.Database) -> int:
    if database.key != "postgresql":
        raise common.BenchError("this benchmark runs on PostgreSQL: pass --database-url")
    hub = common.scratch_hub(database)
    key = hub.audit.key
    with unit_of_work(hub.engine) as session:
        AuditLog(key, chains=args.chains).open_chains(session)
    hub.engine.dispose()
    measured = {}
    for label, chains in (("one chain", 1), (f"{args.chains} chains", args.chains), ("floor", 0)):
        print(f"{label}: {args.writers} writers for {args.seconds} s", flush=True)
        measured[label] = measure(database.url, key, chains, args.writers, args.seconds)
    engine = make_engine(database.url)
    with unit_of_work(engine) as session:
        session.execute(sa.text("DELETE FROM audit_log WHERE chain = 0"))  # the floor's rows
    with unit_of_work(engine) as session:
        report = AuditLog(key).verify(session)
    engine.dispose()
    intact = "intact" if report.intact else f"BROKEN ({report.findings[0]})"
    section = markdown(measured, args, argv, database, report.rows_checked, intact)
    print(section)
    if not args.no_record:
        common.record(args.results, SCRIPT, database.key, section)
    return 0 if report.intact else 1


def markdown(
    measured: dict[str, Timings],
    args: argparse.Namespace,
    argv: Sequence[str],
    database: common.Database,
    rows: int,
    intact: str,
) -> str:
    table = [
        (
            "",
            "appends/s",
            "head UPDATE p50 ms",
            "p99 ms",
            "mean ms",
            "transaction p50 ms",
            "p99 ms",
        )
    ]
    for label, timings in measured.items():
        head = timings.head_ms
        table.append(
            (
                label,
                f"{timings.appends / args.seconds:,.0f}",
                f"{_percentile(head, 0.5):.2f}" if head else "-",
                f"{_percentile(head, 0.99):.2f}" if head else "-",
                f"{statistics.fmean(head):.2f}" if head else "-",
                f"{_percentile(timings.transaction_ms, 0.5):.2f}",
                f"{_percentile(timings.transaction_ms, 0.99):.2f}",
            )
        )
    one, many = measured["one chain"], measured[f"{args.chains} chains"]
    floor = measured["floor"]
    return "\n".join(
        [
            *common.header(
                f"Audit appends, {args.writers} concurrent writers, PostgreSQL",
                SCRIPT,
                argv,
                database,
            ),
            f"- Load: {args.writers} processes, one connection each, {args.seconds} s per row"
            " of the table; each transaction appends one entry for a random holder",
            "",
            *common.markdown_table(table),
            "",
            f"- Waiting on the head per append (mean): **{statistics.fmean(one.head_ms):.2f} ms**"
            f" with one chain, **{statistics.fmean(many.head_ms):.2f} ms** with {args.chains};"
            f" appends/s {many.appends / one.appends:.2f}x, and"
            f" {many.appends / floor.appends:.2f}x the floor's (no head at all).",
            f"- Checked: the log's {rows:,} rows verified afterwards: {intact}.",
        ]
    )


def command_line() -> argparse.ArgumentParser:
    parser = common.postgres_parser(SCRIPT, __doc__.splitlines()[0])
    parser.add_argument(
        "--writers", type=_bounded_int(1, 256), default=32, help="writer processes (32)"
    )
    parser.add_argument(
        "--seconds", type=_bounded_int(1, 600), default=10, help="seconds per configuration (10)"
    )
    parser.add_argument(
        "--chains", type=_bounded_int(2, 1_024), default=16, help="chains of the split log (16)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_on_scratch(SCRIPT, command_line(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
