"""Bulk rows store exactly what they were given, or nothing: U+0000 is refused on both
databases (PostgreSQL will not read it from JSON; SQLite's json_extract would cut the string)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub import bulk
from hub.audit import AUDIT_LOG
from hub.db import unit_of_work
from hub.verification.store import DECISIONS

pytestmark = pytest.mark.new_database  # the rows its services write, counted from none

AT = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def audit_row(seq: int, purpose: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "chain": 1,
        "position": seq,
        "actor_client_id": "housing-portal",
        "action": "permit.read",
        "purpose": purpose,
        "outcome": "granted",
        "prev_hash": "0" * 64,
        "row_hash": "1" * 64,
    }


def purposes(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        query = sa.select(AUDIT_LOG.c.purpose).order_by(AUDIT_LOG.c.seq)
        return list(connection.execute(query).scalars())


def test_a_nul_in_a_row_is_refused_and_nothing_is_written(engine: Engine) -> None:
    rows = [audit_row(1, "rental subsidy"), audit_row(2, "rental\x00 subsidy")]
    with pytest.raises(ValueError, match="U\\+0000"), unit_of_work(engine) as session:
        bulk.insert_rows(session, AUDIT_LOG, rows, constants={"at": AT})
    assert purposes(engine) == []


def test_a_nul_in_an_update_is_refused_and_nothing_changes(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        bulk.insert_rows(session, AUDIT_LOG, [audit_row(1, "first")], constants={"at": AT})
    with pytest.raises(ValueError, match="U\\+0000"), unit_of_work(engine) as session:
        bulk.update_rows(session, AUDIT_LOG, "seq", [{"seq": 1, "purpose": "se\x00cond"}])
    assert purposes(engine) == ["first"]


def test_text_that_only_looks_like_a_nul_is_carried_as_given(engine: Engine) -> None:
    """A typed backslash-u0000 is encoded as an escaped backslash: no refusal, no change."""
    typed = ["\\u0000", "a \\\\u0000 b", "\ufffd", "居住证\\u0000"]
    rows = [audit_row(seq, purpose) for seq, purpose in enumerate(typed, start=1)]
    with unit_of_work(engine) as session:
        bulk.insert_rows(session, AUDIT_LOG, rows, constants={"at": AT})
    assert purposes(engine) == typed


def test_a_nul_inside_a_json_value_is_refused_too(engine: Engine) -> None:
    """PostgreSQL's json_to_recordset refuses it inside a JSON value as well: one rule for
    both databases, whatever column the string is bound for."""
    row = {
        "id": "0193a0f6-0000-7000-8000-000000000001",
        "client_id": "edu-window-7",
        "department": "education",
        "service": "compulsory-education",
        "card_serial": None,
        "decision": "deny",
        "reasons": ["card-\x00unknown", "a typed \\u0000"],
        "offline": False,
    }
    times = {"decided_at": AT, "recorded_at": AT}
    with pytest.raises(ValueError, match="U\\+0000"), unit_of_work(engine) as session:
        bulk.insert_rows(session, DECISIONS, [row], constants=times)
    row["reasons"] = ["a typed \\u0000", "\\\\u0000"]
    with unit_of_work(engine) as session:
        bulk.insert_rows(session, DECISIONS, [row], constants=times)
    with engine.connect() as connection:
        stored = connection.execute(sa.select(DECISIONS.c.reasons)).scalar_one()
    assert stored == ["a typed \\u0000", "\\\\u0000"]
