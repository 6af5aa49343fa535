"""The permit card's data: one elementary file of BER-TLV data groups, signed by the hub.

The file (EF.RECORD, the card application's only data file) holds, in this order:

    61 DG1 holder [CF §13]   80 name, 81 sex, 82 ethnicity, 83 birth date (YYYYMMDD),
                             84 citizen ID, 85 household address, 86 current address
    62 DG2 photo             80 media type, 81 image bytes
    63 DG3 card              80 serial, 81 permit id, 82 jurisdiction, 83 issuing authority,
                             84 valid from (YYYYMMDD), 85 valid until (YYYYMMDD)
    64 DG4 card key          80 curve name ("P-256"), 81 public point (65 bytes, uncompressed)
    65 DG5 hub signature     80 issuing key id (kid), 81 ECDSA P-256 / SHA-256 signature (DER)
                             over the encoded bytes of DG1..DG4

Data groups are application-class constructed tags, their fields context-class primitive
tags; text is UTF-8. Decoding is strict: every group and field present, in order, nothing
unknown, nothing trailing, and the bytes must be the canonical encoding (so the signed bytes
are exactly what `encode_groups` gives). The BER-TLV work is done by the `asn1` library.

Binding the card's public key (DG4) into the signed record is what makes a copy useless: the
data can be copied, the private key cannot, and a tap proves possession of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asn1
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

CURVE_NAME = "P-256"
POINT_LENGTH = 65  # 0x04 || X || Y
MAX_PHOTO_BYTES = 16_384  # a small image: the whole file must fit one extended READ BINARY
DG_HOLDER, DG_PHOTO, DG_CARD, DG_CARD_KEY, DG_SIGNATURE = 1, 2, 3, 4, 5


class MalformedRecord(ValueError):
    """The bytes are not a card record of this layout (the reason is the message)."""


@dataclass(frozen=True)
class Holder:
    name: str
    sex: str  # "male" / "female", as the registry stores it
    ethnicity: str
    birth_date: date
    citizen_id: str
    household_address: str
    current_address: str


@dataclass(frozen=True)
class Photo:
    media_type: str  # image/png or image/jpeg
    image: bytes


@dataclass(frozen=True)
class CardFacts:
    serial: str
    permit_id: str
    jurisdiction: str
    issuing_authority: str
    valid_from: date
    valid_until: date


@dataclass(frozen=True)
class CardRecord:
    """What the hub vouches for; `card_key` is the card's own public point."""

    holder: Holder
    photo: Photo
    card: CardFacts
    card_key: bytes

    def card_public_key(self) -> ec.EllipticCurvePublicKey:
        return public_key_from_point(self.card_key)


