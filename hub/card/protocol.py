"""The card's command set (ISO/IEC 7816-4) and the messages its keys sign.

Commands (CLA 00; every other class is 6E00):

    SELECT by AID          00 A4 04 00 Lc AID [Le]      -> FCI (6F 84 AID) 9000; 6A82 other AID
    READ BINARY            00 B0 P1P2=offset Le         -> EF.RECORD bytes from offset
                           short or extended Le; Le 00 / 0000 means "as much as there is"
                           (9000); an explicit Le past the end gives what there is + 6282;
                           offset past the end 6B00; a blank card 6A82
    GET DATA card key      00 CA 00 64 Le               -> DG4 (64 [80 curve] [81 point]) 9000
    GET DATA trusted kids  00 CA 00 66 Le               -> 66 { 80 kids, one per line } 9000
    GET CHALLENGE          00 84 00 00 Le=10            -> 16-byte nonce for the next write
    INTERNAL AUTHENTICATE  00 88 00 00 Lc challenge Le  -> DER ECDSA signature of
                           `auth_message(challenge)` by the card key (challenge 16-64 bytes)
    PUT DATA record        00 DA 01 00 Lc WriteCommand  -> 9000: EF.RECORD replaced

A write (personalisation at issuance, a new validity at endorsement) is authorised by the hub:
WriteCommand = 71 { 80 new EF.RECORD, 81 issuing kid, 82 signature, 83 trusted keys } where
the trusted keys are a JWK Set (JSON, UTF-8) of the issuing public keys the card is to accept
writes from afterwards, and the signature is ECDSA P-256/SHA-256 by the issuing key `kid`
over `write_message(card point, nonce, record, trusted keys)`. The card checks: a nonce from
its last GET CHALLENGE is pending (used up by any PUT DATA, good or bad: 6985 if none), the
kid is one it trusts (6A88), the signature (6982), the record decodes and its DG4 is this
card's own key, and the trusted keys are a non-empty set of P-256 keys (6A80). Then it
stores the record and replaces its trusted keys with the ones sent: a key the hub creates
after the card was made reaches the card, signed by a key it already trusts, with its next
authorised write (the way a passport's link certificates roll a country's signing keys).

Status words are ISO 7816-4's: 9000 ok, 6282 end of file before Le, 6700 wrong length,
6982 security status not satisfied, 6985 conditions of use not satisfied, 6A80 wrong data,
6A82 file or application not found, 6A86 wrong P1-P2, 6A88 referenced data not found,
6B00 offset out of range, 6D00 instruction not supported, 6E00 class not supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hub.card.layout import decode_template, encode_template, public_key_from_point

AID = bytes.fromhex("F0504855420001")  # F0: proprietary, unregistered RID; "PHUB", version 1
NONCE_LENGTH = 16
MIN_CHALLENGE, MAX_CHALLENGE = 16, 64
TAG_CARD_KEY = 0x64
TAG_TRUSTED_KIDS = 0x66
WRITE_TEMPLATE = 0x11  # tag 71
TRUSTED_KIDS_TEMPLATE = 0x06  # tag 66
_AUTH_CONTEXT = b"permit-hub card-auth v1\x00"
_WRITE_CONTEXT = b"permit-hub card-write v1\x00"


class Ins(IntEnum):
    SELECT = 0xA4
    READ_BINARY = 0xB0
    GET_DATA = 0xCA
    GET_CHALLENGE = 0x84
    INTERNAL_AUTHENTICATE = 0x88
    PUT_DATA = 0xDA


class SW(IntEnum):
    OK = 0x9000
    END_OF_FILE = 0x6282
    WRONG_LENGTH = 0x6700
    SECURITY_NOT_SATISFIED = 0x6982
    CONDITIONS_NOT_SATISFIED = 0x6985
    WRONG_DATA = 0x6A80
    NOT_FOUND = 0x6A82
    WRONG_P1P2 = 0x6A86
    REFERENCE_NOT_FOUND = 0x6A88
    WRONG_OFFSET = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00


def auth_message(challenge: bytes) -> bytes:
    """What INTERNAL AUTHENTICATE signs: the hub's challenge under a fixed context, so the
    card key cannot be made to sign anything else usable (a write authorisation, say)."""
    return _AUTH_CONTEXT + challenge


def proves_possession(point: bytes, nonce: bytes, signature: bytes) -> bool:
    """Whether `signature` is the INTERNAL AUTHENTICATE answer to `nonce` of the card whose key
    is `point`: what the hub asks of every tap, and the window of an offline one."""
    try:
        key = public_key_from_point(point)
        key.verify(signature, auth_message(nonce), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def write_message(card_point: bytes, nonce: bytes, record: bytes, trusted_keys: bytes) -> bytes:
    """What the hub signs to authorise a write: bound to one card (its key), one moment (the
    card's fresh nonce) and exactly these contents. Each part is length-prefixed."""
    parts = [card_point, nonce, record, trusted_keys]
    return _WRITE_CONTEXT + b"".join(len(part).to_bytes(4, "big") + part for part in parts)


@dataclass(frozen=True)
class WriteCommand:
    record: bytes
    kid: str
    signature: bytes
    trusted_keys: bytes  # a JWK Set, JSON: the issuing keys the card accepts from now on


def encode_write(command: WriteCommand) -> bytes:
    return encode_template(
        WRITE_TEMPLATE,
        [
            command.record,
            command.kid.encode(),
            command.signature,
            command.trusted_keys,
        ],
    )


def encode_kids(kids: Sequence[str]) -> bytes:
    return encode_template(TRUSTED_KIDS_TEMPLATE, ["\n".join(kids).encode()])


def decode_kids(data: bytes) -> tuple[str, ...]:
    (kids,) = decode_template(data, TRUSTED_KIDS_TEMPLATE, 1)
    return tuple(kid for kid in kids.decode().split("\n") if kid)


def decode_write(data: bytes) -> WriteCommand:
    """The write command in `data`; ValueError if it is not one."""
    record, kid, signature, trusted_keys = decode_template(data, WRITE_TEMPLATE, 4)
    return WriteCommand(record, kid.decode(), signature, trusted_keys)
