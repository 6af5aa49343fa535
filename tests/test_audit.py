"""The hash-chained audit log: writing, verifying, tampering, concurrency and subject privacy.

Tampering is done the way an attacker with database access would do it: raw SQL against the
`audit_log` and `audit_head` tables (reflected from the database, not through the hub's
models), on SQLite and on PostgreSQL. The attacker may know how the chain is built but not the
master secret, so re-computed hashes are plain SHA-256 or an HMAC under a guessed key.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.audit import (
    GENESIS,
    PROGRESS_ROWS,
    AuditEntry,
    AuditEvent,
    AuditHead,
    AuditLog,
    Finding,
    FindingKind,
    VerifyReport,
    check_chain,
)
from hub.db import make_engine, unit_of_work
from hub.keyring import Keyring, SubjectHasher
from hub.settings import Settings

pytestmark = pytest.mark.new_database  # the rows its services write, counted from none

ROOT = Path(__file__).resolve().parents[1]
HUB_COMMAND = Path(sys.executable).parent / "hub"
CONFIG = ROOT / "config" / "hub.toml"
START = datetime(2026, 11, 25, 9, 30, 0, 123456, tzinfo=UTC)
HEX64 = re.compile(r"[0-9a-f]{64}")
CITIZEN_ID = "11010519491231002X"  # made up, in the 18-character format


def audit_key(secret: str) -> bytes:
    """The key the hub itself uses (hub.composition.build_hub), so the CLI agrees with the tests."""
    return Keyring(secret.encode()).derive("audit-chain")


@pytest.fixture
def log(settings: Settings) -> AuditLog:
    assert settings.secret_key is not None
    return AuditLog(audit_key(settings.secret_key))


def event(number: int, **overrides: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "actor_client_id": "housing-portal",
        "actor_department": "housing",
        "action": "permit.read",
        "subject": hashlib.sha256(f"subject-{number}".encode()).hexdigest(),
        "purpose": "rental subsidy check",
        "outcome": "granted",
    }
    fields.update(overrides)
    return AuditEvent(**fields)


def record(engine: Engine, log: AuditLog, count: int, first: int = 1) -> None:
    """One transaction per entry, as requests write them."""
    for number in range(first, first + count):
        with unit_of_work(engine) as session:
            log.record(session, event(number), START + timedelta(seconds=number))


def verify(engine: Engine, log: AuditLog) -> VerifyReport:
    with unit_of_work(engine) as session:
        return log.verify(session)


def tables(engine: Engine) -> tuple[sa.Table, sa.Table]:
    """The attacker's view: the tables as the database describes them."""
    metadata = sa.MetaData()
    metadata.reflect(engine, only=["audit_log", "audit_head"])
    return metadata.tables["audit_log"], metadata.tables["audit_head"]


def raw_rows(engine: Engine) -> list[dict[str, Any]]:
    audit_log, _ = tables(engine)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(audit_log).order_by(audit_log.c.seq))
        return [dict(row._mapping) for row in rows]


def raw_head(engine: Engine) -> dict[str, Any]:
    _, audit_head = tables(engine)
    with engine.connect() as connection:
        return dict(connection.execute(sa.select(audit_head)).one()._mapping)


def execute(engine: Engine, statement: str, **params: Any) -> int:
    with engine.begin() as connection:
        return connection.execute(sa.text(statement), params).rowcount


def forged_hash(row: dict[str, Any], key: bytes | None = None) -> str:
    """What an attacker who read this module but lacks the key can compute for a row."""
    at = row["at"]
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    content = [
        row["position"],
        at.isoformat(timespec="microseconds"),
        row["actor_client_id"],
        row["actor_department"],
        row["action"],
        row["subject"],
        row["purpose"],
        row["outcome"],
        row["prev_hash"],
    ]
    message = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def insert_row(engine: Engine, row: dict[str, Any]) -> None:
    audit_log, _ = tables(engine)
    with engine.begin() as connection:
        connection.execute(audit_log.insert().values(**row))


# --- an untouched chain -------------------------------------------------------------------


