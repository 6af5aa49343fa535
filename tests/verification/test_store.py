"""The used-challenge rows: one per use, the first use wins, purged once long expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub.db import unit_of_work
from hub.verification import challenges, store
from hub.verification.domain import CHALLENGE_TTL

KEY = bytes(range(32))
NOW = datetime(2026, 11, 26, 3, 4, 5, tzinfo=UTC)


def used_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(sa.select(store.CHALLENGES.c.id)).scalars())


def test_a_challenge_is_used_once(engine: Engine) -> None:
    made = challenges.make(KEY, "window-1", NOW)
    with unit_of_work(engine) as session:
        assert store.use_challenge(session, made, "window-1", NOW)
    with unit_of_work(engine) as session:
        assert not store.use_challenge(session, made, "window-1", NOW + timedelta(seconds=1))
    assert used_ids(engine) == {str(made.id)}


def test_used_rows_are_purged_once_past_their_keeping(engine: Engine) -> None:
    expired_before = NOW - store.CHALLENGE_KEPT - CHALLENGE_TTL
    long_ago = challenges.make(KEY, "window-1", expired_before - timedelta(seconds=1))
    recently = challenges.make(KEY, "window-2", expired_before + timedelta(seconds=1))
    fresh = [challenges.make(KEY, "window-3", NOW) for _ in range(store.PURGE_EVERY)]
    with unit_of_work(engine) as session:
        assert store.use_challenge(session, long_ago, "window-1", long_ago.created_at)
        assert store.use_challenge(session, recently, "window-2", recently.created_at)
        for challenge in fresh:  # one use in PURGE_EVERY purges
            assert store.use_challenge(session, challenge, "window-3", NOW)
    assert used_ids(engine) == {str(recently.id), *(str(challenge.id) for challenge in fresh)}


def test_a_purge_takes_the_oldest_few_not_everything_aged_out(engine: Engine) -> None:
    """A backlog of aged-out rows (a busy hour's, after a restart) goes a batch per purge,
    the oldest first, so no tap pays for all of it."""
    expired_before = NOW - store.CHALLENGE_KEPT - CHALLENGE_TTL
    backlog = [
        challenges.make(KEY, "window-1", expired_before - timedelta(seconds=n + 1))
        for n in range(store.PURGE_AT_ONCE + 5)
    ]
    fresh = [challenges.make(KEY, "window-3", NOW) for _ in range(store.PURGE_EVERY)]
    with unit_of_work(engine) as session:
        for old in backlog:
            assert store.use_challenge(session, old, "window-1", old.created_at)
    with unit_of_work(engine) as session:
        for challenge in fresh:  # one use in PURGE_EVERY purges
            assert store.use_challenge(session, challenge, "window-3", NOW)
    newest_five = {str(old.id) for old in backlog[:5]}
    assert used_ids(engine) == newest_five | {str(challenge.id) for challenge in fresh}
