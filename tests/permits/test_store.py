"""Storage rules the database itself enforces, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from tests.factories import add_registration, new_permit

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_one_person_one_live_permit(engine: Engine) -> None:
    """[CF §17]: a second live permit for the same person is refused by the database too."""
    with Session(engine) as session:
        registration = add_registration(session, "h" * 64)
        session.add(new_permit(registration, "h" * 64, "cancelled"))
        session.add(new_permit(registration, "h" * 64, "valid"))
        session.commit()
        session.add(new_permit(registration, "h" * 64, "accepted"))
        with pytest.raises(sa.exc.IntegrityError):
            session.commit()
        session.rollback()
        session.add(new_permit(registration, "h" * 64, "cancelled"))
        session.add(new_permit(registration, "g" * 64, "suspended"))
        session.commit()
