"""The audit log in several chains, on both databases: a transaction's entries go to one
chain picked by its first subject, each chain starts from its own hash and has its own head,
every chain is verified (in parallel by `hub audit verify`) and a break is named by its chain;
on PostgreSQL, writers on different chains do not wait for each other."""

from __future__ import annotations

import gc
import hashlib
import threading
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.audit import (
    FIRST_CHAIN,
    GENESIS,
    AuditEntry,
    AuditEvent,
    AuditHead,
    AuditLog,
    Finding,
    FindingKind,
    chain_genesis,
)
from hub.db import make_engine, unit_of_work
from hub.keyring import Keyring
from hub.settings import Settings
from tests.commands import hub_env, run_hub

pytestmark = pytest.mark.new_database  # the rows its services write, counted from none

AT = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
CHAINS = 4


@pytest.fixture
def log(settings: Settings, engine: Engine) -> AuditLog:
    assert settings.secret_key is not None
    log = AuditLog(Keyring(settings.secret_key.encode()).derive("audit-chain"), chains=CHAINS)
    with unit_of_work(engine) as session:
        log.open_chains(session)
    return log


def subject_in(chain: int, n: int = 0) -> str:
    """The `n`th holder hash (as the hub writes subjects) whose entries go to `chain`."""
    found = 0
    for candidate in range(10_000):
        subject = hashlib.sha256(f"holder-{candidate}".encode()).hexdigest()
        if zlib.crc32(subject.encode()) % CHAINS + FIRST_CHAIN == chain:
            if found == n:
                return subject
            found += 1
    raise AssertionError("no subject found")


def event(subject: str | None, action: str = "permit.read") -> AuditEvent:
    return AuditEvent("housing-portal", action, "granted", "housing", subject, "rental subsidy")


def append(engine: Engine, log: AuditLog, *subjects: str | None) -> None:
    with unit_of_work(engine) as session:
        for subject in subjects:
            log.record(session, event(subject), AT)


def rows(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all())


def test_each_holder_s_entries_form_their_chain_from_its_own_start(
    engine: Engine, log: AuditLog
) -> None:
    for chain in range(1, CHAINS + 1):
        append(engine, log, subject_in(chain))
        append(engine, log, subject_in(chain, 1))
    append(engine, log, subject_in(3), subject_in(1))  # one transaction: one chain, the first's

    written = rows(engine)
    assert [row.seq for row in written] == list(range(1, 11))  # one order across chains
    by_chain: dict[int, list[AuditEntry]] = {}
    for row in written:
        by_chain.setdefault(row.chain, []).append(row)
    assert {chain: len(entries) for chain, entries in by_chain.items()} == {1: 2, 2: 2, 3: 4, 4: 2}
    for chain, entries in by_chain.items():
        assert [row.position for row in entries] == list(range(1, len(entries) + 1))
        assert entries[0].prev_hash == chain_genesis(log.key, chain)
    assert chain_genesis(log.key, 1) == GENESIS
    assert len({chain_genesis(log.key, chain) for chain in range(1, CHAINS + 1)}) == CHAINS

    with unit_of_work(engine) as session:
        report = log.verify(session)
        heads = {head.id: head.seq for head in session.exec(select(AuditHead)).all()}
    assert report.intact and report.rows_checked == 10 and report.chains == CHAINS
    assert heads == {1: 2, 2: 2, 3: 4, 4: 2}


def test_a_break_is_named_by_its_chain_and_a_moved_row_is_caught(
    engine: Engine, log: AuditLog
) -> None:
    for n in range(3):
        append(engine, log, subject_in(2, n))
        append(engine, log, subject_in(3, n))
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_log WHERE chain = 2 AND position = 2"))
        # A chain-3 row passed off as the start of chain 4 (its rows and head left alone).
        connection.execute(
            sa.text("UPDATE audit_log SET chain = 4 WHERE chain = 3 AND position = 1")
        )

    with unit_of_work(engine) as session:
        report = log.verify(session)

    assert report.findings == (
        Finding(FindingKind.DELETED, 2, 2, "missing before row 3", chain=2),
        Finding(FindingKind.DELETED, 1, 1, "missing before row 2", chain=3),
        # Genuine, but it does not follow chain 4's start, and chain 4's head never had it.
        Finding(FindingKind.DELETED, 0, 0, "replaced by a row that row 1 does not follow", chain=4),
        Finding(FindingKind.ALTERED, 0, 0, "the chain head does not match", chain=4),
    )


