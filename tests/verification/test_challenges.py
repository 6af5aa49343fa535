"""Challenges made and checked without the database: the id's time, tag and nonce."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from hub.verification import challenges
from hub.verification.domain import CHALLENGE_BYTES, CHALLENGE_TTL, Reason

KEY = bytes(range(32))
NOW = datetime(2026, 11, 26, 3, 4, 5, 678_901, tzinfo=UTC)


def test_a_challenge_is_a_uuid7_of_its_millisecond_with_an_unpredictable_nonce() -> None:
    made = challenges.make(KEY, "window-1", NOW)
    assert made.id.version == 7
    assert made.id.variant == uuid.RFC_4122
    assert made.id.int >> 80 == int(NOW.timestamp() * 1000)
    assert made.created_at == NOW.replace(microsecond=678_000)
    assert made.expires_at == made.created_at + CHALLENGE_TTL
    assert len(made.nonce) == CHALLENGE_BYTES
    again = challenges.make(KEY, "window-1", NOW)
    assert again.id != made.id
    assert again.nonce != made.nonce


def test_the_hub_recomputes_the_challenge_it_gave_the_client() -> None:
    made = challenges.make(KEY, "window-1", NOW)
    assert challenges.check(KEY, "window-1", made.id, NOW + timedelta(seconds=3)) == made


@pytest.mark.parametrize(
    ("client", "key", "reason"),
    [
        ("window-2", KEY, Reason.CHALLENGE_UNKNOWN),  # another client's
        ("window-1", bytes(32), Reason.CHALLENGE_UNKNOWN),  # another hub's (key)
    ],
)
def test_a_challenge_given_to_someone_else_is_unknown(
    client: str, key: bytes, reason: Reason
) -> None:
    made = challenges.make(KEY, "window-1", NOW)
    assert challenges.check(key, client, made.id, NOW) == reason


def test_ids_the_hub_did_not_make_are_unknown() -> None:
    made = challenges.make(KEY, "window-1", NOW)
    forged_tag = uuid.UUID(int=made.id.int ^ 1)
    forged_time = uuid.UUID(int=made.id.int ^ (1 << 100))
    for challenge_id in (uuid.uuid4(), forged_tag, forged_time):
        assert challenges.check(KEY, "window-1", challenge_id, NOW) == Reason.CHALLENGE_UNKNOWN


def test_a_challenge_is_good_for_a_minute_and_not_from_the_future() -> None:
    made = challenges.make(KEY, "window-1", NOW)
    on_time = challenges.check(KEY, "window-1", made.id, made.created_at + CHALLENGE_TTL)
    assert on_time == made
    late = made.created_at + CHALLENGE_TTL + timedelta(milliseconds=1)
    assert challenges.check(KEY, "window-1", made.id, late) == Reason.CHALLENGE_EXPIRED
    # Made by a process whose clock runs ahead: taken within 5 s, refused beyond.
    assert challenges.check(KEY, "window-1", made.id, NOW - timedelta(seconds=4)) == made
    early = NOW - timedelta(seconds=6)
    assert challenges.check(KEY, "window-1", made.id, early) == Reason.CHALLENGE_UNKNOWN
