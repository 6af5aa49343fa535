"""A large audit log: a full walk of every chain against a day's walk from the last checkpoint.

    .venv/bin/python bench/audit_scale.py [--entries 10000000] [--day 330000] [--workers 2]
        [--deliveries 3000000] [--decisions 1000000]

A province's hub appends hundreds of millions of audit entries a year; walking them all every
night is not an option, so `hub audit verify --since-checkpoint` walks only what came after
the last signed checkpoint, having checked that the log still runs through it. In one run on
one scratch PostgreSQL database:

1. `--entries` entries appended through the hub's own AuditLog (MACed, chained, spread over
   the chains by holder), in transactions of 10,000, as the daily jobs append them, then
   VACUUM ANALYZE; a checkpoint signed; then `--day` more entries (a day's, at ten million a
   month).
2. The full walk (`verify_all`, `--workers` processes), then the incremental one from the
   checkpoint (its comparison with the log included), each timed.
3. The floor of a full walk: the same rows read in position order through the driver with
   nothing computed, one chain after another, and the MACs alone computed in this process
   over rows already in memory (a sample), scaled to the whole log.
4. A month's archive (`hub retention archive`, hub.retention): `--deliveries` deliveries and
   `--decisions` window decisions of last month, written by the database itself into their
   month partitions, archived to files, counted into the statistics and dropped; against its
   floor, the same rows read through the driver with nothing computed. Then the statistics
   of the month are compared with those before, and the day's walk is run again.

The audit log is partitioned by month (hub.partitions); the entries are spread over the last
30 days, so over this month's partition and last month's.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

if __package__ in (None, ""):  # run as `python bench/...py`: bench/ is on the path, not the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import _bounded_int
from hub import checkpoints, partitions, statistics
from hub.audit import AuditEvent, chains_in
from hub.audit_verify import verify_all
from hub.auth.keys import active_key
from hub.db import unit_of_work
from hub.partitions import Month
from hub.retention import Archived, archive

SCRIPT = "bench/audit_scale.py"
BATCH = 10_000
SAMPLE = 200_000


def append(hub: object, count: int, start: datetime, span: timedelta) -> float:
    """`count` entries through the hub's AuditLog, BATCH a transaction; returns seconds."""
    audit, engine = hub.audit, hub.engine  # type: ignore[attr-defined]
    began = time.perf_counter()
    done = 0
    while done < count:
        size = min(BATCH, count - done)
        subject = hashlib.sha256(secrets.token_bytes(8)).hexdigest()
        events = [
            AuditEvent("hub-scheduler", "permit.suspend", "suspended", "public-security", subject)
            for _ in range(size)
        ]
        at = start + span * (done / count)
        with unit_of_work(engine) as session:
            audit.record_many(session, events, at)
        done += size
        if done % 1_000_000 < BATCH:
            print(f"  {done:,} appended", flush=True)
    return time.perf_counter() - began


def read_floor(engine: sa.Engine) -> float:
    """Every row read in chain and position order, nothing computed."""
    began = time.perf_counter()
    with engine.connect() as connection:
        for chain in connection.exec_driver_sql("SELECT id FROM audit_head ORDER BY id").scalars():
            rows = connection.execution_options(yield_per=10_000).exec_driver_sql(
                "SELECT * FROM audit_log WHERE chain = %(c)s ORDER BY position", {"c": chain}
            )
            for _ in rows:
                pass
    return time.perf_counter() - began


def mac_floor(key: bytes, total: int) -> float:
    """HMAC-SHA256 of SAMPLE messages the size of an entry's, scaled to `total` rows."""
    message = ("x" * 300).encode()
    began = time.perf_counter()
    for _ in range(SAMPLE):
        hmac.digest(key, message, "sha256")
    return (time.perf_counter() - began) * total / SAMPLE