def test_a_chain_that_lost_its_head_is_still_walked(engine: Engine, log: AuditLog) -> None:
    append(engine, log, subject_in(4))
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_head WHERE id = 4"))

    with unit_of_work(engine) as session:
        report = log.verify(session)

    assert report.findings == (
        Finding(FindingKind.DELETED, 0, 0, "the chain head is gone", chain=4),
    )


def test_a_chain_first_written_by_a_process_configured_for_more_is_opened(
    engine: Engine, log: AuditLog
) -> None:
    wider = AuditLog(log.key, chains=CHAINS * 2)
    subject = next(
        hashlib.sha256(f"h{n}".encode()).hexdigest()
        for n in range(1000)
        if zlib.crc32(hashlib.sha256(f"h{n}".encode()).hexdigest().encode()) % (CHAINS * 2)
        >= CHAINS
    )
    append(engine, wider, subject)
    with unit_of_work(engine) as session:
        report = log.verify(session)  # a process configured for fewer still walks every chain
    assert report.intact and report.rows_checked == 1 and report.chains == CHAINS + 1


def test_the_command_walks_the_chains_in_parallel_and_names_a_break(
    engine: Engine, log: AuditLog, database_url: str, settings: Settings, tmp_path: Path
) -> None:
    for n in range(5):
        for chain in range(1, CHAINS + 1):
            append(engine, log, subject_in(chain, n))
    env = hub_env(database_url, HUB_AUDIT_CHAINS=str(CHAINS))

    intact = run_hub("audit", "verify", "--workers", "2", env=env)
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.strip() == f"audit log intact: 20 rows in {CHAINS} chains"

    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE audit_log SET outcome = 'denied' WHERE chain = 3 AND position = 4")
        )
    broken = run_hub("audit", "verify", "--workers", "2", env=env)
    assert broken.returncode == 1
    progress = [line for line in broken.stderr.splitlines() if line.startswith("audit verify:")]
    assert all(line.endswith("/s)") and " of 20 rows " in line for line in progress)
    assert [line for line in broken.stderr.splitlines() if line not in progress] == [
        f"hub: audit log broken in 1 place (20 rows read in {CHAINS} chains):",
        "  chain 3, row 4: altered (content changed)",
    ]


def test_writers_on_different_chains_do_not_wait_for_each_other(
    postgres_url: str, settings: Settings
) -> None:
    """An uncommitted append holds its chain's head: an append to another chain goes through
    at once, one to the same chain waits (lock_timeout turns the wait into an error)."""
    engine = make_engine(postgres_url, connect_args={"options": "-c lock_timeout=2000"})
    assert settings.secret_key is not None
    log = AuditLog(Keyring(settings.secret_key.encode()).derive("audit-chain"), chains=CHAINS)
    with unit_of_work(engine) as session:
        log.open_chains(session)
    holding = Session(engine)
    log.record(holding, event(subject_in(1, 7)), AT)  # chain 1's head held, uncommitted
    outcomes: dict[int, str] = {}

    def other(chain: int) -> None:
        try:
            append(engine, log, subject_in(chain, 7))
            outcomes[chain] = "appended"
        except sa.exc.OperationalError:
            outcomes[chain] = "waited"

    try:
        threads = [threading.Thread(target=other, args=(chain,)) for chain in (2, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        holding.rollback()
        holding.close()
        engine.dispose()
    assert outcomes == {2: "appended", 1: "waited"}


def test_an_audited_transaction_leaves_nothing_for_the_cycle_collector(
    engine: Engine, log: AuditLog
) -> None:
    """The chain a transaction appends to is remembered on its session without a reference
    cycle: every audited request left its session, connection and transaction for a full
    collection to find (some thirty objects each, 20-35 ms pauses inside taps at half load
    on a 2-core VM), where reference counting now frees them when the unit of work ends."""
    append(engine, log, "warm-up")
    gc.freeze()  # the collection below looks at what the appends make, not the whole suite's heap
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        append(engine, log, "holder-a", "holder-b")
        gc.collect()
        left = [type(found).__qualname__ for found in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.unfreeze()
    assert "Session" not in left and "SessionTransaction" not in left, left[:20]
