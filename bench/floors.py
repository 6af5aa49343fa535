"""The floors of a registration and of a tap: their statements and cryptography through the
driver alone.

What the hub cannot do without, whatever its framework: the citizen ID's keyed hash and its
AES-GCM seal (the hub's own `CitizenIdVault`, so the same keys and primitives), the audit
row's MAC, and the same statements a registration sends (captured from the engine): the
audit head advanced; the registration row, the audit row and the head's hash (one statement on
PostgreSQL, as the hub sends them); the open reports of the person resolved; the commit.
Through psycopg with prepared statements on PostgreSQL, or sqlite3 with BEGIN IMMEDIATE as
the hub opens its transactions there; one connection, one transaction per registration, no
ORM, no HTTP. The figure is this process's CPU time per
registration, to set beside the worker's (1 / its per-core rate).

A tap's floor (`tap_floor`, PostgreSQL only, as the taps benchmark) answers the same request
bodies the hub answers: the JSON read and the record and signature decoded from base64; the
challenge's tag checked (the hub's HMAC, `challenges.check`) and the challenge marked used;
the card record's SHA-256, its BER-TLV decoded and the issuing signature verified (ECDSA
P-256, the hub's `layout`); the card, its permit and registration read in one join; the
card's answer to the nonce verified (ECDSA); the citizen ID unsealed (AES-GCM); the audit
head advanced; the decision row, the audit row and the head's hash in one statement; the
commit. It leaves out what is the hub's own work rather than the driver's: the holder record
projected through the department's agreement, and the JSON answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import make_url

from bench.common import verdict
from hub.card import layout
from hub.card.protocol import proves_possession
from hub.permits.identity import CitizenId, CitizenIdVault
from hub.verification import challenges

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
# On PostgreSQL the hub sends the registration row, the audit row and the head's hash as one
# statement (a data-modifying WITH, hub.audit.AuditLog.record_many's `alongside`); so does this.
_COMBINED = (
    f"WITH registered AS ({_REGISTRATION}), audited AS ({_AUDIT})"
    " UPDATE audit_head SET row_hash = :mac WHERE id = :chain"
)
_REPORTS = (
    "UPDATE third_party_report SET status = 'registered', resolved_at = :at"
    " WHERE citizen_id_hash = :hash AND jurisdiction = 'chifeng' AND status = 'open'"
)
_USE_CHALLENGE = (
    "INSERT INTO verification_challenge (id, client_id, nonce, created_at, expires_at, used_at)"
    " VALUES (:id, :client_id, :nonce, :created_at, :expires_at, :used_at)"
    " ON CONFLICT (id) DO NOTHING RETURNING id"
)
_CARD = (
    "SELECT card.*, permit.*, registration.* FROM card"
    " JOIN permit ON permit.id = card.permit_id"
    " JOIN registration ON registration.id = permit.registration_id WHERE card.serial = :serial"
)
_TAP_AUDIT = (
    "INSERT INTO audit_log (chain, position, actor_client_id, actor_department, action,"
    " subject, purpose, outcome, prev_hash, row_hash, at) VALUES (:chain, :position,"
    " :client_id, :department, 'verification.tap', :subject, :purpose, 'grant', :prev, :mac,"
    " :at)"
)
_TAP_COMBINED = (
    "WITH decided AS (INSERT INTO verification_decision (id, client_id, department, service,"
    " card_serial, decision, reasons, offline, decided_at, recorded_at) VALUES (:id,"
    " :client_id, :department, :service, :serial, 'grant', '[]', false, :at, :at)),"
    f" audited AS ({_TAP_AUDIT}) UPDATE audit_head SET row_hash = :mac WHERE id = :chain"
)
CHAINS = 16


TARGET_OVER_FLOOR = 3.0  # issue 18: a registration and a tap each within 3x of its floor


@dataclass(frozen=True)
class Floor:
    cpu_us: float  # this process's CPU per registration or tap
    wall_us: float
    count: int
    driver: str

    def finding(self, items: str, one: str, worker_us: float) -> str:
        """The report's line: `count` `items` through the driver against the worker's
        `worker_us` of CPU per `one`, and the verdict on the target."""
        over = worker_us / self.cpu_us
        return (
            f"Floor, measured after the rounds on the same database: {self.count:,} {items}"
            f" with the same statements and cryptography through {self.driver}"
            f" (bench/floors.py) cost this process **{self.cpu_us:,.0f} µs** of CPU each"
            f" ({self.wall_us:,.0f} µs wall clock); the worker spends {worker_us:,.0f} µs a"
            f" {one} (1 / its per-core rate): **{over:.1f}x** the floor."
            f" Target <= {TARGET_OVER_FLOOR:.0f}x: {verdict(over <= TARGET_OVER_FLOOR)}."
        )


def registration_floor(
    url: str, vault: CitizenIdVault, audit_key: bytes, people: list[str], today: date
) -> Floor:
    """Register `people` (18-character IDs nobody holds yet) one transaction each."""
    execute, commit, close, driver = _connect(url)
    pg = make_url(url).get_backend_name() == "postgresql"
    try:
        for chain in range(1, CHAINS + 1):  # the heads the hub opens at start-up
            execute(
                "INSERT INTO audit_head (id, seq, row_hash) VALUES (:chain, 0, :genesis)"
                " ON CONFLICT (id) DO NOTHING",
                {"chain": chain, "genesis": "0" * 64},
            )
        commit()

        def register(citizen: str, chain: int) -> None:
            _register(execute, vault, audit_key, CitizenId(citizen), today, chain, combined=pg)

        return _timed(people, register, commit, driver)
    finally:
        close()


Item = TypeVar("Item")


def _timed(
    items: Sequence[Item], one: Callable[[Item, int], None], commit: Callable[[], None], driver: str
) -> Floor:
    """`one` for each item (with the audit chain it appends to), a transaction each, timed."""
    cpu, wall = time.process_time(), time.perf_counter()
    for number, item in enumerate(items):
        one(item, number % CHAINS + 1)
        commit()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    count = len(items)
    return Floor(cpu / count * 1e6, wall / count * 1e6, count, driver)


Execute = Callable[[str, dict[str, Any]], Any]


def _register(
    execute: Execute,
    vault: CitizenIdVault,
    key: bytes,
    citizen: CitizenId,
    today: date,
    chain: int,
    *,
    combined: bool,
) -> None:
    now = datetime.now(UTC)
    lookup = vault.lookup_hash(citizen)
    registration = {
        "id": str(uuid.uuid4()),
        "hash": lookup,
        "sealed": vault.seal(citizen),
        "born": date(1980, 1, 1),
        "arrived": today,
        "today": today,
        "no": False,
        "at": now,
    }
    position, prev = execute(_ADVANCE, {"chain": chain}).fetchone()
    message = json.dumps([position, now.isoformat(), "public-security-floor", lookup, prev])
    mac = hmac.digest(key, message.encode(), "sha256").hex()
    audit = {"chain": chain, "position": position, "prev": prev, "mac": mac}
    if combined:
        execute(_COMBINED, {**registration, **audit})
    else:
        execute(_REGISTRATION, registration)
        execute(_AUDIT, {**audit, "hash": lookup, "at": now})
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


@dataclass(frozen=True)
class Window:
    """Who taps, and the keys a tap is checked with (the hub's own)."""

    client_id: str
    department: str
    service: str
    purpose: str
    challenge_key: bytes
    issuing_keys: Mapping[str, ec.EllipticCurvePublicKey]
    vault: CitizenIdVault
    audit_key: bytes


def tap_floor(url: str, window: Window, bodies: Sequence[bytes]) -> Floor:
    """Answer the tap `bodies` (each a new card and a fresh challenge of `window`'s), one
    transaction each; every one must be a grant."""
    execute, commit, close, driver = _connect(url)
    try:
        return _timed(
            bodies, lambda body, chain: _tap(execute, window, body, chain), commit, driver
        )
    finally:
        close()


class NotGranted(Exception):
    """A tap of the floor that the hub would not have granted: the floor's input is wrong."""


def _tap(execute: Execute, window: Window, body: bytes, chain: int) -> None:
    now = datetime.now(UTC)
    request = json.loads(body)
    record = base64.b64decode(request["record"])
    signature = base64.b64decode(request["card_signature"])
    challenge = challenges.check(
        window.challenge_key, window.client_id, uuid.UUID(request["challenge_id"]), now
    )
    if not isinstance(challenge, challenges.Challenge):
        raise NotGranted(f"challenge: {challenge}")
    used = {
        "id": str(challenge.id),
        "client_id": window.client_id,
        "nonce": challenge.nonce,
        "created_at": challenge.created_at,
        "expires_at": challenge.expires_at,
        "used_at": now,
    }
    if execute(_USE_CHALLENGE, used).fetchone() is None:
        raise NotGranted("challenge used")
    hashlib.sha256(record).digest()  # the hub's memo key for verified records
    signed = layout.decode(record)
    if not signed.verify(window.issuing_keys[signed.kid]):
        raise NotGranted("record forged")
    cursor = execute(_CARD, {"serial": signed.record.card.serial})
    found = dict(
        zip([column.name for column in cursor.description], cursor.fetchone(), strict=True)
    )
    if found["public_key"] != signed.record.card_key:
        raise NotGranted("card key")
    if not proves_possession(found["public_key"], challenge.nonce, signature):
        raise NotGranted("card not genuine")
    window.vault.open(found["citizen_id_sealed"])
    subject = found["citizen_id_hash"]
    position, prev = execute(_ADVANCE, {"chain": chain}).fetchone()
    message = json.dumps([position, now.isoformat(), window.client_id, subject, prev])
    mac = hmac.digest(window.audit_key, message.encode(), "sha256").hex()
    execute(
        _TAP_COMBINED,
        {
            "id": str(uuid.uuid4()),
            "client_id": window.client_id,
            "department": window.department,
            "service": window.service,
            "serial": signed.record.card.serial,
            "at": now,
            "chain": chain,
            "position": position,
            "subject": subject,
            "purpose": window.purpose,
            "prev": prev,
            "mac": mac,
        },
    )
