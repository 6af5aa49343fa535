"""The changes feed (GET /exchange/v1/feed) through the real app, on both databases: pages
behind opaque cursors, only subscribed events, only agreed fields, facts as of each event,
refusals, gaps that may still fill, and a page's cost independent of its size.

Departments (tests/connectors/test_exchange_api.py, DEPARTMENTS): education pulls `issue` and
`cancel`; HR pulls everything; housing only receives pushes; health has no agreement.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.clock import FixedClock
from hub.composition import Hub
from hub.connectors.exchange import SETTLE, decode_cursor, encode_cursor
from hub.db import INT_MAX, unit_of_work
from hub.permits import domain, service
from hub.permits.store import Outbox, Permit, PermitEvent
from hub.schemas import agreements
from hub.schemas import domain as schema_domain
from hub.settings import Settings
from tests.conftest import RegisterClient
from tests.connectors.helpers import (
    NOW,
    OFFICE,
    Holder,
    department,
    exchange_audit,
    make_holders,
    seed_agreements,
    set_agreement_status,
    with_departments,
)

EDUCATION_FIELDS = {"citizen_id", "name", "current_region"}
EDUCATION_PERMIT = {"id", "jurisdiction", "state", "valid_from", "expires_on", "residence_start"}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return with_departments(settings, tmp_path)


@pytest.fixture
def seeded(hub: Hub, clock: FixedClock) -> Hub:
    return seed_agreements(hub, clock)


@pytest.fixture
def holders(seeded: Hub) -> list[Holder]:
    """Seven holders, each with an `accept` then an `issue` event (seq 1..14)."""
    return make_holders(seeded, 1, 7)


@pytest.fixture
def education(
    app_client: TestClient, register_client: RegisterClient, seeded: Hub
) -> dict[str, str]:
    return department(app_client, register_client, "education", "exchange:feed")


def read(
    client: TestClient, headers: dict[str, str], after: str | None = None, limit: int | None = None
) -> Any:
    params: dict[str, Any] = {}
    if after is not None:
        params["after"] = after
    if limit is not None:
        params["limit"] = limit
    return client.get("/exchange/v1/feed", params=params, headers=headers)


def pages(
    client: TestClient, headers: dict[str, str], limit: int, after: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every page until has_more is false."""
    while True:
        response = read(client, headers, after, limit)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        yield page
        if not page["has_more"]:
            return
        after = page["next"]


def test_pages_of_subscribed_events_with_only_the_agreed_fields(
    app_client: TestClient,
    register_client: RegisterClient,
    education: dict[str, str],
    holders: list[Holder],
) -> None:
    got = list(pages(app_client, education, limit=3))
    assert [len(page["records"]) for page in got] == [3, 3, 1]
    records = [record for page in got for record in page["records"]]
    assert [r["event"]["type"] for r in records] == ["issue"] * 7  # accept is not subscribed
    assert [r["permit"]["id"] for r in records] == [h.permit_id for h in holders]
    assert [int(r["event"]["id"]) for r in records] == [2, 4, 6, 8, 10, 12, 14]
    for record, holder in zip(records, holders, strict=True):
        assert set(record) == {"$schema", "schema_version", "event", "permit", "holder"}
        assert set(record["holder"]) == EDUCATION_FIELDS
        assert set(record["permit"]) == EDUCATION_PERMIT
        assert record["holder"]["citizen_id"] == holder.citizen_id
        assert record["permit"]["state"] == "valid"
        assert record["event"]["permit_version"] == 2
    assert decode_cursor(got[0]["next"]) == 7  # the last examined: accept 7 is passed over
    assert decode_cursor(got[-1]["next"]) == 14

    caught_up = read(app_client, education, got[-1]["next"]).json()
    assert caught_up == {"records": [], "next": got[-1]["next"], "has_more": False}

    hr = department(app_client, register_client, "hr-social-security", "exchange:feed")
    everything = [r for page in pages(app_client, hr, limit=5) for r in page["records"]]
    assert [r["event"]["type"] for r in everything] == ["accept", "issue"] * 7
    assert {frozenset(r["holder"]) for r in everything} == {
        frozenset({"citizen_id", "name", "workplace", "current_region"})
    }
    assert everything[0]["permit"]["state"] == "accepted"  # as of the event


