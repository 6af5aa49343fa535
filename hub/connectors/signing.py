"""Webhook signatures per the Standard Webhooks convention (https://www.standardwebhooks.com).

A delivery carries `webhook-id`, `webhook-timestamp` (whole seconds since the epoch) and
`webhook-signature`: space-separated `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
entries, so a sender rotating its secret can sign with both keys and the receiver accepts either.
The HMAC itself is computed by the `standardwebhooks` library. Its `verify` compares the timestamp
with the wall clock and lets malformed headers escape as ValueError or binascii.Error, so the
Verifier here checks headers and freshness itself, against an injected `now`, and gives every
refusal one stable reason code a department can act on.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES = 24  # the convention's lower bound; a shorter key is guessable sooner
DEFAULT_TOLERANCE = timedelta(minutes=5)
SIGNATURE_VERSION = "v1"

Reason = Literal["missing-headers", "malformed", "stale-timestamp", "bad-signature"]

_REQUIRED = ("webhook-id", "webhook-timestamp", "webhook-signature")
# Whole seconds, no sign, no leading zero: the digits signed must be the digits sent, and a
# bounded length keeps arithmetic on a hostile header cheap.
_TIMESTAMP = re.compile(r"0|[1-9][0-9]{0,11}")


class SignatureRefused(Exception):
    """A delivery that must not be trusted; `reason` is the stable code to report and count."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


def new_secret() -> str:
    """A fresh shared secret for one department, in the `whsec_<base64>` form both sides use."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _webhook(secret: str) -> Webhook:
    """The library's signer for `secret`, refusing what the library would accept by accident.

    The library strips the prefix only if present and decodes base64 leniently (skipping stray
    characters), so a mistyped secret would silently become a different key on one side.
    """
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"a webhook secret holds at least {MIN_SECRET_BYTES} bytes")
    return Webhook(key)


def _utc(moment: datetime) -> datetime:
    """The library stamps a datetime's wall time as UTC, so a naive or +08:00 time would shift."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no time zone; pass an aware one")
    return moment.astimezone(UTC)


class Signer:
    """Signs the hub's outgoing deliveries with one department's secret."""

    def __init__(self, secret: str) -> None:
        self._webhook = _webhook(secret)

    def headers(self, message_id: str, body: bytes, at: datetime) -> dict[str, str]:
        """The headers to send with `body`; `message_id` must stay the same on every retry.

        The receiver de-duplicates by `webhook-id`, so a retry reuses the id (and is signed anew
        with its own time). `body` must be UTF-8, as JSON is.
        """
        if not message_id:
            raise ValueError("a webhook needs a non-empty message id")
        moment = _utc(at)
        signature = self._webhook.sign(message_id, moment, body.decode("utf-8"))
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(math.floor(moment.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
        }


class Verifier:
    """Checks a delivery as a department receives it: headers, freshness, then signature.

    `tolerance` bounds how old (a replay) or how far ahead (a skewed sender clock) the signed
    timestamp may be.
    """

    def __init__(self, secret: str, tolerance: timedelta = DEFAULT_TOLERANCE) -> None:
        if tolerance <= timedelta(0):
            raise ValueError("the timestamp tolerance must be positive")
        self._webhook = _webhook(secret)
        self._tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str], now: datetime) -> None:
        """Return if the delivery is genuine and fresh at `now`; else raise SignatureRefused."""
        named = {name.lower(): value for name, value in headers.items()}
        message_id, timestamp, signature = (named.get(name, "").strip() for name in _REQUIRED)
        if not (message_id and timestamp and signature):
            raise SignatureRefused("missing-headers")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise SignatureRefused("malformed")
        offered = _offered_signatures(signature)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureRefused("malformed") from None
        seconds = int(timestamp)
        if abs(_utc(now).timestamp() - seconds) > self._tolerance.total_seconds():
            raise SignatureRefused("stale-timestamp")
        signed_at = datetime.fromtimestamp(seconds, UTC)
        expected = base64.b64decode(self._webhook.sign(message_id, signed_at, text).split(",")[1])
        if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
            raise SignatureRefused("bad-signature")


def _offered_signatures(header: str) -> list[bytes]:
    """The v1 signatures in `header`; entries of other versions are skipped, not refused, so a
    sender can add a newer scheme alongside v1. An entry that is not `version,base64` is refused
    outright: it is a sender's bug worth seeing, not something to guess around."""
    offered = []
    for entry in header.split():
        version, comma, _ = entry.partition(",")
        if not (version and comma):
            raise SignatureRefused("malformed")
        if version == SIGNATURE_VERSION:
            try:
                offered.append(base64.b64decode(entry.partition(",")[2], validate=True))
            except binascii.Error:
                raise SignatureRefused("malformed") from None
    return offered