def test_empty_log_is_intact(engine: Engine, log: AuditLog) -> None:
    report = verify(engine, log)
    assert report.intact
    assert report.rows_checked == 0
    assert report.findings == ()


def test_recorded_entries_form_an_intact_chain(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 7)

    report = verify(engine, log)

    assert report.intact
    assert report.rows_checked == 7
    rows = raw_rows(engine)
    assert [row["seq"] for row in rows] == list(range(1, 8))
    assert rows[0]["prev_hash"] == GENESIS
    for previous, row in itertools.pairwise(rows):
        assert row["prev_hash"] == previous["row_hash"]
    assert all(HEX64.fullmatch(row["row_hash"]) for row in rows)
    assert len({row["row_hash"] for row in rows}) == 7
    head = raw_head(engine)
    assert (head["seq"], head["row_hash"]) == (7, rows[-1]["row_hash"])


def test_entry_keeps_every_field_and_the_time_in_utc(engine: Engine, log: AuditLog) -> None:
    beijing = timezone(timedelta(hours=8))
    at = datetime(2026, 11, 25, 17, 30, 0, 654321, tzinfo=beijing)
    happened = AuditEvent(
        actor_client_id="hr-batch",
        actor_department="human-resources",
        action="permit.endorse",
        outcome="refused",
        subject="a" * 64,
        purpose="居住证签注",
    )
    with unit_of_work(engine) as session:
        written = log.record(session, happened, at)
    assert (written["chain"], written["position"]) == (1, 1)

    with unit_of_work(engine) as session:
        stored = session.get(AuditEntry, 1)
        assert stored is not None
        assert stored.actor_client_id == "hr-batch"
        assert stored.actor_department == "human-resources"
        assert stored.action == "permit.endorse"
        assert stored.outcome == "refused"
        assert stored.subject == "a" * 64
        assert stored.purpose == "居住证签注"
        moment = stored.at if stored.at.tzinfo else stored.at.replace(tzinfo=UTC)
        assert moment == at
        assert moment.astimezone(UTC).hour == 9
    assert verify(engine, log).intact


def test_optional_fields_may_be_empty(engine: Engine, log: AuditLog) -> None:
    with unit_of_work(engine) as session:
        log.record(session, AuditEvent("hub-admin", "key.rotate", "rotated"), START)
    report = verify(engine, log)
    assert report.intact and report.rows_checked == 1
    row = raw_rows(engine)[0]
    assert (row["actor_department"], row["subject"], row["purpose"]) == (None, None, None)


def test_entry_is_part_of_the_callers_transaction(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 2)
    with pytest.raises(RuntimeError), unit_of_work(engine) as session:
        log.record(session, event(3), START)
        raise RuntimeError("the action being recorded failed")

    assert [row["seq"] for row in raw_rows(engine)] == [1, 2]
    assert raw_head(engine)["seq"] == 2
    record(engine, log, 1, first=3)
    report = verify(engine, log)
    assert report.intact and report.rows_checked == 3


def test_several_entries_in_one_transaction(engine: Engine, log: AuditLog) -> None:
    with unit_of_work(engine) as session:
        entries = [log.record(session, event(n), START) for n in range(1, 4)]
    assert [entry["position"] for entry in entries] == [1, 2, 3]
    report = verify(engine, log)
    assert report.intact and report.rows_checked == 3


def test_a_session_reused_across_transactions_sees_other_writers(
    engine: Engine, log: AuditLog
) -> None:
    """A long-lived session (expire_on_commit=False) must not append from a stale head."""
    with Session(engine, expire_on_commit=False) as session:
        log.record(session, event(1), START)
        head = session.get(AuditHead, 1)  # e.g. shown on a status page; stays in the session
        session.commit()
        assert head is not None and head.seq == 1
        record(engine, log, 2, first=2)  # another request, another session
        entry = log.record(session, event(4), START)
        session.commit()
        assert entry["position"] == 4
        report = log.verify(session)
        assert report.intact and report.rows_checked == 4
        session.commit()
    assert verify(engine, log).intact


