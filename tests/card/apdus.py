"""Card tests at the APDU level: command APDUs, issuing keys, records, authorised writes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from hub.card import layout, protocol

KID = "card-issuing-1"
ISSUER = ec.generate_private_key(ec.SECP256R1())
SELECT = bytes([0x00, 0xA4, 0x04, 0x00, len(protocol.AID), *protocol.AID, 0x00])


def apdu(
    ins: int,
    p1: int = 0,
    p2: int = 0,
    data: bytes = b"",
    le: int | None = None,
    *,
    extended: bool = False,
    cla: int = 0x00,
) -> bytes:
    """A command APDU, extended when asked or when the data or Le need it; Le 0 is the
    maximum (00 or 0000)."""
    extended = extended or len(data) > 255 or (le or 0) > 256
    lc = b""
    if data:
        lc = len(data).to_bytes(3, "big") if extended else bytes([len(data)])
    trailer = b""
    if le is not None and extended:
        trailer = (b"" if data else b"\x00") + (le % 65_536).to_bytes(2, "big")
    elif le is not None:
        trailer = bytes([le % 256])
    return bytes([cla, ins, p1, p2]) + lc + data + trailer


def split(response: bytes) -> tuple[bytes, int]:
    return response[:-2], int.from_bytes(response[-2:], "big")


def public_jwks(keys: Mapping[str, ec.EllipticCurvePrivateKey]) -> dict[str, object]:
    return {
        "keys": [
            ECKey.import_key(key.public_key(), {"kid": kid, "alg": "ES256", "use": "sig"}).as_dict()
            for kid, key in keys.items()
        ]
    }


def write_jwks(path: Path, keys: Mapping[str, ec.EllipticCurvePrivateKey]) -> Path:
    path.write_text(json.dumps(public_jwks(keys)))
    return path


def record_for(
    card_point: bytes,
    *,
    photo_size: int = 4_000,
    kid: str = KID,
    key: ec.EllipticCurvePrivateKey = ISSUER,
    valid_until: date = date(2027, 3, 31),
) -> bytes:
    """An EF.RECORD for the card with `card_point`, signed by the issuing key."""
    record = layout.CardRecord(
        holder=layout.Holder(
            name="李娜",
            sex="female",
            ethnicity="汉族",
            birth_date=date(1990, 5, 17),
            citizen_id="11010519900517002X",
            household_address="河南省信阳市浉河区",
            current_address="北京市朝阳区望京街道 1 号",
        ),
        photo=layout.Photo("image/png", bytes(range(256)) * (photo_size // 256)),
        card=layout.CardFacts(
            serial="C0000001",
            permit_id="permit-1",
            jurisdiction="beijing",
            issuing_authority="北京市公安局朝阳分局",
            valid_from=date(2026, 4, 1),
            valid_until=valid_until,
        ),
        card_key=card_point,
    )
    return layout.sign(record, kid, key).encode()


def put_data(
    card_point: bytes,
    nonce: bytes,
    record: bytes,
    *,
    kid: str = KID,
    key: ec.EllipticCurvePrivateKey = ISSUER,
    trusted: Mapping[str, ec.EllipticCurvePrivateKey] | None = None,
    trusted_keys: bytes | None = None,
) -> bytes:
    """The PUT DATA APDU of a write authorised by `key` (named `kid`) for this card and nonce,
    installing `trusted` (default: the issuing key alone) or the raw `trusted_keys`."""
    if trusted_keys is None:
        trusted_keys = json.dumps(public_jwks(trusted or {KID: ISSUER})).encode()
    message = protocol.write_message(card_point, nonce, record, trusted_keys)
    command = protocol.WriteCommand(
        record, kid, key.sign(message, ec.ECDSA(hashes.SHA256())), trusted_keys
    )
    return apdu(protocol.Ins.PUT_DATA, 0x01, 0x00, protocol.encode_write(command), extended=True)
