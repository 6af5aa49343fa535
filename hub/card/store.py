"""The hub's card-issuing keys (the photo-ID equivalent of a passport's document signer)."""

from __future__ import annotations

from datetime import datetime

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
