"""Storage rules the database itself enforces, on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.permits.store import Permit, Registration

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _registration(session: Session, id_hash: str) -> str:
    registration = Registration(
        id=str(uuid.uuid4()),
        jurisdiction="chifeng",
        citizen_id_hash=id_hash,
        citizen_id_sealed=b"sealed",
        name="张三",
        sex="male",
        ethnicity="汉族",
        birth_date=date(1990, 1, 1),
        household_address="辽宁省沈阳市",
        household_region="210102",
        current_address="赤峰市红山区",
        current_region="150402",
        reason="employment",
        contact="13800000000",
        arrived_on=date(2026, 1, 5),
        registered_on=date(2026, 1, 8),
        declaration_due_on=date(2026, 1, 14),
        residence_start=date(2026, 1, 5),
        created_at=NOW,
    )
    session.add(registration)
    session.flush()
    return registration.id


def _permit(registration_id: str, id_hash: str, state: str) -> Permit:
    return Permit(
        id=str(uuid.uuid4()),
        registration_id=registration_id,
        jurisdiction="chifeng",
        citizen_id_hash=id_hash,
        state=state,
        receipt_number=uuid.uuid4().hex[:16],
        accepted_on=date(2026, 7, 6),
        issue_due_on=date(2026, 8, 5),
        residence_start=date(2026, 1, 5),
        updated_at=NOW,
    )


def test_one_person_one_live_permit(engine: Engine) -> None:
    """[CF §17]: a second live permit for the same person is refused by the database too."""
    with Session(engine) as session:
        registration = _registration(session, "h" * 64)
        session.add(_permit(registration, "h" * 64, "cancelled"))
        session.add(_permit(registration, "h" * 64, "valid"))
        session.commit()
        session.add(_permit(registration, "h" * 64, "accepted"))
        with pytest.raises(sa.exc.IntegrityError):
            session.commit()
        session.rollback()
        session.add(_permit(registration, "h" * 64, "cancelled"))
        session.add(_permit(registration, "g" * 64, "suspended"))
        session.commit()