PERMITS = 1_000
_REGISTRATIONS = """
INSERT INTO registration (id, jurisdiction, citizen_id_hash, citizen_id_sealed, name, sex,
    ethnicity, birth_date, household_address, household_region, current_address, current_region,
    reason, contact, arrived_on, registered_on, declared_late, declaration_provisional,
    residence_start, imported_from_temporary_permit, created_at)
SELECT 'r' || i, 'chifeng', md5('h' || i) || md5('h' || i), '\\x00', 'n', 'm', 'e',
    '1990-01-01', 'a', '150402', 'a', '150402', 'work', 'c', '2025-01-01', '2025-01-01',
    false, false, '2025-01-01', false, now()
FROM generate_series(1, %(n)s) AS i
"""
_PERMITS = """
INSERT INTO permit (id, registration_id, jurisdiction, citizen_id_hash, state, receipt_number,
    accepted_on, issue_due_on, residence_start, version, updated_at)
SELECT 'p' || i, 'r' || i, 'chifeng', md5('h' || i) || md5('h' || i), 'valid', 'R' || i,
    '2025-01-01', '2025-01-20', '2025-01-01', 1, now()
FROM generate_series(1, %(n)s) AS i
"""
_DELIVERIES = """
INSERT INTO delivery (event_seq, department, permit_id, status, attempts, next_attempt_at,
    created_at, delivered_at)
SELECT i, (ARRAY['housing','education','health','human-resources','civil-affairs'])[1 + i %% 5],
    'p' || (1 + i %% %(permits)s), 'delivered', 1, t, t, t + interval '1 second'
FROM generate_series(1, %(n)s) AS i,
    LATERAL (SELECT %(start)s::timestamptz + (%(span)s::interval * i / %(n)s) AS t) AS at
"""
_DECISIONS = """
INSERT INTO verification_decision (id, client_id, department, service, card_serial, decision,
    reasons, offline, decided_at, recorded_at)
SELECT md5('d' || i), 'window-1', 'health', 'basic-public-health', 'CF' || (i %% 1000),
    CASE WHEN i %% 10 = 0 THEN 'deny' ELSE 'grant' END, '[]', false, t, t
FROM generate_series(1, %(n)s) AS i,
    LATERAL (SELECT %(start)s::timestamptz + (%(span)s::interval * i / %(n)s) AS t) AS at
"""


def load_month(engine: sa.Engine, month: Month, deliveries: int, decisions: int) -> float:
    """A month of deliveries and decisions, written by the database itself; returns seconds."""
    span = month.end - month.start - timedelta(seconds=1)
    began = time.perf_counter()
    with engine.begin() as connection:
        connection.exec_driver_sql(_REGISTRATIONS, {"n": PERMITS})
        connection.exec_driver_sql(_PERMITS, {"n": PERMITS})
        for statement, count in ((_DELIVERIES, deliveries), (_DECISIONS, decisions)):
            values = {"n": count, "permits": PERMITS, "start": month.start, "span": span}
            connection.exec_driver_sql(statement, values)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE delivery, verification_decision")
    return time.perf_counter() - began


def archive_floor(engine: sa.Engine, month: Month) -> float:
    """The month's rows read through the driver, nothing computed or written."""
    began = time.perf_counter()
    with engine.connect() as connection:
        for table in ("delivery", "verification_decision"):
            rows = connection.execution_options(yield_per=10_000).exec_driver_sql(
                f"SELECT * FROM {month.partition(table)}"
            )
            for _ in rows:
                pass
    return time.perf_counter() - began


def month_figures(engine: sa.Engine, month: Month) -> dict[str, list[dict[str, object]]]:
    with Session(engine) as session:
        period = statistics.Period(str(month), str(month))
        return statistics.compute(session, period, ["chifeng"], ("taps", "pushes")).tables


