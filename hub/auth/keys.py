"""The hub's token-signing keys: creation, rotation and publication.

Private keys are stored encrypted under a key derived from the master secret, so a database
dump alone cannot mint tokens. A retired key stays in the JWKS until every token it signed has
expired; only the newest active key signs.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey, KeyParameters
from sqlmodel import Session, col, select

from hub.auth.domain import TOKEN_ALGORITHM
from hub.auth.store import SigningKey, bump_generation


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    private: ECKey
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every time the hub stores is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


@dataclass(frozen=True)
class KeyMaterial:
    """A new ES256 key pair: the private half encrypted for storage, the public as a JWK."""

    kid: str
    private_pem: bytes
    public_jwk: str


def new_key_material(now: datetime, password: bytes) -> KeyMaterial:
    private = ec.generate_private_key(ec.SECP256R1())
    kid = f"{now:%Y%m%d}-{secrets.token_hex(4)}"
    public = ECKey.import_key(
        private.public_key(), {"kid": kid, "alg": TOKEN_ALGORITHM, "use": "sig"}
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    return KeyMaterial(kid, pem, json.dumps(public.as_dict(private=False)))


def decrypt_private_key(pem: bytes, password: bytes) -> ec.EllipticCurvePrivateKey:
    private = serialization.load_pem_private_key(pem, password=password)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise ValueError("a stored signing key is not an EC key")
    return private


def new_signing_key(now: datetime, password: bytes) -> SigningKey:
    material = new_key_material(now, password)
    return SigningKey(
        kid=material.kid,
        alg=TOKEN_ALGORITHM,
        private_pem=material.private_pem,
        public_jwk=material.public_jwk,
        created_at=now,
    )


def load_key(row: SigningKey, password: bytes) -> LoadedKey:
    private = decrypt_private_key(row.private_pem, password)
    params: KeyParameters = {"kid": row.kid, "alg": row.alg, "use": "sig"}
    return LoadedKey(
        kid=row.kid,
        private=ECKey.import_key(private, params),
        public_jwk=json.loads(row.public_jwk),
        created_at=_aware(row.created_at) or row.created_at,
        retired_at=_aware(row.retired_at),
    )


def published(keys: Sequence[LoadedKey], now: datetime, token_ttl: int) -> list[LoadedKey]:
    """Keys a verifier still needs: active ones and those retired less than a token life ago."""
    horizon = now - timedelta(seconds=token_ttl + 60)
    return [key for key in keys if key.retired_at is None or key.retired_at > horizon]


def signing_key(keys: Sequence[LoadedKey]) -> LoadedKey | None:
    active = [key for key in keys if key.retired_at is None]
    return max(active, key=lambda key: key.created_at) if active else None


def active_key(session: Session, password: bytes) -> LoadedKey | None:
    """The key that signs now, read from the database (for work outside a request)."""
    rows = session.exec(select(SigningKey).where(col(SigningKey.retired_at).is_(None))).all()
    return signing_key([load_key(row, password) for row in rows])


def rotate(session: Session, now: datetime, password: bytes) -> SigningKey:
    """Retire the active keys and create the one that signs from now on."""
    for row in session.exec(select(SigningKey).where(col(SigningKey.retired_at).is_(None))):
        row.retired_at = now
        session.add(row)
    key = new_signing_key(now, password)
    session.add(key)
    bump_generation(session)
    session.flush()
    return key


def ensure_signing_key(session: Session, now: datetime, password: bytes) -> SigningKey | None:
    """Create the first key of a new installation; None if one exists already."""
    if session.exec(select(SigningKey).where(col(SigningKey.retired_at).is_(None))).first():
        return None
    return rotate(session, now, password)