def _engine_in_zone(database_url: str, zone: str) -> Engine:
    if database_url.startswith("postgresql"):
        return make_engine(database_url, connect_args={"options": f"-c timezone={zone}"})
    return make_engine(database_url)


def test_chain_does_not_depend_on_the_database_session_time_zone(
    database_url: str, log: AuditLog
) -> None:
    """A PostgreSQL server or role configured for Asia/Shanghai must not break the chain."""
    shanghai = _engine_in_zone(database_url, "Asia/Shanghai")
    utc = _engine_in_zone(database_url, "UTC")
    try:
        record(shanghai, log, 2)
        record(utc, log, 2, first=3)
        for engine in (shanghai, utc):
            report = verify(engine, log)
            assert report.intact, report.findings
            assert report.rows_checked == 4
        with unit_of_work(utc) as session:
            stored = session.get(AuditEntry, 1)
            assert stored is not None
            moment = stored.at if stored.at.tzinfo else stored.at.replace(tzinfo=UTC)
            assert moment == START + timedelta(seconds=1)
    finally:
        shanghai.dispose()
        utc.dispose()


# --- tampering: every break is listed -----------------------------------------------------

ALTERED, DELETED, INSERTED = FindingKind.ALTERED, FindingKind.DELETED, FindingKind.INSERTED


def found(engine: Engine, log: AuditLog) -> list[tuple[FindingKind, int, int]]:
    """Each finding as (kind, first row, last row)."""
    return [(f.kind, f.first, f.last) for f in verify(engine, log).findings]


def test_altered_outcome_is_found_at_that_row(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 6)
    assert execute(engine, "UPDATE audit_log SET outcome = 'denied' WHERE seq = 4") == 1

    report = verify(engine, log)

    assert not report.intact
    assert report.findings == (Finding(ALTERED, 4, 4, "content changed"),)
    assert report.rows_checked == 6
    assert str(report.findings[0]) == "row 4: altered (content changed)"


@pytest.mark.parametrize(
    "column, value",
    [
        ("actor_client_id", "someone-else"),
        ("actor_department", "education"),
        ("action", "permit.list"),
        ("subject", "b" * 64),
        ("purpose", None),
        ("prev_hash", GENESIS),
    ],
)
def test_any_altered_column_is_found(
    engine: Engine, log: AuditLog, column: str, value: str | None
) -> None:
    record(engine, log, 4)
    execute(engine, f"UPDATE audit_log SET {column} = :value WHERE seq = 2", value=value)
    assert found(engine, log) == [(ALTERED, 2, 2)]


def test_altered_last_row_is_found(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 3)
    execute(engine, "UPDATE audit_log SET outcome = 'granted!' WHERE seq = 3")
    assert found(engine, log) == [(ALTERED, 3, 3)]


def test_altered_timestamp_is_found(engine: Engine, log: AuditLog) -> None:
    """Even moving an entry by one microsecond."""
    record(engine, log, 5)
    audit_log, _ = tables(engine)
    original = raw_rows(engine)[2]["at"]
    with engine.begin() as connection:
        connection.execute(
            audit_log.update()
            .where(audit_log.c.seq == 3)
            .values(at=original + timedelta(microseconds=1))
        )
    assert found(engine, log) == [(ALTERED, 3, 3)]


def test_deleted_middle_row_is_named(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 6)
    assert execute(engine, "DELETE FROM audit_log WHERE seq = 3") == 1

    report = verify(engine, log)

    assert report.findings == (Finding(DELETED, 3, 3, "missing before row 4"),)
    assert report.rows_checked == 5


def test_deleted_run_of_rows_is_one_range(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 8)
    execute(engine, "DELETE FROM audit_log WHERE seq BETWEEN 4 AND 6")
    (finding,) = verify(engine, log).findings
    assert str(finding) == "rows 4..6: deleted (missing before row 7)"


def test_deleted_first_row_is_named(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 3)
    execute(engine, "DELETE FROM audit_log WHERE seq = 1")
    assert found(engine, log) == [(DELETED, 1, 1)]