def test_a_cursor_is_stable_and_later_events_follow_with_their_own_facts(
    app_client: TestClient, education: dict[str, str], holders: list[Holder], seeded: Hub
) -> None:
    first = read(app_client, education, limit=4).json()
    second = read(app_client, education, first["next"], 4)
    assert second.status_code == 200
    assert read(app_client, education, first["next"], 4).json() == second.json()
    assert second.headers["cache-control"] == "no-store"
    end = second.json()["next"]
    assert second.json()["has_more"] is False

    with unit_of_work(seeded.engine) as session:
        service.perform(
            session,
            seeded.lifecycle,
            holders[0].permit_id,
            domain.Action.CANCEL,
            expected_version=2,
            actor=OFFICE,
            now=NOW,
            today=NOW.date(),
            details={"reason": "false-materials"},
        )
    later = read(app_client, education, end).json()
    assert [(r["event"]["type"], r["permit"]["state"]) for r in later["records"]] == [
        ("cancel", "cancelled")
    ]
    assert decode_cursor(later["next"]) == 15
    again = read(app_client, education, limit=1).json()["records"][0]
    assert (again["permit"]["id"], again["permit"]["state"]) == (holders[0].permit_id, "valid")


def test_an_event_without_a_snapshot_falls_back_to_the_permit(
    app_client: TestClient, education: dict[str, str], holders: list[Holder], seeded: Hub
) -> None:
    with unit_of_work(seeded.engine) as session:
        session.execute(
            sa.update(Outbox).where(col(Outbox.event_seq) == 2).values(snapshot=sa.null())
        )
        permit = session.get(Permit, holders[0].permit_id)
        assert permit is not None
        permit.card_serial = None
        permit.state = "suspended"  # what the permit says now
        session.add(permit)
    (record,) = read(app_client, education, limit=1).json()["records"]
    assert record["permit"]["state"] == "suspended"
    assert "permit_version" in record["event"]


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "djE6LTE",  # v1:-1
        base64.urlsafe_b64encode(b"v2:5").decode().rstrip("="),
        base64.urlsafe_b64encode(b"v1:05").decode().rstrip("="),
        encode_cursor(5) + "==",
        "x" * 65,
        encode_cursor(INT_MAX + 1),  # past any event number (an int4 column)
        encode_cursor(2**63),
    ],
)
def test_a_cursor_the_hub_did_not_issue_is_refused(
    app_client: TestClient, education: dict[str, str], cursor: str
) -> None:
    response = read(app_client, education, cursor)
    assert response.status_code in (400, 422), response.text
    problem = response.json()
    assert [e.get("parameter") for e in problem["errors"]] == ["after"]


@pytest.mark.parametrize("cursor", ["", "not a cursor", "djE6MTQ=", "x" * 65, "游标"])
def test_a_text_outside_the_cursor_alphabet_is_refused_by_its_documented_pattern(
    app_client: TestClient, education: dict[str, str], cursor: str
) -> None:
    """What the OpenAPI pattern states is checked first, as a 422 on `after`; only a
    well-formed text the hub did not issue is the 400 the pattern cannot state."""
    operation = app_client.get("/openapi.json").json()["paths"]["/exchange/v1/feed"]["get"]
    (after,) = [p["schema"] for p in operation["parameters"] if p["name"] == "after"]
    (pattern,) = [s["pattern"] for s in after["anyOf"] if s.get("type") == "string"]
    assert re.fullmatch(pattern, cursor) is None
    response = read(app_client, education, cursor)
    assert response.status_code == 422, response.text
    assert [e.get("parameter") for e in response.json()["errors"]] == ["after"]
    for text, status in ((encode_cursor(14), 200), ("AAAA", 400)):  # "AAAA": three NUL bytes
        assert re.fullmatch(pattern, text)
        assert read(app_client, education, text).status_code == status


def test_the_last_possible_position_is_an_empty_page(
    app_client: TestClient, education: dict[str, str], holders: list[Holder]
) -> None:
    last = encode_cursor(INT_MAX)
    assert decode_cursor(last) == INT_MAX
    page = read(app_client, education, last)
    assert page.status_code == 200, page.text
    assert page.json() == {"records": [], "next": last, "has_more": False}


