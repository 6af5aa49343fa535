"""Signed checkpoints of the audit log, kept outside the hub by the departments (witnesses).

The chains' MACs reveal any row altered, inserted or deleted in the middle, and each chain's
head reveals rows cut off its tail; but someone with the database in hand can cut a tail and
rewind its head to match, or rewind a head and write a different history after it with the
key. Neither can be seen from inside the database. So, every few minutes
(settings.audit_checkpoint_minutes), the hub signs a checkpoint, in the manner of Certificate
Transparency's signed tree heads: every chain's length and last MAC, their total, a root hash
over them and the time, as a JWS (ES256) under the hub's token-signing key, whose public half
departments already fetch from /oauth/jwks. Each push department receives every checkpoint in
order through the exchange (hub.connectors.checkpoints) and keeps it.

`compare` sets the log against checkpoints a department kept (`hub audit verify --witness`):
a chain now shorter than a checkpoint saw is *truncated*; a chain whose row at a checkpoint's
length is not the row the checkpoint saw is *forked* (history rewritten after that point).
A checkpoint whose signature is not the hub's is set aside and named, never trusted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlmodel import Field, Session, SQLModel, col, select

from hub.audit import AuditEntry, Finding, FindingKind, Start, chain_genesis, heads
from hub.auth.domain import TOKEN_ALGORITHM
from hub.auth.keys import LoadedKey
from hub.auth.store import SigningKey
from hub.clock import naive_utc

MEDIA_TYPE = "audit-checkpoint+jws"
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class AuditCheckpoint(SQLModel, table=True):
    """A checkpoint as signed: `token` is what the departments receive."""

    __tablename__ = "audit_checkpoint"

    id: int = Field(default=None, primary_key=True)  # assigned by the database
    at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    size: int = Field(sa_type=sa.BigInteger)
    root_hash: str = Field(max_length=64)
    token: str = Field(sa_type=sa.Text)


Heads = list[tuple[int, int, str]]  # (chain, length, last MAC), by chain


def root_hash(heads: Heads) -> str:
    """The hash over every chain's length and last MAC, in chain order."""
    return hashlib.sha256(_ENCODER.encode([list(head) for head in heads]).encode()).hexdigest()


def sign(session: Session, key: LoadedKey, issuer: str, now: datetime) -> AuditCheckpoint | None:
    """Sign and keep a checkpoint of the heads as they are; None when nothing was appended
    since the last one (departments are not sent the same state twice)."""
    now_heads = heads(session)
    last = latest(session)
    root = root_hash(now_heads)
    if last is not None and last.root_hash == root:
        return None
    checkpoint = AuditCheckpoint(
        at=now, size=sum(length for _, length, _ in now_heads), root_hash=root, token=""
    )
    session.add(checkpoint)
    session.flush()  # its id is part of what is signed
    claims = {
        "iss": issuer,
        "id": checkpoint.id,
        "at": naive_utc(now).isoformat(timespec="seconds") + "Z",
        "size": checkpoint.size,
        "root": root,
        "chains": [list(head) for head in now_heads],
    }
    header = {"alg": TOKEN_ALGORITHM, "kid": key.kid, "typ": MEDIA_TYPE}
    checkpoint.token = jws.serialize_compact(header, _ENCODER.encode(claims), key.private)
    return checkpoint


@dataclass(frozen=True)
class Witnessed:
    """What a department's checkpoints say of the log: breaks found, checkpoints compared, and
    those set aside (with why) because they are not the hub's."""

    findings: tuple[Finding, ...]
    compared: int
    set_aside: tuple[str, ...]


def _public_keys(session: Session) -> dict[str, ECKey]:
    """Every signing key the hub has had (retired ones too: old checkpoints stay checkable)."""
    return {
        row.kid: ECKey.import_key(json.loads(row.public_jwk))
        for row in session.exec(select(SigningKey)).all()
    }


def _claims(token: str, keys: dict[str, ECKey]) -> dict[str, Any]:
    """The claims of a genuine checkpoint; ValueError saying why it is not one."""
    try:
        compact = jws.extract_compact(token.encode())
        kid = compact.headers().get("kid")
        key = keys.get(str(kid))
        if key is None:
            raise ValueError(f"signed by a key the hub never had ({kid})")
        verified = jws.deserialize_compact(token, key, algorithms=[TOKEN_ALGORITHM])
        claims = json.loads(verified.payload)
    except (JoseError, ValueError, TypeError) as error:
        raise ValueError(str(error) or type(error).__name__) from None
    chains = claims.get("chains") if isinstance(claims, dict) else None
    if not isinstance(chains, list) or root_hash([tuple(c) for c in chains]) != claims.get("root"):
        raise ValueError("its root hash does not match its chains")
    return dict(claims)