def test_deleted_last_row_is_found_by_the_head(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 5)
    execute(engine, "DELETE FROM audit_log WHERE seq = 5")

    report = verify(engine, log)

    assert report.findings == (Finding(DELETED, 5, 5, "missing at the end"),)
    assert report.rows_checked == 4


def test_every_row_deleted_is_found(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 4)
    execute(engine, "DELETE FROM audit_log")
    report = verify(engine, log)
    assert report.findings == (Finding(DELETED, 1, 4, "missing at the end"),)
    assert report.rows_checked == 0


def test_forged_row_in_place_of_a_deleted_one_is_inserted_and_deleted(
    engine: Engine, log: AuditLog
) -> None:
    """The forged row is not the hub's, and the row the next one follows is gone."""
    record(engine, log, 6)
    rows = raw_rows(engine)
    execute(engine, "DELETE FROM audit_log WHERE seq = 3")
    forged = rows[2] | {"outcome": "denied", "row_hash": "f" * 64}
    assert forged["prev_hash"] == rows[1]["row_hash"]  # links correctly backwards
    insert_row(engine, forged)

    assert found(engine, log) == [(INSERTED, 3, 3), (DELETED, 3, 3)]


def test_forged_row_appended_after_the_last_is_inserted(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 4)
    last = raw_rows(engine)[-1]
    forged = last | {
        "seq": 5,
        "position": 5,
        "prev_hash": last["row_hash"],
        "at": last["at"] + timedelta(seconds=1),
        "row_hash": "0123456789abcdef" * 4,
    }
    insert_row(engine, forged)

    report = verify(engine, log)

    assert report.findings == (Finding(INSERTED, 5, 5, "not written by the hub"),)
    assert report.rows_checked == 5


@pytest.mark.parametrize("guessed_key", [None, b"not-the-hub-key"], ids=["sha256", "hmac"])
def test_rechained_forgery_without_the_key_is_caught(
    engine: Engine, log: AuditLog, guessed_key: bytes | None
) -> None:
    """The attacker alters row 3, then re-chains every later row and the head consistently:
    every row from 3 on fails its MAC, and they are listed as one run."""
    record(engine, log, 6)
    rows = raw_rows(engine)
    rows[2]["outcome"] = "denied"
    previous = rows[1]["row_hash"]
    audit_log, audit_head = tables(engine)
    with engine.begin() as connection:
        for row in rows[2:]:
            row["prev_hash"] = previous
            row["row_hash"] = previous = forged_hash(row, guessed_key)
            connection.execute(
                audit_log.update().where(audit_log.c.seq == row["seq"]).values(**row)
            )
        connection.execute(audit_head.update().values(row_hash=previous))
    assert check_links(raw_rows(engine), raw_head(engine))  # the forgery links perfectly

    (finding,) = verify(engine, log).findings

    assert str(finding) == "rows 3..6: altered (content changed)"


def check_links(rows: list[dict[str, Any]], head: dict[str, Any]) -> bool:
    hashes = [GENESIS] + [row["row_hash"] for row in rows]
    return [row["prev_hash"] for row in rows] == hashes[:-1] and head["row_hash"] == hashes[-1]


def test_forged_row_with_a_sha256_hash_is_inserted(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 3)
    last = raw_rows(engine)[-1]
    forged = last | {
        "seq": 4,
        "position": 4,
        "prev_hash": last["row_hash"],
        "action": "permit.delete",
    }
    forged["row_hash"] = forged_hash(forged)
    insert_row(engine, forged)
    assert found(engine, log) == [(INSERTED, 4, 4)]


def test_rewritten_head_is_found(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 3)
    execute(engine, "UPDATE audit_head SET row_hash = :fake", fake="e" * 64)
    report = verify(engine, log)
    assert report.findings == (Finding(ALTERED, 3, 3, "the chain head does not match"),)


def test_deleted_head_is_found_and_the_rows_still_checked(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 4)
    execute(engine, "DELETE FROM audit_head")
    execute(engine, "UPDATE audit_log SET outcome = 'x' WHERE seq = 2")
    report = verify(engine, log)
    assert found(engine, log) == [(ALTERED, 2, 2), (DELETED, 0, 0)]
    assert str(report.findings[1]) == "row 0: deleted (the chain head is gone)"
    assert report.rows_checked == 4


