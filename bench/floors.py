"""The floor of a registration: its statements and its cryptography through the driver alone.

What the hub cannot do without, whatever its framework: the citizen ID's keyed hash and its
AES-GCM seal (the hub's own `CitizenIdVault`, so the same keys and primitives), the audit
row's MAC, and the same statements a registration sends (captured from the engine): the
registration row, the audit head advanced, the audit row, the head's hash, the open reports of
the person resolved, and the commit. Through psycopg with prepared statements on PostgreSQL,
or sqlite3 with BEGIN IMMEDIATE as the hub opens its transactions there; one connection, one
transaction per registration, no ORM, no HTTP. The figure is this process's CPU time per
registration, to set beside the worker's (1 / its per-core rate).
"""

from __future__ import annotations

import hmac
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.engine import make_url

from hub.permits.identity import CitizenId, CitizenIdVault

_REGISTRATION = (
    "INSERT INTO registration (id, jurisdiction, citizen_id_hash, citizen_id_sealed, name, sex,"
    " ethnicity, birth_date, household_address, household_region, current_address,"
    " current_region, reason, workplace, contact, arrived_on, registered_on,"
    " declaration_due_on, declared_late, declaration_provisional, residence_start,"
    " imported_from_temporary_permit, declarant_relation, declarant_id_hash, created_at)"
    " VALUES (:id, 'chifeng', :hash, :sealed, '王芳', 'male', '汉族', :born,"
    " '辽宁省沈阳市和平区某街1号', '210102', '赤峰市红山区某小区2号楼', '150402', 'employment',"
    " '赤峰某建材有限公司', '13800000000', :arrived, :today, NULL, :no, :no, :arrived, :no,"
    " NULL, NULL, :at)"
)
_ADVANCE = "UPDATE audit_head SET seq = seq + 1 WHERE id = :chain RETURNING seq, row_hash"
_AUDIT = (
    "INSERT INTO audit_log (chain, position, actor_client_id, actor_department, action,"
    " subject, purpose, outcome, prev_hash, row_hash, at) VALUES (:chain, :position,"
    " 'public-security-floor', 'public-security', 'registration.create', :hash, 'registry',"
    " 'registered', :prev, :mac, :at)"
)
_HEAD_HASH = "UPDATE audit_head SET row_hash = :mac WHERE id = :chain"
_REPORTS = (
    "UPDATE third_party_report SET status = 'registered', resolved_at = :at"
    " WHERE citizen_id_hash = :hash AND jurisdiction = 'chifeng' AND status = 'open'"
)
CHAINS = 16


@dataclass(frozen=True)
class Floor:
    cpu_us: float  # this process's CPU per registration
    wall_us: float
    count: int
    driver: str


def registration_floor(
    url: str, vault: CitizenIdVault, audit_key: bytes, people: list[str], today: date
) -> Floor:
    """Register `people` (18-character IDs nobody holds yet) one transaction each."""
    execute, commit, close, driver = _connect(url)
    try:
        for chain in range(1, CHAINS + 1):  # the heads the hub opens at start-up
            execute(
                "INSERT INTO audit_head (id, seq, row_hash) VALUES (:chain, 0, :genesis)"
                " ON CONFLICT (id) DO NOTHING",
                {"chain": chain, "genesis": "0" * 64},
            )
        commit()
        cpu, wall = time.process_time(), time.perf_counter()
        for number, citizen in enumerate(people):
            _register(execute, vault, audit_key, CitizenId(citizen), today, number % CHAINS + 1)
            commit()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        close()
    count = len(people)
    return Floor(cpu / count * 1e6, wall / count * 1e6, count, driver)


Execute = Callable[[str, dict[str, Any]], Any]


def _register(
    execute: Execute, vault: CitizenIdVault, key: bytes, citizen: CitizenId, today: date, chain: int
) -> None:
    now = datetime.now(UTC)
    lookup = vault.lookup_hash(citizen)
    no = False
    execute(
        _REGISTRATION,
        {
            "id": str(uuid.uuid4()),
            "hash": lookup,
            "sealed": vault.seal(citizen),
            "born": date(1980, 1, 1),
            "arrived": today,
            "today": today,
            "no": no,
            "at": now,
        },
    )
    position, prev = execute(_ADVANCE, {"chain": chain}).fetchone()
    message = json.dumps([position, now.isoformat(), "public-security-floor", lookup, prev])
    mac = hmac.digest(key, message.encode(), "sha256").hex()
    values = {"chain": chain, "position": position, "hash": lookup, "prev": prev, "at": now}
    execute(_AUDIT, {**values, "mac": mac})
    execute(_HEAD_HASH, {"chain": chain, "mac": mac})
    execute(_REPORTS, {"at": now, "hash": lookup})


def _connect(url: str) -> tuple[Execute, Callable[[], None], Callable[[], None], str]:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        connection = sqlite3.connect(parsed.database or ":memory:", isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        cursor = connection.cursor()
        begun = False

        def execute_sqlite(statement: str, parameters: dict[str, Any]) -> Any:
            nonlocal begun
            if not begun:
                cursor.execute("BEGIN IMMEDIATE")
                begun = True
            return cursor.execute(statement, _sqlite_values(parameters))

        def commit_sqlite() -> None:
            nonlocal begun
            cursor.execute("COMMIT")
            begun = False

        return execute_sqlite, commit_sqlite, connection.close, f"sqlite3 {sqlite3.sqlite_version}"
    import psycopg

    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    pg = psycopg.connect(conninfo, prepare_threshold=0)  # every statement prepared
    pg_cursor = pg.cursor()

    def execute_pg(statement: str, parameters: dict[str, Any]) -> Any:
        return pg_cursor.execute(_pyformat(statement), parameters)

    return execute_pg, pg.commit, pg.close, f"psycopg {psycopg.__version__}, prepared"


_NAMED = re.compile(r"(?<!:):(\w+)")


def _pyformat(statement: str) -> str:
    return _NAMED.sub(r"%(\1)s", statement)


def _sqlite_values(parameters: dict[str, Any]) -> dict[str, Any]:
    """As SQLAlchemy stores them on SQLite: dates and times as ISO text, booleans as 0/1."""
    return {
        name: (
            value.isoformat(sep=" ")
            if isinstance(value, datetime)
            else value.isoformat()
            if isinstance(value, date)
            else int(value)
            if isinstance(value, bool)
            else value
        )
        for name, value in parameters.items()
    }
