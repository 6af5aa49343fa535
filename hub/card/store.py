"""The cards made for permits, and the hub's card-issuing keys (the photo-ID equivalent of a
passport's document signer)."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class CardIssuingKey(SQLModel, table=True):
    """One issuing key pair. The private half is encrypted under a key derived from the master
    secret; a retired key signs nothing new but stays published, because the cards it signed
    stay in holders' pockets for years."""

    __tablename__ = "card_issuing_key"

    kid: str = Field(primary_key=True, max_length=64)
    private_pem: bytes = Field(sa_type=sa.LargeBinary, description="PKCS#8, encrypted")
    public_jwk: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    retired_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class Card(SQLModel, table=True):
    """Every card ever made for a permit; only one per permit is live."""

    __tablename__ = "card"

    serial: str = Field(primary_key=True, max_length=32)
    permit_id: str = Field(foreign_key="permit.id", max_length=36, index=True)
    status: str = Field(max_length=16)  # live, lost, returned, cancelled
    reason: str = Field(max_length=16)  # first-issuance, replacement, renewal
    fee: str = Field(max_length=16)  # free, card-cost
    issued_on: date
    ended_on: date | None = None
    # The card's own public key (P-256 point), registered when the card is personalised: a
    # tap must prove possession of its private half, which never leaves the card.
    public_key: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    personalised_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
