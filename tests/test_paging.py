"""Lists that can grow are read a page at a time by following `Link: rel="next"`: every item
once, in order, whatever the page size, and a cursor the list did not give is a 422."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.clock import FixedClock
from hub.composition import Hub
from hub.connectors.store import Delivery
from hub.db import unit_of_work
from hub.permits.store import Permit, PermitEvent
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient
from tests.factories import STORED_AT, add_permits, assert_problem


def _all_pages(app_client: TestClient, url: str, headers: dict[str, str]) -> list[list[Any]]:
    pages = []
    while True:
        response = app_client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        following = httpx.Response(200, headers=response.headers).links.get("next")
        if following is None:
            return pages
        url = following["url"]


@pytest.fixture
def office(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> dict[str, str]:
    clock.set(datetime(2026, 11, 20, 2, tzinfo=UTC))
    new = register_client("public-security", ("registry:read", "registry:write", "exchange:admin"))
    return bearer(access_token(app_client, new))


def test_overdue_permits_page_by_deadline_then_id_each_read_audited_once(
    app_client: TestClient, office: dict[str, str], hub: Hub
) -> None:
    ids = add_permits(hub, "accepted", issue_due_on=date(2026, 11, 2), count=3)
    ids += add_permits(hub, "accepted", issue_due_on=date(2026, 11, 1), count=2)
    add_permits(hub, "accepted", issue_due_on=date(2026, 11, 25))  # not yet due

    pages = _all_pages(app_client, "/registry/v1/permits-overdue?limit=2", office)
    assert [len(page) for page in pages] == [2, 2, 1]
    listed = [(permit["issue_due_on"], permit["id"]) for page in pages for permit in page]
    assert listed == sorted(listed) and {permit_id for _, permit_id in listed} == set(ids)
    with Session(hub.engine) as session:
        reads = session.exec(
            select(AuditEntry.subject).where(col(AuditEntry.action) == "permit.overdue.read")
        ).all()
    assert len(reads) == len(set(reads)) == 5


def test_a_permits_events_page_by_seq(
    app_client: TestClient, office: dict[str, str], hub: Hub
) -> None:
    [permit_id] = add_permits(hub, "valid")
    with unit_of_work(hub.engine) as session:
        for step in range(5):
            session.add(
                PermitEvent(
                    permit_id=permit_id,
                    type="endorse",
                    payload={"step": step},
                    state_after="valid",
                    actor_client_id="test",
                    at=STORED_AT,
                )
            )
    pages = _all_pages(app_client, f"/registry/v1/permits/{permit_id}/events?limit=3", office)
    assert [[event["payload"]["step"] for event in page] for page in pages] == [[0, 1, 2], [3, 4]]


def test_dead_letters_page_by_event_then_department(
    app_client: TestClient, office: dict[str, str], hub: Hub
) -> None:
    [permit_id] = add_permits(hub, "valid")
    with unit_of_work(hub.engine) as session:
        permit = session.get(Permit, permit_id)
        assert permit is not None
        for _ in range(2):
            event = PermitEvent(
                permit_id=permit_id,
                type="endorse",
                payload={},
                state_after="valid",
                actor_client_id="test",
                at=STORED_AT,
            )
            session.add(event)
            session.flush()
            for department in ("education", "hr-social-security", "housing"):
                session.add(
                    Delivery(
                        event_seq=event.seq or 0,
                        department=department,
                        permit_id=permit_id,
                        status="dead",
                        attempts=20,
                        next_attempt_at=STORED_AT,
                        created_at=STORED_AT,
                    )
                )
    pages = _all_pages(app_client, "/exchange/v1/dead-letters?limit=4", office)
    assert [len(page) for page in pages] == [4, 2]
    keys = [(letter["event_seq"], letter["department"]) for page in pages for letter in page]
    assert keys == sorted(keys) and len(set(keys)) == 6


@pytest.mark.parametrize(
    "url",
    [
        "/registry/v1/permits-overdue?after=2026-13-01~x",
        "/registry/v1/permits-overdue?after=no-separator",
        "/registry/v1/permits-overdue?after=a~b~c",
        "/registry/v1/permits-overdue?after=%00",
        "/registry/v1/permits-overdue?limit=0",
        "/registry/v1/permits-overdue?limit=99999999999999999999",
        "/exchange/v1/dead-letters?after=12345678901~housing",
        "/exchange/v1/dead-letters?after=x~housing",
    ],
)
def test_a_cursor_it_did_not_give_is_a_422(
    app_client: TestClient, office: dict[str, str], url: str
) -> None:
    assert_problem(app_client.get(url, headers=office), 422, "validation-failed")
