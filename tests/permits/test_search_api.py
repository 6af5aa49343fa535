"""Finding a case (POST /registry/v1/search): by citizen ID, receipt number, card serial or
name with birth date, only in the caller's jurisdictions, a page at a time, each search
audited with its purpose and never with the value searched for."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.clock import FixedClock
from hub.composition import Hub
from hub.db import unit_of_work
from hub.permits.identity import CitizenId
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient
from tests.factories import ADULT, assert_problem, build, new_card, registration_body

SEARCH = "/registry/v1/search"
PURPOSE = "窗口办理：签注 (case 2026-118)"


def _office(
    app_client: TestClient, register_client: RegisterClient, *jurisdictions: str
) -> dict[str, str]:
    new = register_client(
        "public-security", ("registry:read", "registry:write"), jurisdictions=jurisdictions
    )
    return bearer(access_token(app_client, new))


@pytest.fixture
def chifeng(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> dict[str, str]:
    clock.set(datetime(2026, 10, 13, 2, 0, tzinfo=UTC))
    return _office(app_client, register_client, "chifeng")


def _register(app_client: TestClient, office: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = app_client.post(
        "/registry/v1/registrations", headers=office, json=registration_body(**changes)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _apply(app_client: TestClient, office: dict[str, str], registration_id: str) -> dict[str, Any]:
    response = app_client.post(
        "/registry/v1/applications",
        headers=office,
        json={
            "registration_id": registration_id,
            "condition": "residence",
            "form": "rented",
            "materials": ["id-card", "photo", "lease-contract"],
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json()["permit"])


def _search(app_client: TestClient, office: dict[str, str], **body: Any) -> Any:
    return app_client.post(SEARCH, headers=office, json={"purpose": PURPOSE, **body})


def _searches(hub: Hub) -> list[AuditEntry]:
    with Session(hub.engine) as session:
        query = select(AuditEntry).where(col(AuditEntry.action).startswith("registration.search"))
        return list(session.exec(query.order_by(col(AuditEntry.seq))).all())


def test_found_by_citizen_id_with_its_permit_masked_and_audited_with_the_purpose(
    app_client: TestClient, chifeng: dict[str, str], hub: Hub
) -> None:
    registration = _register(app_client, chifeng, temporary_permit_since="2025-06-02")
    permit = _apply(app_client, chifeng, registration["id"])
    _register(app_client, chifeng, citizen_id=build("210102", "19850101"))  # someone else

    response = _search(app_client, chifeng, citizen_id=ADULT.lower())
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    page = response.json()
    assert page["next"] is None
    [hit] = page["hits"]
    assert hit["registration"]["id"] == registration["id"]
    assert hit["registration"]["citizen_id"] == "210102************"
    assert [found["id"] for found in hit["permits"]] == [permit["id"]]
    assert hit["permits"][0]["allowed_actions"] == ["issue", "cancel"]
    assert ADULT not in response.text

    [entry] = _searches(hub)
    assert entry.action == "registration.search.by-citizen-id"
    assert entry.outcome == "disclosed" and entry.purpose == PURPOSE
    assert entry.subject == hub.vault.lookup_hash(CitizenId(ADULT))
    assert ADULT not in repr(entry.model_dump())


def test_found_by_receipt_number_and_by_any_card_ever_made(
    app_client: TestClient, chifeng: dict[str, str], hub: Hub
) -> None:
    registration = _register(app_client, chifeng, temporary_permit_since="2025-06-02")
    permit = _apply(app_client, chifeng, registration["id"])
    with unit_of_work(hub.engine) as session:
        for serial, status in (("CF0000000001", "lost"), ("CF0000000002", "live")):
            session.add(new_card(serial, permit["id"], date(2026, 10, 13), status))

    by_receipt = _search(app_client, chifeng, receipt_number=permit["receipt_number"]).json()
    by_lost_card = _search(app_client, chifeng, card_serial="CF0000000001").json()
    assert [hit["registration"]["id"] for hit in by_receipt["hits"]] == [registration["id"]]
    assert by_lost_card["hits"] == by_receipt["hits"]
    assert _search(app_client, chifeng, card_serial="CF9999999999").json()["hits"] == []
    kinds = [(entry.action, entry.outcome) for entry in _searches(hub)]
    assert kinds == [
        ("registration.search.by-receipt-number", "disclosed"),
        ("registration.search.by-card-serial", "disclosed"),
        ("registration.search.by-card-serial", "none"),
    ]


def test_name_and_birth_date_page_by_cursor(
    app_client: TestClient, chifeng: dict[str, str]
) -> None:
    ids = {
        _register(app_client, chifeng, citizen_id=build("210102", "19900115", f"00{n}"))["id"]
        for n in range(1, 4)
    }
    _register(app_client, chifeng, citizen_id=build("210102", "19900116"))  # born a day later

    seen: list[str] = []
    after = None
    for expected in (2, 1):
        page = _search(
            app_client, chifeng, name="王芳", birth_date="1990-01-15", limit=2, after=after
        ).json()
        assert len(page["hits"]) == expected
        seen += [hit["registration"]["id"] for hit in page["hits"]]
        after = page["next"]
    assert after is None
    assert seen == sorted(ids)


def test_another_jurisdictions_office_finds_nobody_and_one_with_none_is_refused(
    app_client: TestClient,
    chifeng: dict[str, str],
    register_client: RegisterClient,
    hub: Hub,
) -> None:
    _register(app_client, chifeng)
    nanning = _office(app_client, register_client, "nanning")
    assert _search(app_client, nanning, citizen_id=ADULT).json() == {"hits": [], "next": None}
    assert [entry.outcome for entry in _searches(hub)] == ["none"]
    assert _searches(hub)[0].subject is None

    nowhere = _office(app_client, register_client)
    refused = assert_problem(_search(app_client, nowhere, citizen_id=ADULT), 403, "no-jurisdiction")
    assert "jurisdiction" in refused["detail"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"citizen_id": ADULT, "receipt_number": "R1"}, id="two-ways"),
        pytest.param({"name": "王芳"}, id="name-without-birth-date"),
        pytest.param({"birth_date": "1990-01-15"}, id="birth-date-without-name"),
        pytest.param({}, id="no-way"),
        pytest.param({"citizen_id": None}, id="null-id"),
        pytest.param({"citizen_id": ADULT, "name": None}, id="a-second-way-null"),
        pytest.param({"citizen_id": ADULT, "purpose": "a\x00b"}, id="nul-in-purpose"),
        pytest.param({"citizen_id": ADULT, "purpose": ""}, id="no-purpose"),
        pytest.param({"citizen_id": ADULT, "limit": 10**30}, id="huge-limit"),
        pytest.param({"citizen_id": ADULT, "extra": 1}, id="unknown-member"),
    ],
)
def test_bad_searches_are_422_and_change_nothing(
    app_client: TestClient, chifeng: dict[str, str], hub: Hub, body: dict[str, Any]
) -> None:
    response = app_client.post(SEARCH, headers=chifeng, json={"purpose": PURPOSE, **body})
    assert_problem(response, 422, "validation-failed")
    assert _searches(hub) == []


def test_an_invalid_citizen_id_is_not_echoed(
    app_client: TestClient, chifeng: dict[str, str]
) -> None:
    wrong = ADULT[:-1] + ("0" if ADULT[-1] != "0" else "1")
    response = _search(app_client, chifeng, citizen_id=wrong)
    assert_problem(response, 422, "invalid-citizen-id")
    assert wrong not in response.text


def test_a_department_cannot_search(
    app_client: TestClient, chifeng: dict[str, str], register_client: RegisterClient
) -> None:
    housing = bearer(access_token(app_client, register_client("housing", ("exchange:lookup",))))
    assert _search(app_client, housing, citizen_id=ADULT).status_code == 403
