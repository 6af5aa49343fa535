"""Issued permits of real (sealed) holders, and blank cards, for the card tests."""

from __future__ import annotations

import base64
import string
import struct
import uuid
import zlib
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from hub.composition import Hub
from hub.db import unit_of_work
from hub.permits.identity import parse_citizen_id
from hub.permits.store import Permit, Registration


def citizen_id(n: int) -> str:
    """A valid GB 11643 number born in Chifeng in 1990."""
    first = f"15040219900102{n % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(digit) * weight for digit, weight in zip(first, weights, strict=True))
    return first + "10X98765432"[total % 11]


def issued_permit(hub: Hub, client: TestClient, office: dict[str, str], n: int = 1) -> str:
    """A Chifeng holder resident for two years, accepted, then issued through the API (which
    makes its live card serial)."""
    today = hub.clock.today()
    number = parse_citizen_id(citizen_id(n), today=today)
    with unit_of_work(hub.engine) as session:
        registration = Registration(
            id=str(uuid.uuid4()),
            jurisdiction="chifeng",
            citizen_id_hash=hub.vault.lookup_hash(number),
            citizen_id_sealed=hub.vault.seal(number),
            name="张三",
            sex=number.sex.value,
            ethnicity="汉族",
            birth_date=number.birth_date,
            household_address="辽宁省沈阳市和平区",
            household_region="210102",
            current_address="内蒙古赤峰市红山区",
            current_region="150402",
            reason="employment",
            contact="13800000000",
            arrived_on=today - timedelta(days=730),
            registered_on=today - timedelta(days=730),
            residence_start=today - timedelta(days=730),
            created_at=hub.clock.now(),
        )
        permit = Permit(
            id=str(uuid.uuid4()),
            registration_id=registration.id,
            jurisdiction="chifeng",
            citizen_id_hash=registration.citizen_id_hash,
            state="accepted",
            receipt_number=uuid.uuid4().hex[:16],
            accepted_on=today - timedelta(days=3),
            issue_due_on=today + timedelta(days=27),
            residence_start=registration.residence_start,
            updated_at=hub.clock.now(),
        )
        session.add(registration)
        session.flush()
        session.add(permit)
    issued = client.post(
        f"/registry/v1/permits/{permit.id}/issue", headers={**office, "If-Match": '"1"'}
    )
    assert issued.status_code == 200, issued.text
    return permit.id


def tiny_png(width: int = 24, height: int = 32) -> bytes:
    """A small grey PNG: what a card's photo data group holds in tests."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes([128]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"


def another_spelling(text: str) -> str:
    """`text` (base64 of bytes whose length is no multiple of 3) with an unused bit of its last
    symbol set: Python's decoder, even with validate=True, reads it as the same bytes."""
    body = text.rstrip("=")
    return body[:-1] + _ALPHABET[_ALPHABET.index(body[-1]) + 1] + text[len(body) :]


def new_card_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())
