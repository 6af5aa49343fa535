"""Tables of verification, and the queries a tap makes.

A tap is on the path of every service window, so its statements are few and built once:
mark the challenge used (one INSERT), read the card with its permit and registration (one
join), record the decision (one INSERT). Challenges are made and checked without the
database (hub.verification.challenges); a row is written only when one is used, and the
primary key makes that insert the arbiter: of two taps racing with one challenge, on either
database, exactly one inserts the row.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select

from hub import bulk
from hub.card.store import Card
from hub.permits.store import Permit, Registration
from hub.verification import challenges
from hub.verification.domain import PERMIT_REFUSED

SERIAL_MAX: Final = 32
"""As long as a card serial can be (hub.card.store.Card)."""


class Challenge(SQLModel, table=True):
    """A nonce the hub gave one client for one tap."""

    __tablename__ = "verification_challenge"
    __table_args__ = (
        sa.Index("ix_verification_challenge_client_expiry", "client_id", "expires_at"),
        # The purge's: the oldest first, without reading the rest of the table.
        sa.Index("ix_verification_challenge_expires_at", "expires_at"),
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
"""A used challenge's row is kept this long after its expiry (after which no hub process,
whatever its clock, still takes the challenge), then purged."""
PURGE_EVERY: Final = 128
"""One use in this many (per process) also purges rows past CHALLENGE_KEPT, at most
PURGE_AT_ONCE of them, the oldest first: a purge costs a tap a few milliseconds, never a
sweep of every challenge that aged out at once (all of a busy hour's, after a quiet spell
or a restart), and at twice the rate challenges are made, it keeps up."""
PURGE_AT_ONCE: Final = 2 * PURGE_EVERY

# The statements of every tap are built once: building one costs more than running it.
_USE_CHALLENGE: Final = sa.text(
    "INSERT INTO verification_challenge (id, client_id, nonce, created_at, expires_at, used_at)"
    " VALUES (:id, :client_id, :nonce, :created_at, :expires_at, :used_at)"
    " ON CONFLICT (id) DO NOTHING RETURNING id"
).bindparams(
    *(
        sa.bindparam(name, type_=CHALLENGES.c[name].type)
        for name in ("nonce", "created_at", "expires_at", "used_at")
    )
)
_PURGE_USED: Final = sa.delete(CHALLENGES).where(
    CHALLENGES.c.id.in_(
        sa.select(CHALLENGES.c.id)
        .where(CHALLENGES.c.expires_at < sa.bindparam("before"))
        .order_by(CHALLENGES.c.expires_at)
        .limit(PURGE_AT_ONCE)
        .scalar_subquery()
    )
)
_uses = itertools.count(1)
_CARD: Final = (
    select(Card, Permit, Registration)
    .join(Permit, col(Permit.id) == col(Card.permit_id))
    .join(Registration, col(Registration.id) == col(Permit.registration_id))
    .where(col(Card.serial) == sa.bindparam("serial"))
)
_ADD_DECISIONS: Final = sa.insert(DECISIONS)


def use_challenge(
    session: Session, challenge: challenges.Challenge, client_id: str, now: datetime
) -> bool:
    """Mark `challenge` used by `client_id` in this transaction; False if it was already."""
    if next(_uses) % PURGE_EVERY == 0:
        session.execute(_PURGE_USED, {"before": now - CHALLENGE_KEPT})
    row = {
        "id": str(challenge.id),
        "client_id": client_id,
        "nonce": challenge.nonce,
        "created_at": challenge.created_at,
        "expires_at": challenge.expires_at,
        "used_at": now,
    }
    return session.execute(_USE_CHALLENGE, row).first() is not None


def card_with_permit(session: Session, serial: str) -> tuple[Card, Permit, Registration] | None:
    """A card, its permit and the registration behind it, in one query."""
    row = session.execute(_CARD, {"serial": serial}).first()
    return None if row is None else (row[0], row[1], row[2])


def decision_insert(session: Session, row: Mapping[str, Any], at: datetime) -> bulk.Insert:
    """The INSERT of one decision made at `at`, for the audit to send with its entry
    (AuditLog.record's `alongside`)."""
    dialect = session.get_bind().dialect
    times = {"decided_at": at, "recorded_at": at}
    return bulk.Insert.of(dialect, DECISIONS, [row], constants=times, parameter="decisions")


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
