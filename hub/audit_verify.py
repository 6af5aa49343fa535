"""`hub audit verify`: every chain of the audit log checked, in parallel processes.

A chain's walk is Python work (a MAC per row), so threads would take turns on one core; each
worker process opens its own connection and walks whole chains, and the report is the chains'
reports in chain order. Progress is told as each chain finishes.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed

from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.audit import AuditLog, Progress, Start, VerifyReport, chains_in, heads
from hub.db import make_engine

_engine: Engine | None = None  # a worker process's own


def _connect(database_url: str) -> None:
    global _engine
    _engine = make_engine(database_url)


def _walk(key: bytes, chain: int, start: Start | None) -> VerifyReport:
    assert _engine is not None, "the worker was started without its database"
    with Session(_engine) as session:
        return AuditLog(key).verify_chain(session, chain, start=start)


def expected_rows(engine: Engine, starts: Mapping[int, Start] | None = None) -> int:
    """How many rows the heads say a walk will read (what progress counts towards)."""
    with Session(engine) as session:
        lengths = heads(session)
    skipped = starts or {}
    return sum(
        max(length - (skipped[chain].position if chain in skipped else 0), 0)
        for chain, length, _ in lengths
    )


def verify_all(
    engine: Engine,
    database_url: str,
    key: bytes,
    workers: int,
    progress: Progress,
    starts: Mapping[int, Start] | None = None,
) -> VerifyReport:
    """Walk every chain, `workers` at a time (in this process when 1), telling `progress`
    how many rows each finished walk read; a chain in `starts` from there on."""
    starts = starts or {}
    with Session(engine) as session:
        chains = chains_in(session)
        if workers <= 1 or len(chains) == 1:
            return AuditLog(key).walk(session, chains, progress, starts)
    reports: dict[int, VerifyReport] = {}
    spawn = multiprocessing.get_context("spawn")  # no connection inherited from this process
    with ProcessPoolExecutor(
        min(workers, len(chains)), mp_context=spawn, initializer=_connect, initargs=(database_url,)
    ) as pool:
        walks = {pool.submit(_walk, key, chain, starts.get(chain)): chain for chain in chains}
        for done in as_completed(walks):
            reports[walks[done]] = report = done.result()
            progress(report.rows_checked)
    return VerifyReport.joined([reports[chain] for chain in chains])
