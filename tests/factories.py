"""Builders that tests in several modules share: numbers, rows, request bodies and the
assertions every API test makes, so that no test module imports another's helpers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.card.store import Card
from hub.composition import Hub
from hub.db import unit_of_work
from hub.permits.store import Permit, Registration
from hub.problems import MEDIA_TYPE

CONFIG = Path(__file__).resolve().parents[1] / "config"
SHIPPED_JURISDICTIONS = CONFIG / "jurisdictions"
SHIPPED_ACCESS_POLICY = CONFIG / "access.toml"
STORED_AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
"""When the rows made here were written."""


def with_check(first17: str) -> str:
    """Append the ISO 7064 MOD 11-2 check character, computed from the definition."""
    assert len(first17) == 17 and first17.isascii() and first17.isdigit()
    total = sum(int(digit) * (2 ** (17 - i) % 11) for i, digit in enumerate(first17))
    check = (12 - total % 11) % 11  # the value that brings the full sum to 1 mod 11
    return first17 + ("X" if check == 10 else str(check))


def build(region: str, born: str, sequence: str = "001") -> str:
    """A number with a correct check digit, so a test isolates the rule it is about."""
    return with_check(region + born + sequence)


def add_registration(session: Session, id_hash: str) -> str:
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
        created_at=STORED_AT,
    )
    session.add(registration)
    session.flush()
    return registration.id


def new_permit(registration_id: str, id_hash: str, state: str) -> Permit:
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
        updated_at=STORED_AT,
    )


ADULT = build("210102", "19900115")
CHILD = build("210102", "20150301")


def new_card(serial: str, permit_id: str, issued_on: date, status: str = "live") -> Card:
    """A first-issuance card of the permit, free of charge."""
    return Card(
        serial=serial,
        permit_id=permit_id,
        status=status,
        reason="first-issuance",
        fee="free",
        issued_on=issued_on,
    )


def registration_body(**changes: Any) -> dict[str, Any]:
    base = {
        "citizen_id": ADULT,
        "name": "王芳",
        "ethnicity": "汉族",
        "household_address": "辽宁省沈阳市和平区某街1号",
        "household_region": "210102",
        "current_address": "赤峰市红山区某小区2号楼",
        "current_region": "150402",
        "reason": "employment",
        "workplace": "赤峰某建材有限公司",
        "contact": "13800000000",
        "arrived_on": "2026-09-28",
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def add_permits(
    hub: Hub,
    state: str,
    *,
    expires_on: date | None = None,
    issue_due_on: date | None = None,
    count: int = 1,
) -> list[str]:
    """Permits in `state`, each of its own holder, with the dates given set directly."""
    ids = []
    with unit_of_work(hub.engine) as session:
        for _ in range(count):
            holder = uuid.uuid4().hex * 2
            permit = new_permit(add_registration(session, holder), holder, state)
            if expires_on is not None:
                permit.valid_from = expires_on - timedelta(days=365)
                permit.expires_on = expires_on
            if issue_due_on is not None:
                permit.issue_due_on = issue_due_on
            session.add(permit)
            ids.append(permit.id)
    return ids


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    """The response is an RFC 9457 document of the given type; returns its members."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert response.headers["content-language"] in ("zh-CN", "en")
    return body


OTHER_SECRET = "another-hosts-master-secret-0123456789abcdef"
SENTENCE = "belongs to another master secret than this host's (HUB_SECRET_KEY)"


def rows_of(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a refused process changed nothing."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            name: sorted(
                (tuple(map(repr, row)) for row in connection.execute(table.select())),
            )
            for name, table in metadata.tables.items()
        }


def add_deliveries(engine: Engine, permit_id: str, **status_by_department: str) -> None:
    """An "issue" event (seq 1) of the permit and its deliveries, each department's in the
    given status, all made at STORED_AT."""
    with unit_of_work(engine) as session:
        session.execute(
            sa.text(
                "INSERT INTO permit_event (seq, permit_id, type, payload, state_after,"
                " actor_client_id, at) VALUES (1, :p, 'issue', '{}', 'valid', 't', :at)"
            ),
            {"p": permit_id, "at": STORED_AT},
        )
        for department, status in status_by_department.items():
            session.execute(
                sa.text(
                    "INSERT INTO delivery (event_seq, department, permit_id, status, attempts,"
                    " next_attempt_at, created_at) VALUES (1, :d, :p, :s, 0, :at, :at)"
                ),
                {"d": department.replace("_", "-"), "p": permit_id, "s": status, "at": STORED_AT},
            )
