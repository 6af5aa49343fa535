"""Residence registration through the API: [CF §10-§11] on the official calendar."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.clock import FixedClock
from hub.composition import Hub
from hub.permits.store import Registration
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient
from tests.factories import ADULT, CHILD, registration_body


@pytest.fixture
def office(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> dict[str, str]:
    clock.set(datetime(2026, 10, 13, 2, 0, tzinfo=UTC))  # Tuesday 13 October 2026, China
    new = register_client("public-security", ("registry:read", "registry:write"))
    return bearer(access_token(app_client, new))


@pytest.mark.parametrize(
    ("arrived_on", "due", "late"),
    [
        # 7 working days [CF §10] across National Day 2026 and the make-up Saturday 10 Oct.
        ("2026-09-28", "2026-10-13", False),
        ("2026-09-25", "2026-10-12", True),
        ("2026-10-12", "2026-10-21", False),
    ],
)
def test_registration_records_lateness_on_the_official_calendar(
    app_client: TestClient, office: dict[str, str], arrived_on: str, due: str, late: bool
) -> None:
    response = app_client.post(
        "/registry/v1/registrations", headers=office, json=registration_body(arrived_on=arrived_on)
    )
    assert response.status_code == 201, response.text
    view = response.json()
    assert (view["declaration_due_on"], view["declared_late"]) == (due, late)
    assert view["jurisdiction"] == "chifeng"
    assert view["sex"] == "male" and view["birth_date"] == "1990-01-15"
    assert view["citizen_id"] == "210102************"
    assert response.headers["location"].endswith(view["id"])
    again = app_client.get(f"/registry/v1/registrations/{view['id']}", headers=office)
    assert again.json() == view


def test_the_clear_id_is_stored_nowhere(
    app_client: TestClient, office: dict[str, str], hub: Hub
) -> None:
    app_client.post("/registry/v1/registrations", headers=office, json=registration_body())
    with Session(hub.engine) as session:
        row = session.exec(select(Registration)).one()
        assert ADULT.encode() not in row.citizen_id_sealed
        assert ADULT not in str(row.model_dump(exclude={"citizen_id_sealed"}))
        audit = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        assert [(a.action, a.subject) for a in audit][-1] == (
            "registration.create",
            row.citizen_id_hash,
        )


def test_imported_temporary_permit_years(app_client: TestClient, office: dict[str, str]) -> None:
    response = app_client.post(
        "/registry/v1/registrations",
        headers=office,
        json=registration_body(temporary_permit_since="2019-05-01"),
    )
    assert response.status_code == 201
    assert response.json()["residence_start"] == "2019-05-01"
    assert response.json()["imported_from_temporary_permit"] is True


def test_a_guardian_declares_for_a_minor(app_client: TestClient, office: dict[str, str]) -> None:
    declarant = {"relation": "guardian", "citizen_id": ADULT, "because": "minor"}
    response = app_client.post(
        "/registry/v1/registrations",
        headers=office,
        json=registration_body(
            citizen_id=CHILD, declarant=declarant, reason="family", workplace=None
        ),
    )
    assert response.status_code == 201, response.text
    assert response.json()["declarant_relation"] == "guardian"


@pytest.mark.parametrize(
    ("changes", "status", "slug", "pointer"),
    [
        (
            {"citizen_id": ADULT[:-1] + ("0" if ADULT[-1] != "0" else "1")},
            422,
            "invalid-citizen-id",
            "/citizen_id",
        ),
        ({"current_region": "440305"}, 422, "registration-refused", "/current_region"),
        ({"arrived_on": "2026-10-14"}, 422, "registration-refused", "/arrived_on"),
        (
            {"temporary_permit_since": "2026-10-01"},
            422,
            "registration-refused",
            "/temporary_permit_since",
        ),
        # Born 15 January 1990 (the ID number says so); today is 13 October 2026.
        (
            {"temporary_permit_since": "1989-12-31"},
            422,
            "registration-refused",
            "/temporary_permit_since",
        ),
        (
            {"temporary_permit_since": "2026-10-20"},
            422,
            "registration-refused",
            "/temporary_permit_since",
        ),
        ({"arrived_on": "1989-12-31"}, 422, "registration-refused", "/arrived_on"),
        # A date is "YYYY-MM-DD": not seconds since 1970 (2019-05-01), not a date and time.
        (
            {"temporary_permit_since": 1556668800},
            422,
            "validation-failed",
            "/temporary_permit_since",
        ),
        (
            {"temporary_permit_since": "2019-05-01T00:00:00"},
            422,
            "validation-failed",
            "/temporary_permit_since",
        ),
        ({"arrived_on": 1789948800}, 422, "validation-failed", "/arrived_on"),
        (
            {"declarant": {"relation": "guardian", "citizen_id": CHILD, "because": "minor"}},
            422,
            "registration-refused",
            "/declarant/because",
        ),
        (
            {
                "declarant": {
                    "relation": "near-relative",
                    "citizen_id": CHILD,
                    "because": "disabled",
                }
            },
            422,
            "registration-refused",
            "/declarant/relation",
        ),
        ({"household_region": "2101"}, 422, "validation-failed", "/household_region"),
        ({"reason": "tourism"}, 422, "validation-failed", "/reason"),
    ],
)
def test_refusals_point_at_the_field(
    app_client: TestClient,
    office: dict[str, str],
    hub: Hub,
    changes: dict[str, Any],
    status: int,
    slug: str,
    pointer: str,
) -> None:
    response = app_client.post(
        "/registry/v1/registrations", headers=office, json=registration_body(**changes)
    )
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["type"] == f"/problems/{slug}"
    assert pointer in [error.get("pointer") for error in problem["errors"]]
    with Session(hub.engine) as session:
        assert session.exec(select(Registration)).all() == []