@dataclass(frozen=True)
class SignedRecord:
    record: CardRecord
    kid: str
    signature: bytes

    def encode(self) -> bytes:
        """The whole EF.RECORD content."""
        return encode_groups(self.record) + encode_template(
            DG_SIGNATURE, [self.kid.encode(), self.signature]
        )

    def verify(self, public_key: ec.EllipticCurvePublicKey) -> bool:
        """True when `public_key` (the issuing key named by `kid`) signed this record."""
        try:
            public_key.verify(self.signature, encode_groups(self.record), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def sign(record: CardRecord, kid: str, private_key: ec.EllipticCurvePrivateKey) -> SignedRecord:
    signature = private_key.sign(encode_groups(record), ec.ECDSA(hashes.SHA256()))
    return SignedRecord(record, kid, signature)


def encode_groups(record: CardRecord) -> bytes:
    """DG1..DG4: the bytes the hub signs."""
    holder, card = record.holder, record.card
    return b"".join(
        [
            encode_template(
                DG_HOLDER,
                [
                    holder.name.encode(),
                    holder.sex.encode(),
                    holder.ethnicity.encode(),
                    _date(holder.birth_date),
                    holder.citizen_id.encode(),
                    holder.household_address.encode(),
                    holder.current_address.encode(),
                ],
            ),
            encode_template(DG_PHOTO, [record.photo.media_type.encode(), record.photo.image]),
            encode_template(
                DG_CARD,
                [
                    card.serial.encode(),
                    card.permit_id.encode(),
                    card.jurisdiction.encode(),
                    card.issuing_authority.encode(),
                    _date(card.valid_from),
                    _date(card.valid_until),
                ],
            ),
            encode_template(DG_CARD_KEY, [CURVE_NAME.encode(), record.card_key]),
        ]
    )


def decode(data: bytes) -> SignedRecord:
    """The signed record in `data`, or MalformedRecord saying what is wrong."""
    try:
        groups = _read_groups(data)
    except (asn1.Error, ValueError, IndexError, OverflowError) as exc:
        raise MalformedRecord(f"not BER-TLV data groups: {exc}") from None
    expected = [DG_HOLDER, DG_PHOTO, DG_CARD, DG_CARD_KEY, DG_SIGNATURE]
    if [number for number, _ in groups] != expected:
        raise MalformedRecord("data groups missing, repeated or out of order")
    fields = dict(groups)
    holder = _fields(fields[DG_HOLDER], 7, "DG1")
    photo = _fields(fields[DG_PHOTO], 2, "DG2")
    card = _fields(fields[DG_CARD], 6, "DG3")
    key = _fields(fields[DG_CARD_KEY], 2, "DG4")
    signature = _fields(fields[DG_SIGNATURE], 2, "DG5")
    if _text(key[0], "DG4 curve") != CURVE_NAME or len(key[1]) != POINT_LENGTH:
        raise MalformedRecord(f"DG4 is not a {CURVE_NAME} public point")
    if len(photo[1]) > MAX_PHOTO_BYTES:
        raise MalformedRecord(f"DG2 photo is over {MAX_PHOTO_BYTES} bytes")
    record = CardRecord(
        holder=Holder(
            name=_text(holder[0], "DG1 name"),
            sex=_text(holder[1], "DG1 sex"),
            ethnicity=_text(holder[2], "DG1 ethnicity"),
            birth_date=_parse_date(holder[3], "DG1 birth date"),
            citizen_id=_text(holder[4], "DG1 citizen ID"),
            household_address=_text(holder[5], "DG1 household address"),
            current_address=_text(holder[6], "DG1 current address"),
        ),
        photo=Photo(_text(photo[0], "DG2 media type"), photo[1]),
        card=CardFacts(
            serial=_text(card[0], "DG3 serial"),
            permit_id=_text(card[1], "DG3 permit id"),
            jurisdiction=_text(card[2], "DG3 jurisdiction"),
            issuing_authority=_text(card[3], "DG3 issuing authority"),
            valid_from=_parse_date(card[4], "DG3 valid from"),
            valid_until=_parse_date(card[5], "DG3 valid until"),
        ),
        card_key=key[1],
    )
    signed = SignedRecord(record, _text(signature[0], "DG5 kid"), signature[1])
    if signed.encode() != data:
        raise MalformedRecord("not the canonical encoding")
    return signed


def public_key_from_point(point: bytes) -> ec.EllipticCurvePublicKey:
    """The P-256 key of an uncompressed point; MalformedRecord if it is not on the curve."""
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise MalformedRecord(f"not a {CURVE_NAME} public point") from None


def public_key_of(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    """An issuing key from its public JWK, as the hub publishes them (GET issuing-keys)."""
    key = ECKey.import_key(jwk).get_op_key("verify")
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("an issuing key is not an EC public key")
    return key


def point_of(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


# --- BER-TLV through the asn1 library -------------------------------------------------------


class _Encoder(asn1.Encoder):
    """asn1 3.3 encodes a context-class tag 3 as if it were a universal BIT STRING (it prepends
    an unused-bits byte); fields here are raw bytes whatever their tag number."""

    def _encode_value(self, cls: int, nr: int, value: bytes) -> bytes:
        if cls != asn1.Classes.Universal:
            return value
        encoded: bytes = super()._encode_value(cls, nr, value)  # type: ignore[misc]
        return encoded


def encode_template(number: int, values: Sequence[bytes]) -> bytes:
    """An application-class template `number` of primitive context fields 0, 1, 2, ..."""
    encoder = _Encoder()
    encoder.start()
    encoder.enter(number, asn1.Classes.Application)
    for index, value in enumerate(values):
        encoder.write(value, index, asn1.Types.Primitive, asn1.Classes.Context)
    encoder.leave()
    output: bytes = encoder.output()
    return output


def _read_groups(data: bytes) -> list[tuple[int, list[bytes]]]:
    decoder = asn1.Decoder()
    decoder.start(data)
    groups = []
    while (tag := decoder.peek()) is not None:
        if tag.cls != asn1.Classes.Application or tag.typ != asn1.Types.Constructed:
            raise ValueError(f"unexpected tag {tag.nr} at the top level")
        decoder.enter()
        values: list[bytes] = []
        while (peeked := decoder.peek()) is not None:
            _, value = decoder.read()
            if peeked.cls != asn1.Classes.Context or peeked.nr != len(values):
                raise ValueError(f"unexpected field {peeked.nr} in data group {tag.nr}")
            if not isinstance(value, bytes) or len(values) == _MAX_FIELDS:
                raise ValueError(f"data group {tag.nr} is not a list of primitive fields")
            values.append(value)
        decoder.leave()
        groups.append((tag.nr, values))
    return groups


def decode_template(data: bytes, number: int, count: int) -> list[bytes]:
    """The `count` fields of the one template `number` that is all of `data`; ValueError
    (MalformedRecord) otherwise."""
    try:
        groups = _read_groups(data)
    except (asn1.Error, ValueError, IndexError, OverflowError) as exc:
        raise MalformedRecord(f"not a BER-TLV template: {exc}") from None
    if len(groups) != 1 or groups[0][0] != number:
        raise MalformedRecord(f"not one template {number}")
    return _fields(groups[0][1], count, f"template {number}")


_MAX_FIELDS = 8  # more than any data group has: a longer group is refused, not read on


def _fields(values: list[bytes], count: int, name: str) -> list[bytes]:
    if len(values) != count:
        raise MalformedRecord(f"{name} has {len(values)} fields, not {count}")
    return values


def _text(value: bytes, name: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise MalformedRecord(f"{name} is not UTF-8") from None


def _date(day: date) -> bytes:
    return day.strftime("%Y%m%d").encode()


def _parse_date(value: bytes, name: str) -> date:
    text = _text(value, name)
    if len(text) != 8 or not text.isdigit():
        raise MalformedRecord(f"{name} is not YYYYMMDD")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise MalformedRecord(f"{name} is not a calendar date") from None
