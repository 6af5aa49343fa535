"""Tables of verification, and the queries a tap makes.

A tap is on the path of every service window, so its statements are few and built once:
consume the challenge (one UPDATE ... RETURNING), read the card with its permit and
registration (one join), record the decision (one INSERT). Challenges are consumed
by the UPDATE's own condition (`used_at IS NULL`): on PostgreSQL a second transaction waits
for the first's row lock and then finds the row used; SQLite serialises writers anyway.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select

from hub.permits.store import Card, Permit, Registration
from hub.verification.domain import PERMIT_REFUSED, Reason

SERIAL_MAX: Final = 32
"""As long as a card serial can be (hub.permits.store.Card)."""


class Challenge(SQLModel, table=True):
    """A nonce the hub gave one client for one tap."""

    __tablename__ = "verification_challenge"
    __table_args__ = (
        sa.Index("ix_verification_challenge_client_expiry", "client_id", "expires_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    client_id: str = Field(max_length=128)
    nonce: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    used_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class WindowDecision(SQLModel, table=True):
    """Every decision at a window: the hub's on line, and those an agent made off line and
    reported later (`id` is then the agent's own, which makes a repeated report harmless).
    The card serial, never the holder: who it was is in the audit entry, as a keyed hash."""

    __tablename__ = "verification_decision"

    id: str = Field(primary_key=True, max_length=36)
    client_id: str = Field(max_length=128)
    department: str = Field(max_length=64)
    service: str = Field(max_length=64)
    card_serial: str | None = Field(default=None, max_length=SERIAL_MAX)
    decision: str = Field(max_length=8)
    reasons: list[str] = Field(sa_type=sa.JSON)
    offline: bool
    decided_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    recorded_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


CHALLENGES: Final[sa.Table] = Challenge.__table__  # type: ignore[attr-defined]
DECISIONS: Final[sa.Table] = WindowDecision.__table__  # type: ignore[attr-defined]
CHALLENGE_KEPT: Final = timedelta(minutes=10)
"""Expired challenges are deleted this long after expiry (a late tap is then told `unknown`
instead of `expired`)."""

# The statements of every tap are built once: building one costs more than running it.
_MINE = (CHALLENGES.c.id == sa.bindparam("challenge")) & (
    CHALLENGES.c.client_id == sa.bindparam("caller")
)
_ADD_CHALLENGE: Final = sa.insert(CHALLENGES)
_DROP_EXPIRED: Final = sa.delete(CHALLENGES).where(
    CHALLENGES.c.client_id == sa.bindparam("caller"),
    CHALLENGES.c.expires_at < sa.bindparam("before"),
)
_CONSUME: Final = (
    sa.update(CHALLENGES)
    .where(_MINE, CHALLENGES.c.used_at.is_(None), CHALLENGES.c.expires_at >= sa.bindparam("now"))
    .values(used_at=sa.bindparam("used"))
    .returning(CHALLENGES.c.nonce)
)
_WHY_NOT: Final = sa.select(CHALLENGES.c.used_at).where(_MINE)
_CARD: Final = (
    select(Card, Permit, Registration)
    .join(Permit, col(Permit.id) == col(Card.permit_id))
    .join(Registration, col(Registration.id) == col(Permit.registration_id))
    .where(col(Card.serial) == sa.bindparam("serial"))
)
_ADD_DECISIONS: Final = sa.insert(DECISIONS)


def add_challenge(
    session: Session, challenge_id: str, client_id: str, nonce: bytes, now: datetime, ttl: timedelta
) -> datetime:
    """Store a new challenge and drop the client's long-expired ones; returns its expiry.

    Only the caller's own rows are deleted, so windows do not queue behind each other's
    clean-up."""
    session.execute(_DROP_EXPIRED, {"caller": client_id, "before": now - CHALLENGE_KEPT})
    expires_at = now + ttl
    row = {"id": challenge_id, "client_id": client_id, "nonce": nonce, "created_at": now}
    session.execute(_ADD_CHALLENGE, {**row, "expires_at": expires_at})
    return expires_at


def consume_challenge(
    session: Session, challenge_id: str, client_id: str, now: datetime
) -> bytes | Reason:
    """The challenge's nonce, marked used in this transaction; or why it cannot be used.
    Another client's challenge is `unknown` to the caller."""
    mine = {"challenge": challenge_id, "caller": client_id}
    used = session.execute(_CONSUME, {**mine, "now": now, "used": now}).first()
    if used is not None:
        nonce: bytes = used.nonce
        return nonce
    found = session.execute(_WHY_NOT, mine).first()
    if found is None:
        return Reason.CHALLENGE_UNKNOWN
    return Reason.CHALLENGE_USED if found.used_at is not None else Reason.CHALLENGE_EXPIRED


def card_with_permit(session: Session, serial: str) -> tuple[Card, Permit, Registration] | None:
    """A card, its permit and the registration behind it, in one query."""
    row = session.execute(_CARD, {"serial": serial}).first()
    return None if row is None else (row[0], row[1], row[2])


def add_decisions(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(_ADD_DECISIONS, list(rows))


def decisions_by_id(session: Session, ids: Collection[str]) -> dict[str, sa.Row[Any]]:
    rows = session.execute(sa.select(DECISIONS).where(DECISIONS.c.id.in_(list(ids)))).all()
    return {row.id: row for row in rows}


def holders_of_cards(session: Session, serials: Collection[str]) -> Mapping[str, str]:
    """The keyed ID hash of each card's holder, for the audit."""
    rows = session.execute(
        sa.select(col(Card.serial), col(Permit.citizen_id_hash))
        .join(Permit, col(Permit.id) == col(Card.permit_id))
        .where(col(Card.serial).in_(list(serials)))
    ).all()
    return {row.serial: row.citizen_id_hash for row in rows}


def refused_cards(session: Session) -> list[sa.Row[Any]]:
    """(serial, card status, permit state) of every card that must be refused whatever the
    service: ended cards, and the cards of suspended and cancelled permits."""
    refusing = [state.value for state in PERMIT_REFUSED]
    return list(
        session.execute(
            sa.select(col(Card.serial), col(Card.status), col(Permit.state))
            .join(Permit, col(Permit.id) == col(Card.permit_id))
            .where((col(Card.status) != "live") | col(Permit.state).in_(refusing))
            .order_by(col(Card.serial))
        ).all()
    )
