"""Webhook signatures: what a department accepts, and the one reason it gives for refusing."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from hub.clock import CHINA
from hub.connectors.signing import (
    DEFAULT_TOLERANCE,
    SECRET_PREFIX,
    SignatureRefused,
    Signer,
    Verifier,
    new_secret,
)

NOW = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
BODY = b'{"permit_number": "310101202503010001", "status": "valid"}'
MESSAGE_ID = "msg_2f6c1c1e"


@pytest.fixture
def secret() -> str:
    return new_secret()


def signed(secret: str, body: bytes = BODY, at: datetime = NOW) -> dict[str, str]:
    return Signer(secret).headers(MESSAGE_ID, body, at)


def refusal(verifier: Verifier, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(SignatureRefused) as refused:
        verifier.verify(body, headers, NOW)
    return refused.value.reason


def test_new_secret_is_32_random_bytes_in_whsec_form() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith(SECRET_PREFIX)
    assert len(base64.b64decode(first.removeprefix(SECRET_PREFIX), validate=True)) == 32
    assert first != second


def test_matches_the_standard_webhooks_test_vector() -> None:
    """The specification's published example: any department's library must agree with us."""
    headers = Signer("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").headers(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        b'{"test": 2432232314}',
        datetime.fromtimestamp(1614265330, UTC),
    )
    assert headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "content-type": "application/json",
    }


def test_round_trip(secret: str) -> None:
    Verifier(secret).verify(BODY, signed(secret), NOW)


def test_header_names_are_case_insensitive(secret: str) -> None:
    headers = {name.title(): value for name, value in signed(secret).items()}
    Verifier(secret).verify(BODY, headers, NOW)


def test_timestamp_in_another_zone_is_the_same_instant(secret: str) -> None:
    assert signed(secret, at=NOW.astimezone(CHINA)) == signed(secret)


def test_naive_time_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="naive"):
        signed(secret, at=NOW.replace(tzinfo=None))


def test_tampered_body_is_refused(secret: str) -> None:
    tampered = BODY.replace(b"valid", b"cancelled")
    assert refusal(Verifier(secret), signed(secret), tampered) == "bad-signature"


def test_tampered_id_is_refused(secret: str) -> None:
    headers = signed(secret) | {"webhook-id": "msg_other"}
    assert refusal(Verifier(secret), headers) == "bad-signature"


def test_tampered_timestamp_is_refused(secret: str) -> None:
    later = str(int(NOW.timestamp()) + 1)
    headers = signed(secret) | {"webhook-timestamp": later}
    assert refusal(Verifier(secret), headers) == "bad-signature"


def test_wrong_secret_is_refused(secret: str) -> None:
    assert refusal(Verifier(new_secret()), signed(secret)) == "bad-signature"


@pytest.mark.parametrize(
    "offset",
    [-DEFAULT_TOLERANCE - timedelta(seconds=1), DEFAULT_TOLERANCE + timedelta(seconds=1)],
    ids=["replayed", "future"],
)
def test_timestamp_outside_tolerance_is_refused(secret: str, offset: timedelta) -> None:
    assert refusal(Verifier(secret), signed(secret, at=NOW + offset)) == "stale-timestamp"


@pytest.mark.parametrize("offset", [-DEFAULT_TOLERANCE, DEFAULT_TOLERANCE])
def test_timestamp_at_the_edge_of_tolerance_is_accepted(secret: str, offset: timedelta) -> None:
    Verifier(secret).verify(BODY, signed(secret, at=NOW + offset), NOW)


def test_tolerance_is_configurable(secret: str) -> None:
    headers = signed(secret, at=NOW - timedelta(minutes=20))
    Verifier(secret, tolerance=timedelta(hours=1)).verify(BODY, headers, NOW)
    assert refusal(Verifier(secret, tolerance=timedelta(minutes=10)), headers) == "stale-timestamp"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_refused(secret: str, missing: str) -> None:
    headers = signed(secret)
    del headers[missing]
    assert refusal(Verifier(secret), headers) == "missing-headers"


def test_empty_header_counts_as_missing(secret: str) -> None:
    headers = signed(secret) | {"webhook-signature": ""}
    assert refusal(Verifier(secret), headers) == "missing-headers"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("webhook-timestamp", "soon"),
        ("webhook-timestamp", "1740821400.5"),
        ("webhook-timestamp", "-1740821400"),
        ("webhook-timestamp", "01740821400"),
        ("webhook-timestamp", "9" * 400),
        ("webhook-signature", "v1"),
        ("webhook-signature", "no-comma-here"),
        ("webhook-signature", ",c2lnbmF0dXJl"),
        ("webhook-signature", "v1,not*base64!"),
        ("webhook-signature", "v1,YWJ"),
    ],
)
def test_malformed_header_is_refused(secret: str, header: str, value: str) -> None:
    headers = signed(secret) | {header: value}
    assert refusal(Verifier(secret), headers) == "malformed"


def test_body_that_is_not_utf8_is_malformed(secret: str) -> None:
    assert refusal(Verifier(secret), signed(secret), b"\xff\xfe") == "malformed"


def test_any_matching_signature_among_several_is_accepted(secret: str) -> None:
    """A sender rotating its secret signs with both keys until every receiver has the new one."""
    old, new = secret, new_secret()
    both = f"{signed(new)['webhook-signature']} {signed(old)['webhook-signature']}"
    headers = signed(old) | {"webhook-signature": both}
    Verifier(old).verify(BODY, headers, NOW)
    Verifier(new).verify(BODY, headers, NOW)
    assert refusal(Verifier(new_secret()), headers) == "bad-signature"


def test_signatures_of_other_versions_are_skipped(secret: str) -> None:
    genuine = signed(secret)["webhook-signature"]
    headers = signed(secret) | {"webhook-signature": f"v1a,c2lnbmF0dXJl {genuine}"}
    Verifier(secret).verify(BODY, headers, NOW)


def test_only_other_versions_is_a_bad_signature(secret: str) -> None:
    headers = signed(secret) | {"webhook-signature": "v1a,c2lnbmF0dXJl"}
    assert refusal(Verifier(secret), headers) == "bad-signature"


@pytest.mark.parametrize(
    "bad",
    ["", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not*base64!", "whsec_c2hvcnQ="],
    ids=["empty", "no-prefix", "no-key", "not-base64", "too-short"],
)
def test_unusable_secret_is_refused_up_front(bad: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        Signer(bad)
    with pytest.raises(ValueError, match="webhook secret"):
        Verifier(bad)


def test_tolerance_must_be_positive(secret: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        Verifier(secret, tolerance=timedelta(0))


def test_empty_message_id_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="message id"):
        Signer(secret).headers("", BODY, NOW)
