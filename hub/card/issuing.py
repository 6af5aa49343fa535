"""The hub's card-issuing keys: they sign each card's record and authorise writes to a card.

Keys rotate (`hub card rotate-key`); only the newest active key signs new records, but every
key ever used stays published and verifiable, since a card signed a year ago is still in its
holder's pocket. A write to a card (personalisation, a new validity at endorsement) must be
signed by a key the card already trusts; the write then installs the hub's current public
keys on the card, which is how a rotation reaches the cards in the field.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session, col, select

from hub.auth.keys import decrypt_private_key, new_key_material
from hub.card import layout, protocol
from hub.card.layout import public_key_of
from hub.card.store import CardIssuingKey

PASSWORD_PURPOSE = "card-issuing-key-encryption"  # keyring.derive(...) of the master secret


class NoTrustedKey(LookupError):
    """The card trusts none of the hub's issuing keys: it cannot be written by this hub."""


def rotate_issuing_key(session: Session, now: datetime, password: bytes) -> CardIssuingKey:
    """Retire the active key (it stays published) and create the one that signs from now."""
    for row in session.exec(select(CardIssuingKey).where(col(CardIssuingKey.retired_at).is_(None))):
        row.retired_at = now
        session.add(row)
    material = new_key_material(now, password)
    key = CardIssuingKey(
        kid=material.kid,
        private_pem=material.private_pem,
        public_jwk=material.public_jwk,
        created_at=now,
    )
    session.add(key)
    session.flush()
    return key


def ensure_issuing_key(session: Session, now: datetime, password: bytes) -> None:
    """The first issuing key of a new installation."""
    if (
        session.exec(
            select(CardIssuingKey.kid).where(col(CardIssuingKey.retired_at).is_(None))
        ).first()
        is None
    ):
        rotate_issuing_key(session, now, password)


def issuing_jwks(session: Session) -> dict[str, Any]:
    """Every issuing public key, newest first, as a JWK Set: what a window agent caches to
    check records offline and what a blank card is made to trust."""
    rows = session.exec(select(CardIssuingKey).order_by(col(CardIssuingKey.created_at).desc()))
    return {"keys": [json.loads(row.public_jwk) for row in rows]}


class IssuingKeyCache:
    """Issuing public keys by kid, for checking record signatures on every tap. A kid's key
    never changes, so an entry never goes stale; an unknown kid is looked up again (it may
    have been created by another process since)."""

    def __init__(self) -> None:
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._lock = threading.Lock()

    def public_key(self, session: Session, kid: str) -> ec.EllipticCurvePublicKey | None:
        key = self._keys.get(kid)
        if key is None:
            row = session.get(CardIssuingKey, kid)
            if row is None:
                return None
            key = public_key_of(json.loads(row.public_jwk))
            with self._lock:
                self._keys[kid] = key
        return key


def active_signer(session: Session, password: bytes) -> tuple[str, ec.EllipticCurvePrivateKey]:
    """The newest active issuing key: it signs new card records and the status list."""
    row = session.exec(
        select(CardIssuingKey)
        .where(col(CardIssuingKey.retired_at).is_(None))
        .order_by(col(CardIssuingKey.created_at).desc())
    ).first()
    if row is None:
        raise NoTrustedKey("the hub has no active card-issuing key")
    return row.kid, decrypt_private_key(row.private_pem, password)


def sign_record(
    session: Session, password: bytes, record: layout.CardRecord
) -> layout.SignedRecord:
    kid, private = active_signer(session, password)
    return layout.sign(record, kid, private)


def authorise_write(
    session: Session,
    password: bytes,
    *,
    card_point: bytes,
    nonce: bytes,
    record: bytes,
    card_trusts: Sequence[str],
) -> protocol.WriteCommand:
    """A PUT DATA the card will accept: signed by the newest hub key among those the card
    trusts, installing every hub key as the card's new trust list."""
    rows = list(
        session.exec(select(CardIssuingKey).order_by(col(CardIssuingKey.created_at).desc()))
    )
    signer = next((row for row in rows if row.kid in card_trusts), None)
    if signer is None:
        raise NoTrustedKey("the card trusts none of this hub's issuing keys")
    keys = json.dumps({"keys": [json.loads(row.public_jwk) for row in rows]}).encode()
    message = protocol.write_message(card_point, nonce, record, keys)
    signature = decrypt_private_key(signer.private_pem, password).sign(
        message, ec.ECDSA(hashes.SHA256())
    )
    return protocol.WriteCommand(record, signer.kid, signature, keys)