def compare(session: Session, key: bytes, tokens: Iterable[str]) -> Witnessed:
    """Set the log against checkpoints as a department kept them (compact JWS strings).

    Successive checkpoints see most chains at the same length, so each (chain, length) they
    name is looked up once, in batches, whatever the number of checkpoints."""
    keys = _public_keys(session)
    set_aside: list[str] = []
    compared = 0
    seen: dict[tuple[int, int, str], str] = {}  # (chain, length, MAC): the first to see it
    for token in tokens:
        try:
            claims = _claims(token, keys)
        except ValueError as why:
            set_aside.append(str(why))
            continue
        compared += 1
        for chain, length, mac in claims["chains"]:
            named = (int(chain), int(length), str(mac))
            seen.setdefault(named, f"checkpoint {claims['id']} of {claims['at']}")
    lengths = {chain: length for chain, length, _ in heads(session)}
    found = _rows_at(session, [(chain, length) for chain, length, _ in seen if length])
    findings = {
        finding
        for (chain, length, mac), by in seen.items()
        if (finding := _against(key, chain, length, mac, found, lengths, by)) is not None
    }
    return Witnessed(tuple(sorted(findings, key=_order)), compared, tuple(set_aside))


_BATCH = 500


def _rows_at(session: Session, places: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """The MAC of the row at each (chain, position) that has one."""
    found: dict[tuple[int, int], str] = {}
    for at in range(0, len(places), _BATCH):
        batch = places[at : at + _BATCH]
        rows = session.execute(
            sa.select(
                col(AuditEntry.chain), col(AuditEntry.position), col(AuditEntry.row_hash)
            ).where(sa.tuple_(col(AuditEntry.chain), col(AuditEntry.position)).in_(batch))
        ).all()
        found.update({(chain, position): mac for chain, position, mac in rows})
    return found


def _order(finding: Finding) -> tuple[int, int, str]:
    return finding.chain, finding.first, finding.kind.value


def _against(
    key: bytes,
    chain: int,
    length: int,
    mac: str,
    found: dict[tuple[int, int], str],
    lengths: dict[int, int],
    seen: str,
) -> Finding | None:
    if length == 0:
        if mac == chain_genesis(key, chain):
            return None
        return Finding(FindingKind.FORKED, 0, 0, f"{seen} saw another start", chain)
    row_hash = found.get((chain, length))
    now = lengths.get(chain, 0)
    if row_hash is None and now < length:
        explanation = f"the chain ends at row {now}; {seen} saw {length} rows"
        return Finding(FindingKind.TRUNCATED, now + 1, length, explanation, chain)
    if row_hash != mac:
        return Finding(FindingKind.FORKED, length, length, f"not the row {seen} saw", chain)
    return None


def starts_of(session: Session, token: str) -> dict[int, Start]:
    """Where each chain's incremental walk starts: the rows a genuine checkpoint saw last.
    ValueError when the checkpoint is not the hub's."""
    claims = _claims(token, _public_keys(session))
    return {
        int(chain): Start(int(length), str(mac))
        for chain, length, mac in claims["chains"]
        if length
    }


def tokens_of(document: Any) -> list[str]:
    """The checkpoints of a witness's document: a list of compact JWS strings, or of objects
    with one under `checkpoint` (as the reference receiver lists them)."""
    if not isinstance(document, list):
        raise ValueError("a witness's checkpoints are a JSON array")
    tokens = []
    for item in document:
        token = item.get("checkpoint") if isinstance(item, dict) else item
        if not isinstance(token, str):
            raise ValueError("each checkpoint is a compact JWS string, or has one as `checkpoint`")
        tokens.append(token)
    return tokens


def latest(session: Session) -> AuditCheckpoint | None:
    return session.exec(
        select(AuditCheckpoint).order_by(col(AuditCheckpoint.id).desc()).limit(1)
    ).first()


def after(session: Session, last_id: int, limit: int) -> Sequence[AuditCheckpoint]:
    """Checkpoints signed after `last_id`, oldest first."""
    return session.exec(
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.id) > last_id)
        .order_by(col(AuditCheckpoint.id))
        .limit(limit)
    ).all()