def run(args: argparse.Namespace, argv: Sequence[str], database: common.Database) -> int:
    if database.key != "postgresql":
        raise common.BenchError("this benchmark runs on PostgreSQL: pass --database-url")
    hub = common.scratch_hub(database)
    hub.prepare()
    now = datetime.now(UTC)
    last_month = Month.of(Month.of(now).start - timedelta(days=1))
    partitions.ensure(hub.engine, now - timedelta(days=31), ahead=3)
    print(f"appending {args.entries:,} entries", flush=True)
    loaded = append(hub, args.entries, now - timedelta(days=30), timedelta(days=30))
    with hub.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE audit_log")
    with unit_of_work(hub.engine) as session:
        key = active_key(session, hub.key_password)
        assert key is not None
        signed = checkpoints.sign(session, key, hub.settings.issuer, now)
        assert signed is not None
        token = signed.token
    print(f"appending a day: {args.day:,} entries", flush=True)
    append(hub, args.day, now, timedelta(hours=24))
    with Session(hub.engine) as session:
        chains = len(chains_in(session))
        total = session.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
    quiet = lambda more: None  # noqa: E731

    began = time.perf_counter()
    full = verify_all(hub.engine, database.url, hub.audit.key, args.workers, quiet)
    full_seconds = time.perf_counter() - began
    began = time.perf_counter()
    with Session(hub.engine) as session:
        starts = checkpoints.starts_of(session, token)
    day = verify_all(hub.engine, database.url, hub.audit.key, args.workers, quiet, starts)
    with Session(hub.engine) as session:
        witnessed = checkpoints.compare(session, hub.audit.key, [token])
    day_seconds = time.perf_counter() - began
    floor_read = read_floor(hub.engine)
    floor_macs = mac_floor(hub.audit.key, total)

    print(f"loading {last_month}: {args.deliveries:,} deliveries, {args.decisions:,} decisions")
    month_loaded = load_month(hub.engine, last_month, args.deliveries, args.decisions)
    floor_archive = archive_floor(hub.engine, last_month)
    before = month_figures(hub.engine, last_month)
    with tempfile.TemporaryDirectory(prefix="hub-archive-") as directory:
        began = time.perf_counter()
        archived = archive(hub.engine, hub.audit, Month.of(now), Path(directory), now)
        archive_seconds = time.perf_counter() - began
        files = sum(path.stat().st_size for path in Path(directory).iterdir())
    archived_rows = sum(o.rows for o in archived if isinstance(o, Archived))
    kept_figures = month_figures(hub.engine, last_month) == before
    with Session(hub.engine) as session:
        starts = checkpoints.starts_of(session, token)
    after = verify_all(hub.engine, database.url, hub.audit.key, args.workers, quiet, starts)
    hub.engine.dispose()
    intact = full.intact and day.intact and not witnessed.findings and after.intact
    month_rows = args.deliveries + args.decisions
    archive_rows = [
        ("a month's archive", "rows", "seconds", "rows/s"),
        (
            f"{last_month}: written, counted, dropped",
            f"{archived_rows:,}",
            f"{archive_seconds:.1f}",
            f"{archived_rows / archive_seconds:,.0f}",
        ),
        (
            "floor: the same rows read, nothing computed",
            f"{month_rows:,}",
            f"{floor_archive:.1f}",
            "-",
        ),
    ]
    rows = [
        ("walk", "rows read", "seconds", "rows/s"),
        (
            f"full, {args.workers} processes",
            f"{full.rows_checked:,}",
            f"{full_seconds:.1f}",
            f"{full.rows_checked / full_seconds:,.0f}",
        ),
        (
            "since the checkpoint (the day), with the comparison",
            f"{day.rows_checked:,}",
            f"{day_seconds:.1f}",
            f"{day.rows_checked / day_seconds:,.0f}",
        ),
        ("floor: every row read, nothing computed", f"{total:,}", f"{floor_read:.1f}", "-"),
        ("floor: the MACs alone, one process", f"{total:,}", f"{floor_macs:.1f}", "-"),
    ]
    section = "\n".join(
        [
            *common.header("A large audit log, PostgreSQL", SCRIPT, argv, database),
            f"- Data: {args.entries:,} entries over {chains} chains appended in"
            f" {loaded:.0f} s ({args.entries / loaded:,.0f}/s through AuditLog.record_many,"
            f" {BATCH:,} a transaction), a checkpoint signed, then {args.day:,} more",
            "",
            *common.markdown_table(rows),
            "",
            f"- The day's walk took {day_seconds / full_seconds:.1%} of the full one's time."
            f" Full walk / floors: {full_seconds / floor_read:.1f}x the reading alone,"
            f" {full_seconds / floor_macs:.1f}x the MACs alone on one core.",
            f"- Checked: both walks {'intact' if intact else '**BROKEN**'}; the log runs through"
            " the checkpoint.",
            "",
            *common.markdown_table(archive_rows),
            "",
            f"- The month ({args.deliveries:,} deliveries, {args.decisions:,} decisions, written"
            f" by the database in {month_loaded:.0f} s) went to {files / 1e6:,.1f} MB of gzipped"
            f" JSON lines: {archive_seconds / floor_archive:.1f}x the floor of reading it.",
            f"- Checked: every row archived {'yes' if archived_rows == month_rows else '**NO**'};"
            f" the month's statistics {'unchanged' if kept_figures else '**CHANGED**'};"
            f" the day's walk after the archive {'intact' if after.intact else '**BROKEN**'}.",
        ]
    )
    print(section)
    if not args.no_record:
        common.record(args.results, SCRIPT, database.key, section)
    return 0 if intact and kept_figures and archived_rows == month_rows else 1


def command_line() -> argparse.ArgumentParser:
    parser = common.postgres_parser(SCRIPT, __doc__.splitlines()[0])
    parser.add_argument(
        "--entries",
        type=_bounded_int(BATCH, 1_000_000_000),
        default=10_000_000,
        help="entries before the checkpoint (10,000,000)",
    )
    parser.add_argument(
        "--day", type=_bounded_int(1, 100_000_000), default=330_000, help="after it (330,000)"
    )
    parser.add_argument("--workers", type=_bounded_int(1, 64), default=2, help="processes (2)")
    parser.add_argument(
        "--deliveries",
        type=_bounded_int(1, 1_000_000_000),
        default=3_000_000,
        help="deliveries of last month (3,000,000)",
    )
    parser.add_argument(
        "--decisions",
        type=_bounded_int(1, 1_000_000_000),
        default=1_000_000,
        help="window decisions of last month (1,000,000)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_on_scratch(SCRIPT, command_line(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