@pytest.mark.parametrize(
    "assignment",
    ["at = 'yesterday'", "at = 5", "outcome = x'00ff'", "outcome = 5"],
    ids=["text-time", "number-time", "blob-text", "number-text"],
)
def test_value_of_the_wrong_type_is_altered_not_a_crash(
    engine: Engine, log: AuditLog, assignment: str
) -> None:
    """SQLite stores whatever raw SQL gives it; PostgreSQL casts it or refuses it."""
    record(engine, log, 3)
    try:
        execute(engine, f"UPDATE audit_log SET {assignment} WHERE seq = 2")
    except sa.exc.DBAPIError:
        assert engine.dialect.name == "postgresql"  # integer into timestamptz
        assert verify(engine, log).intact
        return

    assert found(engine, log) == [(ALTERED, 2, 2)]


def test_verify_with_another_key_lists_every_row_as_one_run(engine: Engine, log: AuditLog) -> None:
    record(engine, log, 4)
    for key in (
        audit_key("another-master-secret-0123456789abcdef-0123"),
        Keyring(log.key).derive("subject-hash"),
    ):
        report = verify(engine, AuditLog(key))
        assert found(engine, AuditLog(key)) == [(ALTERED, 1, 4)]
        assert report.rows_checked == 4
    assert verify(engine, log).intact


def test_verify_goes_on_past_a_break_and_lists_every_one(engine: Engine, log: AuditLog) -> None:
    """Two rows altered far apart and a row deleted between them: three findings, in order."""
    record(engine, log, 30)
    execute(engine, "UPDATE audit_log SET outcome = 'x' WHERE seq = 3")
    execute(engine, "DELETE FROM audit_log WHERE seq = 15")
    execute(engine, "UPDATE audit_log SET purpose = 'y' WHERE seq = 27")

    report = verify(engine, log)

    assert [str(finding) for finding in report.findings] == [
        "row 3: altered (content changed)",
        "row 15: deleted (missing before row 16)",
        "row 27: altered (content changed)",
    ]
    assert report.rows_checked == 29


def test_every_kind_of_break_in_one_log(engine: Engine, log: AuditLog) -> None:
    """Altered, a deleted range, a replaced row, a run of altered rows and a rewound head,
    each found after the others, so none hides another."""
    record(engine, log, 20)
    execute(engine, "UPDATE audit_log SET outcome = 'x' WHERE seq = 2")
    execute(engine, "DELETE FROM audit_log WHERE seq BETWEEN 5 AND 7")
    execute(engine, "UPDATE audit_log SET row_hash = :forged WHERE seq = 10", forged="c" * 64)
    execute(engine, "UPDATE audit_log SET action = 'permit.list' WHERE seq IN (12, 13)")
    execute(engine, "UPDATE audit_head SET row_hash = :fake", fake="e" * 64)

    report = verify(engine, log)

    assert [str(finding) for finding in report.findings] == [
        "row 2: altered (content changed)",
        "rows 5..7: deleted (missing before row 8)",
        "row 10: inserted (not written by the hub)",
        "row 10: deleted (missing before row 11)",
        "rows 12..13: altered (content changed)",
        "row 20: altered (the chain head does not match)",
    ]
    assert report.rows_checked == 17


def test_check_chain_accepts_any_iterable(log: AuditLog) -> None:
    """The chain check is pure: rows may come from a stream, not only from a list."""
    head = AuditHead(seq=0, row_hash=GENESIS)
    entries: list[AuditEntry] = []
    for number in range(1, 4):
        entry = AuditEntry(
            position=number,
            at=START,
            actor_client_id="c",
            action="a",
            outcome="o",
            prev_hash=head.row_hash,
            row_hash="",
        )
        entry.row_hash = forged_hash(entry.model_dump(), log.key)
        head = AuditHead(seq=number, row_hash=entry.row_hash)
        entries.append(entry)
    assert check_chain(log.key, iter(entries), head) == VerifyReport(3, ())
    truncated = check_chain(log.key, iter(entries[:2]), head)
    assert truncated.findings == (Finding(DELETED, 3, 3, "missing at the end"),)