def test_limits_and_refusals(
    app_client: TestClient,
    register_client: RegisterClient,
    education: dict[str, str],
    seeded: Hub,
) -> None:
    for limit in (0, 501):
        response = read(app_client, education, limit=limit)
        assert response.status_code == 422
        assert response.json()["errors"][0]["parameter"] == "limit"
    for name, kind in (
        ("housing", "pull-not-enabled"),  # pushes only
        ("civil-affairs", "pull-not-enabled"),  # no link
        ("health", "no-agreement"),  # its agreement does not exist
    ):
        headers = department(app_client, register_client, name, "exchange:feed")
        response = read(app_client, headers)
        assert response.status_code == 403, response.text
        assert response.json()["type"] == f"/problems/{kind}"
    set_agreement_status(seeded, "education-holders", schema_domain.AgreementStatus.SUSPENDED)
    suspended = read(app_client, education)
    assert suspended.status_code == 403
    assert suspended.json()["type"] == "/problems/no-agreement"
    lookup_only = department(app_client, register_client, "education", "exchange:lookup")
    assert read(app_client, lookup_only).json()["type"] == "/problems/insufficient-scope"
    entries = exchange_audit(seeded, "exchange.feed")
    assert [(e.actor_department, e.outcome) for e in entries] == [
        ("housing", "refused"),
        ("civil-affairs", "refused"),
        ("health", "refused"),
        ("education", "refused"),
    ]


def test_each_page_read_is_audited_once_with_the_agreements_purpose(
    app_client: TestClient, education: dict[str, str], holders: list[Holder], seeded: Hub
) -> None:
    list(pages(app_client, education, limit=5))
    with Session(seeded.engine) as session:
        purpose = agreements.latest(session, "education-holders").purpose
    entries = exchange_audit(seeded, "exchange.feed")
    assert [(e.outcome, e.purpose, e.subject) for e in entries] == [
        ("5", purpose, "permit_event:2..10"),
        ("2", purpose, "permit_event:12..14"),
    ]


def test_a_gap_that_may_still_fill_holds_the_feed_back_until_it_settles(
    app_client: TestClient,
    education: dict[str, str],
    holders: list[Holder],
    seeded: Hub,
    clock: FixedClock,
) -> None:
    """Event 16 is committed while 15 is not (yet): PostgreSQL hands out numbers at INSERT and
    transactions commit in any order. Passing 16 now would lose 15 for good."""
    permit = holders[0].permit_id
    with unit_of_work(seeded.engine) as session:
        event = PermitEvent(
            seq=16,
            permit_id=permit,
            type="cancel",
            payload={},
            state_after="cancelled",
            actor_client_id="office-1",
            at=NOW,
        )
        session.add(event)
        session.flush()
        session.add(Outbox(event_seq=16, permit_id=permit, created_at=NOW, snapshot=None))
    caught_up = read(app_client, education, encode_cursor(14)).json()
    assert caught_up == {"records": [], "next": encode_cursor(14), "has_more": False}
    first = read(app_client, education).json()
    assert len(first["records"]) == 7 and decode_cursor(first["next"]) == 14

    clock.advance(SETTLE + timedelta(seconds=1))  # 15 never came: a rolled-back transaction
    settled = read(app_client, education, encode_cursor(14)).json()
    assert [r["event"]["id"] for r in settled["records"]] == ["16"]
    assert decode_cursor(settled["next"]) == 16


def _statements(hub: Hub) -> tuple[list[str], Any]:
    """Statements the requests run; the app's once-a-second refresh of the token state
    (auth_generation, revocations, blocked clients) runs on the same engine and is not
    counted."""
    seen: list[str] = []
    background = (
        "auth_generation",
        "revoked_token",
        "signing_key",
        "oauth_client",
        "client_auth_failure",
    )

    def count(*args: Any) -> None:
        statement = str(args[2])
        if not any(table in statement for table in background):
            seen.append(statement)

    sa.event.listen(hub.engine, "before_cursor_execute", count)
    return seen, count


def test_a_page_costs_the_same_queries_whatever_its_size_and_500_are_fast(
    app_client: TestClient, register_client: RegisterClient, seeded: Hub
) -> None:
    make_holders(seeded, 1, 250)  # 500 events
    hr = department(app_client, register_client, "hr-social-security", "exchange:feed")
    read(app_client, hr, limit=1)  # compiles and caches the validator, warms the pool
    seen, listener = _statements(seeded)
    try:
        small = read(app_client, hr, limit=5)
        small_count = len(seen)
        seen.clear()
        started = time.perf_counter()
        full = read(app_client, hr, limit=500)
        elapsed = time.perf_counter() - started
        full_count = len(seen)
    finally:
        sa.event.remove(seeded.engine, "before_cursor_execute", listener)
    assert small.status_code == 200 and full.status_code == 200
    assert len(full.json()["records"]) == 500 and full.json()["has_more"] is False
    assert full_count == small_count, seen
    assert elapsed < 1.0, f"a page of 500 took {elapsed:.2f}s"
    with Session(seeded.engine) as session:
        assert len(session.exec(select(PermitEvent.seq)).all()) == 500
