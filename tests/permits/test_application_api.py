"""A whole journey through /registry/v1: register, apply, accepted or refused, issue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.app import Hub
from hub.audit import AuditEntry
from hub.clock import FixedClock
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient
from tests.permits.test_identity import build
from tests.permits.test_registration_api import body as registration_body

HOLDER = build("210102", "19900115")


def _at(
    clock: FixedClock, app_client: TestClient, register_client: RegisterClient, when: datetime
) -> dict[str, str]:
    clock.set(when)
    new = register_client("public-security", ("registry:read", "registry:write"))
    return bearer(access_token(app_client, new))


@pytest.fixture
def registration_id(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> str:
    office = _at(clock, app_client, register_client, datetime(2026, 3, 3, 2, tzinfo=UTC))
    response = app_client.post(
        "/registry/v1/registrations",
        headers=office,
        json=registration_body(arrived_on="2026-03-02", current_region="150429"),  # 宁城县
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def office(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock, registration_id: str
) -> dict[str, str]:
    """Seven months later, on Tuesday 13 October 2026."""
    return _at(clock, app_client, register_client, datetime(2026, 10, 13, 2, tzinfo=UTC))


def apply(app_client: TestClient, office: dict[str, str], **claim: Any) -> Any:
    return app_client.post("/registry/v1/applications", headers=office, json=claim)


def test_accepted_with_documents_then_issued(
    app_client: TestClient, office: dict[str, str], registration_id: str, hub: Hub
) -> None:
    response = apply(
        app_client,
        office,
        registration_id=registration_id,
        condition="residence",
        form="rented",
        materials=["id-card", "photo", "lease-contract"],
    )
    assert response.status_code == 201, response.text
    accepted = response.json()
    permit = accepted["permit"]
    assert accepted["met_by"] == "documents"
    assert permit["state"] == "accepted" and permit["receipt_number"]
    assert permit["issue_due_on"] == "2026-11-12"  # 30 days [CF §17]
    assert permit["residence_start"] == "2026-03-02"

    issued = app_client.post(
        f"/registry/v1/permits/{permit['id']}/issue", headers={**office, "If-Match": '"1"'}
    )
    assert issued.status_code == 200
    events = app_client.get(f"/registry/v1/permits/{permit['id']}/events", headers=office).json()
    assert [e["type"] for e in events] == ["accept", "issue"]

    again = apply(
        app_client,
        office,
        registration_id=registration_id,
        condition="residence",
        form="rented",
        materials=["id-card", "photo", "lease-contract"],
    )
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/permit-exists"


def test_incomplete_lists_exactly_what_is_missing(
    app_client: TestClient, office: dict[str, str], registration_id: str, hub: Hub
) -> None:
    response = apply(
        app_client,
        office,
        registration_id=registration_id,
        condition="residence",
        form="rented",
        materials=["id-card"],
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "/problems/application-incomplete"
    assert [m["code"] for m in problem["missing"]] == ["photo", "lease-contract"]
    with Session(hub.engine) as session:
        outcomes = [
            a.outcome for a in session.exec(select(AuditEntry)) if a.action == "application.assess"
        ]
    assert outcomes == ["refused:incomplete"]  # refusals are audited too


def test_too_early_is_ineligible_citing_the_seed(
    app_client: TestClient,
    register_client: RegisterClient,
    clock: FixedClock,
    registration_id: str,
) -> None:
    early = _at(clock, app_client, register_client, datetime(2026, 9, 1, 2, tzinfo=UTC))
    response = apply(
        app_client,
        early,
        registration_id=registration_id,
        condition="residence",
        form="rented",
        materials=["id-card", "photo", "lease-contract"],
    )
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/residence-too-short"
    assert "CF" in response.json()["cite"]


def test_record_on_file_is_idempotent_and_conflicts_are_refused(
    app_client: TestClient, office: dict[str, str]
) -> None:
    proof = {
        "citizen_id": HOLDER,
        "kind": "rental-registration",
        "source_department": "housing",
        "source_proof_id": "CF-RENT-1",
        "valid_from": "2026-03-01",
        "details": {},
    }
    first = app_client.post("/registry/v1/proofs", headers=office, json=proof)
    assert first.status_code == 201, first.text
    second = app_client.post("/registry/v1/proofs", headers=office, json=proof)
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    changed = app_client.post(
        "/registry/v1/proofs", headers=office, json={**proof, "valid_from": "2026-04-01"}
    )
    assert changed.status_code == 409 and changed.json()["type"] == "/problems/proof-conflict"
    wrong = app_client.post(
        "/registry/v1/proofs",
        headers=office,
        json={**proof, "source_department": "health", "source_proof_id": "x"},
    )
    assert wrong.status_code == 422 and wrong.json()["type"] == "/problems/claim-invalid"


def test_unknown_registration_and_claims(
    app_client: TestClient, office: dict[str, str], registration_id: str
) -> None:
    missing = apply(app_client, office, registration_id="nope")
    assert missing.status_code == 404
    bad_form = apply(
        app_client, office, registration_id=registration_id, condition="residence", form="castle"
    )
    assert bad_form.status_code == 422 and bad_form.json()["type"] == "/problems/claim-invalid"