# --- text neither database can store ------------------------------------------------------


def test_a_nul_in_a_purpose_is_stored_as_maced(engine: Engine, log: AuditLog) -> None:
    """PostgreSQL text cannot hold U+0000 and SQLite's json_extract cuts the string at it:
    the entry is written with U+FFFD in its place, MACed as stored, and verifies."""
    with unit_of_work(engine) as session:
        written = log.record(session, event(1, purpose="rental\x00 subsidy"), START)
    record(engine, log, 2, first=2)

    assert written["purpose"] == "rental\ufffd subsidy"
    assert [row["purpose"] for row in raw_rows(engine)] == [
        "rental\ufffd subsidy",
        "rental subsidy check",
        "rental subsidy check",
    ]
    report = verify(engine, log)
    assert report.intact, report.findings
    assert report.rows_checked == 3


def test_text_no_driver_can_send_is_stored_as_maced(engine: Engine, log: AuditLog) -> None:
    """Every field, in a batch: NULs and lone surrogates (a JSON body may carry "\\ud800")."""
    odd = event(
        1,
        actor_client_id="client\x00",
        actor_department="\ud800housing",
        action="permit.\udfffread",
        subject="\x00" * 2,
        purpose="a\x00b\ud83dc",
        outcome="granted\x00",
    )
    literal = event(2, purpose="a backslash-u0000 as typed: \\u0000")
    with unit_of_work(engine) as session:
        rows = log.record_many(session, [odd, literal], START)

    stored = raw_rows(engine)
    expected = {
        "actor_client_id": "client\ufffd",
        "actor_department": "\ufffdhousing",
        "action": "permit.\ufffdread",
        "subject": "\ufffd\ufffd",
        "purpose": "a\ufffdb\ufffdc",
        "outcome": "granted\ufffd",
    }
    for row in (rows[0], stored[0]):
        assert {name: row[name] for name in expected} == expected
    assert stored[1]["purpose"] == rows[1]["purpose"] == "a backslash-u0000 as typed: \\u0000"
    assert verify(engine, log).intact


def test_an_attacker_writing_a_nul_is_found(engine: Engine, log: AuditLog) -> None:
    """U+FFFD is what the hub stores; a NUL put back by raw SQL on SQLite is an alteration."""
    with unit_of_work(engine) as session:
        log.record(session, event(1, purpose="a\x00b"), START)
    record(engine, log, 1, first=2)
    if engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DataError):
            execute(engine, "UPDATE audit_log SET purpose = :p WHERE seq = 1", p="a\x00b")
        assert verify(engine, log).intact
        return
    execute(engine, "UPDATE audit_log SET purpose = :p WHERE seq = 1", p="a\x00b")
    assert found(engine, log) == [(ALTERED, 1, 1)]


# --- the command line ---------------------------------------------------------------------


