"""The hub's tap challenges, made and checked without the database.

A window asks for a challenge before every tap, so storing each one cost a transaction per
tap on top of the tap's own. Instead a challenge id says when it was made and carries a MAC
binding it to the client it was given to, and the nonce is a MAC of the id: the hub can
recompute both and so needs to store nothing until the challenge is used. Single use is
then the tap's one INSERT of the used id (hub.verification.store.use_challenge).

The id is a UUIDv7 (RFC 9562 §5.7): 48 bits of Unix time in milliseconds, 42 random bits,
and in the last 32 bits a tag, the truncated HMAC of the rest and the client id. The tag
tells an id this hub never gave this client (`challenge-unknown`) from a wrong signature;
the 256-bit nonce, an HMAC of the whole id and the client id under the same key (derived
from the master secret for this purpose only), is what makes a challenge unforgeable.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from hub.verification.domain import CHALLENGE_TTL, Reason

KEY_PURPOSE: Final = "verification-challenge"
_TTL_MS: Final = CHALLENGE_TTL // timedelta(milliseconds=1)
_AHEAD_MS: Final = 5_000
"""An id made up to this far in the future is still taken (hub processes' clocks differ a
little); further is not an id this hub made."""
_TAG_BITS: Final = 32
_RANDOM_BITS: Final = 42


@dataclass(frozen=True)
class Challenge:
    id: uuid.UUID
    nonce: bytes
    created_at: datetime
    expires_at: datetime


def make(key: bytes, client_id: str, now: datetime) -> Challenge:
    """A new challenge for `client_id`, made at `now`."""
    millis = _millis(now)
    untagged = _untagged(millis, secrets.randbits(_RANDOM_BITS))
    challenge_id = uuid.UUID(int=untagged | _tag(key, client_id, untagged))
    return _challenge(key, client_id, challenge_id, millis)


def check(key: bytes, client_id: str, challenge_id: uuid.UUID, now: datetime) -> Challenge | Reason:
    """The challenge `challenge_id` names if this hub gave it to `client_id` and it is at most
    CHALLENGE_TTL old; else why not. Whether it was used already is the store's to say."""
    value = challenge_id.int
    untagged = value & ~((1 << _TAG_BITS) - 1)
    if challenge_id.version != 7 or not hmac.compare_digest(
        (value & ((1 << _TAG_BITS) - 1)).to_bytes(4, "big"),
        _tag(key, client_id, untagged).to_bytes(4, "big"),
    ):
        return Reason.CHALLENGE_UNKNOWN
    millis, now_millis = value >> 80, _millis(now)
    if millis > now_millis + _AHEAD_MS:
        return Reason.CHALLENGE_UNKNOWN
    if now_millis - millis > _TTL_MS:
        return Reason.CHALLENGE_EXPIRED
    return _challenge(key, client_id, challenge_id, millis)


def _millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _untagged(millis: int, random: int) -> int:
    """The id without its tag: time, version 7, random bits, variant 0b10 (RFC 9562)."""
    rand_a, rand_b = random >> 30, random & ((1 << 30) - 1)
    return (
        (millis & ((1 << 48) - 1)) << 80
        | 0x7 << 76
        | rand_a << 64
        | 0b10 << 62
        | rand_b << _TAG_BITS
    )


def _tag(key: bytes, client_id: str, untagged: int) -> int:
    mac = hmac.digest(key, b"tag\0" + client_id.encode() + b"\0" + untagged.to_bytes(16), "sha256")
    return int.from_bytes(mac[:4], "big")


def _challenge(key: bytes, client_id: str, challenge_id: uuid.UUID, millis: int) -> Challenge:
    nonce = hmac.digest(key, b"nonce\0" + client_id.encode() + b"\0" + challenge_id.bytes, "sha256")
    created_at = _EPOCH + timedelta(milliseconds=millis)
    return Challenge(challenge_id, nonce, created_at, created_at + CHALLENGE_TTL)