def run_verify(database_url: str, secret: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("HUB_")}
    env |= {"HUB_DATABASE_URL": database_url, "HUB_SECRET_KEY": secret, "HUB_CONFIG": str(CONFIG)}
    return subprocess.run(
        [str(HUB_COMMAND), "audit", "verify"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_reports_an_intact_chain(
    engine: Engine, log: AuditLog, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    assert HUB_COMMAND.is_file()
    assert settings.secret_key is not None
    record(engine, log, 5)

    result = run_verify(database_url, settings.secret_key, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "audit log intact: 5 rows"
    assert result.stderr == ""


@pytest.mark.parametrize(
    "tamper, header, listed",
    [
        (
            "UPDATE audit_log SET outcome = 'denied' WHERE seq = 2",
            "1 place (5 rows read)",
            ["row 2: altered"],
        ),
        ("DELETE FROM audit_log WHERE seq = 3", "1 place (4 rows read)", ["row 3: deleted"]),
        ("DELETE FROM audit_log WHERE seq = 5", "1 place (4 rows read)", ["row 5: deleted"]),
        (
            "UPDATE audit_log SET row_hash = 'ab' || substr(row_hash, 3) WHERE seq = 4",
            "2 places (5 rows read)",
            ["row 4: inserted", "row 4: deleted"],
        ),
    ],
    ids=["altered", "deleted-middle", "deleted-last", "rehashed"],
)
def test_cli_names_a_broken_row(
    engine: Engine,
    log: AuditLog,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
    tamper: str,
    header: str,
    listed: list[str],
) -> None:
    assert settings.secret_key is not None
    record(engine, log, 5)
    execute(engine, tamper)

    result = run_verify(database_url, settings.secret_key, tmp_path)

    assert result.returncode == 1
    assert result.stdout == ""
    first, *lines = result.stderr.splitlines()
    assert first == f"hub: audit log broken in {header}:"
    assert [line.split(" (")[0].strip() for line in lines] == listed


def test_cli_lists_every_broken_row(
    engine: Engine, log: AuditLog, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    assert settings.secret_key is not None
    record(engine, log, 30)
    execute(engine, "UPDATE audit_log SET outcome = 'x' WHERE seq = 3")
    execute(engine, "DELETE FROM audit_log WHERE seq = 15")
    execute(engine, "UPDATE audit_log SET purpose = 'y' WHERE seq = 27")
    last = raw_rows(engine)[-1]
    insert_row(
        engine,
        last | {"seq": 31, "position": 31, "prev_hash": last["row_hash"], "row_hash": "1" * 64},
    )

    result = run_verify(database_url, settings.secret_key, tmp_path)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "hub: audit log broken in 4 places (30 rows read):",
        "  row 3: altered (content changed)",
        "  row 15: deleted (missing before row 16)",
        "  row 27: altered (content changed)",
        "  row 31: inserted (not written by the hub)",
    ]


def test_cli_with_another_secret_refuses_the_database(
    engine: Engine, log: AuditLog, database_url: str, tmp_path: Path
) -> None:
    """A database from before check values: its audit log tells the secrets apart, and the
    wrong one neither lists false breaks nor claims the database."""
    record(engine, log, 2)
    result = run_verify(database_url, "a-different-master-secret-0123456789abcdef", tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "belongs to another master secret than this host's (HUB_SECRET_KEY)" in line
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM master_key_check")).scalar() == 0


# --- concurrency --------------------------------------------------------------------------


def _append(url: str, key: bytes, actor: str, count: int, start: Any) -> None:
    """Runs in a child process with its own engine, as a second hub worker would."""
    engine = make_engine(url)
    log = AuditLog(key)
    start.wait(timeout=60)
    try:
        for number in range(count):
            with unit_of_work(engine) as session:
                log.record(
                    session,
                    AuditEvent(actor, "test.append", str(number)),
                    datetime.now(UTC),
                )
            time.sleep(0.005)  # the gap between two requests: lets the other worker in
    finally:
        engine.dispose()


def _run_appenders(url: str, key: bytes, actors: list[str], count: int) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(actors))
    processes = [
        context.Process(target=_append, args=(url, key, actor, count, start)) for actor in actors
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=180)
    assert [process.exitcode for process in processes] == [0] * len(actors)


def test_concurrent_appenders_in_two_processes(
    engine: Engine, log: AuditLog, database_url: str
) -> None:
    _run_appenders(database_url, log.key, ["worker-a", "worker-b"], 50)

    report = verify(engine, log)

    assert report.intact, report.findings
    assert report.rows_checked == 100
    rows = raw_rows(engine)
    assert [row["seq"] for row in rows] == list(range(1, 101))
    for actor in ("worker-a", "worker-b"):
        mine = [row["outcome"] for row in rows if row["actor_client_id"] == actor]
        assert mine == [str(number) for number in range(50)]  # each worker's order kept
    assert raw_head(engine)["seq"] == 100
    handovers = sum(
        a["actor_client_id"] != b["actor_client_id"] for a, b in itertools.pairwise(rows)
    )
    assert handovers >= 10  # the workers really interleaved rather than ran one after the other


def test_concurrent_appenders_in_two_threads(engine: Engine, log: AuditLog) -> None:
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def append(actor: str) -> None:
        try:
            start.wait(timeout=30)
            for number in range(50):
                with unit_of_work(engine) as session:
                    log.record(session, AuditEvent(actor, "test.append", str(number)), START)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(name,)) for name in ("t-1", "t-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    report = verify(engine, log)
    assert report.intact, report.findings
    assert report.rows_checked == 100
    assert [row["seq"] for row in raw_rows(engine)] == list(range(1, 101))


def test_verify_while_appending_never_reports_a_false_break(
    engine: Engine, log: AuditLog, database_url: str
) -> None:
    """Rows and head must be read as one consistent state while another worker commits."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    writer = context.Process(target=_append, args=(database_url, log.key, "writer", 150, start))
    writer.start()
    start.wait(timeout=60)
    reports: list[VerifyReport] = []
    while writer.is_alive():
        reports.append(verify(engine, log))
        time.sleep(0.002)  # on SQLite each verify holds the write lock; let the writer in
    writer.join(timeout=180)
    assert writer.exitcode == 0

    broken = [report.findings for report in reports if not report.intact]
    assert broken == []
    assert len({report.rows_checked for report in reports}) >= 5  # it saw the log grow
    final = verify(engine, log)
    assert final.intact and final.rows_checked == 150


# --- subject privacy ----------------------------------------------------------------------


@pytest.fixture
def hasher(settings: Settings) -> SubjectHasher:
    assert settings.secret_key is not None
    return Keyring(settings.secret_key.encode()).subject_hasher()


def test_subject_hash_is_a_keyed_64_hex_digest(hasher: SubjectHasher) -> None:
    digest = hasher(CITIZEN_ID)
    assert HEX64.fullmatch(digest)
    assert hasher(CITIZEN_ID) == digest
    assert hasher(" 11010519491231002x ") == digest  # the same ID, as typed at a counter
    assert hasher("110105194912310038") != digest
    assert digest != hashlib.sha256(CITIZEN_ID.encode()).hexdigest()  # keyed: not guessable


def test_subject_hash_depends_on_the_key(hasher: SubjectHasher) -> None:
    other = Keyring(b"another-master-secret-0123456789abcdef-0123").subject_hasher()
    assert other(CITIZEN_ID) != hasher(CITIZEN_ID)
    audit_purpose = SubjectHasher(Keyring(b"x" * 32).derive("audit-chain"))
    subject_purpose = Keyring(b"x" * 32).subject_hasher()
    assert audit_purpose(CITIZEN_ID) != subject_purpose(CITIZEN_ID)


def test_clear_citizen_id_never_reaches_the_stored_row(
    engine: Engine, log: AuditLog, hasher: SubjectHasher
) -> None:
    with unit_of_work(engine) as session:
        log.record(session, event(1, subject=hasher(CITIZEN_ID)), START)
    assert verify(engine, log).intact

    stored = raw_rows(engine)
    assert stored[0]["subject"] == hasher(CITIZEN_ID)
    dump = json.dumps(stored, default=str).upper()
    assert CITIZEN_ID not in dump
    assert CITIZEN_ID[:-1] not in dump  # not even the digits without the check character
    with engine.connect() as connection:
        found = connection.execute(
            sa.text("SELECT count(*) FROM audit_log WHERE subject = :id"), {"id": CITIZEN_ID}
        ).scalar_one()
    assert found == 0


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    for child in multiprocessing.active_children():
        child.terminate()
        child.join(timeout=10)


def test_a_long_walk_reports_its_progress(engine: Engine, log: AuditLog) -> None:
    count = PROGRESS_ROWS * 2 + 5
    with unit_of_work(engine) as session:
        log.record_many(session, [event(n) for n in range(count)], START)
    told: list[int] = []

    with unit_of_work(engine) as session:
        report = log.verify(session, progress=told.append)

    assert report.intact and report.rows_checked == count
    assert told == [PROGRESS_ROWS, PROGRESS_ROWS]
