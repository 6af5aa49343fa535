"""A whole journey through /registry/v1: register, apply, accepted or refused, issue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.audit import AuditEntry
from hub.clock import FixedClock
from hub.composition import Hub
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient
from tests.factories import build
from tests.factories import registration_body as registration_body

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


CHIFENG_FORMS = {
    "employment": ["appointed", "labour-contract", "business-licence"],
    "residence": ["owned", "purchased", "rented", "dormitory"],
    "study": ["enrolled"],
}


@pytest.mark.parametrize(
    ("claim", "pointer", "zh", "en"),
    [
        (
            {"condition": "residence", "form": "rented-housing"},
            "/form",
            "赤峰市的合法稳定住所条件没有“rented-housing”这一形式；"
            "可申领的形式：owned、purchased、rented、dormitory",
            "Chifeng has no form 'rented-housing' of lawful stable residence; its forms: owned, "
            "purchased, rented, dormitory",
        ),
        (
            {"form": "castle"},
            "/form",
            "赤峰市没有“castle”这一申领形式；可申领的条件及形式："
            "合法稳定就业（employment）：appointed、labour-contract、business-licence；"
            "合法稳定住所（residence）：owned、purchased、rented、dormitory；"
            "连续就读（study）：enrolled",
            "Chifeng has no form 'castle'; the conditions and their forms: lawful stable "
            "employment (employment): appointed, labour-contract, business-licence; lawful "
            "stable residence (residence): owned, purchased, rented, dormitory; continuous "
            "study (study): enrolled",
        ),
    ],
)
def test_a_claim_the_jurisdiction_cannot_hear_lists_its_forms_in_either_language(
    app_client: TestClient,
    office: dict[str, str],
    registration_id: str,
    claim: dict[str, str],
    pointer: str,
    zh: str,
    en: str,
) -> None:
    for language, detail in (("zh-CN", zh), ("en", en)):
        answer = app_client.post(
            "/registry/v1/applications",
            headers={**office, "Accept-Language": language},
            json={"registration_id": registration_id, **claim},
        )
        assert answer.status_code == 422
        problem = answer.json()
        assert problem["type"] == "/problems/claim-invalid"
        assert problem["detail"] == detail
        assert problem["errors"] == [{"detail": detail, "pointer": pointer}]
        assert problem["forms"] == CHIFENG_FORMS


def test_a_proof_from_the_wrong_department_is_refused_in_either_language(
    app_client: TestClient, office: dict[str, str]
) -> None:
    proof = {
        "citizen_id": HOLDER,
        "kind": "rental-registration",
        "source_department": "health",
        "source_proof_id": "CF-RENT-2",
        "valid_from": "2026-03-01",
    }
    details = {
        "zh-CN": "rental-registration 证明由 housing 出具，不由 health 出具",
        "en": "A rental-registration proof comes from housing, not health",
    }
    for language, detail in details.items():
        answer = app_client.post(
            "/registry/v1/proofs", headers={**office, "Accept-Language": language}, json=proof
        )
        assert answer.status_code == 422
        assert answer.json()["detail"] == detail
        assert answer.json()["errors"] == [{"detail": detail, "pointer": "/source_department"}]


def _issued_permit(app_client: TestClient, office: dict[str, str], registration_id: str) -> str:
    accepted = apply(
        app_client,
        office,
        registration_id=registration_id,
        condition="residence",
        form="rented",
        materials=["id-card", "photo", "lease-contract"],
    ).json()["permit"]
    app_client.post(
        f"/registry/v1/permits/{accepted['id']}/issue", headers={**office, "If-Match": '"1"'}
    )
    return str(accepted["id"])


@pytest.mark.parametrize(
    ("reported", "overdue", "start_after"),
    [
        # Moved Tue 20 Oct; 7 working days [CF §19] end Thu 29 Oct; a month ends 20 Nov.
        (datetime(2026, 10, 29, 2, tzinfo=UTC), False, "2026-03-02"),
        (datetime(2026, 11, 20, 2, tzinfo=UTC), True, "2026-03-02"),
        (datetime(2026, 11, 23, 2, tzinfo=UTC), True, "2026-11-23"),
    ],
)
def test_address_change_and_residence_on_any_date(
    app_client: TestClient,
    register_client: RegisterClient,
    clock: FixedClock,
    office: dict[str, str],
    registration_id: str,
    reported: datetime,
    overdue: bool,
    start_after: str,
) -> None:
    permit_id = _issued_permit(app_client, office, registration_id)
    later = _at(clock, app_client, register_client, reported)
    response = app_client.post(
        f"/registry/v1/permits/{permit_id}/address-change",
        headers={**later, "If-Match": '"2"'},
        json={
            "new_address": "赤峰市松山区某小区5号楼",
            "new_region": "150404",
            "moved_on": "2026-10-20",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"3"'
    events = app_client.get(f"/registry/v1/permits/{permit_id}/events", headers=later).json()
    change = events[-1]
    assert change["type"] == "change-address"
    assert (change["payload"]["due"], change["payload"]["overdue"]) == ("2026-10-29", overdue)

    def start_on(day: str) -> str:
        answer = app_client.get(
            f"/registry/v1/permits/{permit_id}/residence", params={"on": day}, headers=later
        ).json()
        return str(answer["start"])

    assert start_on("2026-10-01") == "2026-03-02"
    assert start_on(reported.date().isoformat()) == start_after
    residence = app_client.get(
        f"/registry/v1/permits/{permit_id}/residence", params={"on": "2026-01-01"}, headers=later
    ).json()
    assert residence == {"on": "2026-01-01", "resident": False}


def test_address_change_outside_the_area_and_stale_writes(
    app_client: TestClient, office: dict[str, str], registration_id: str
) -> None:
    permit_id = _issued_permit(app_client, office, registration_id)
    url = f"/registry/v1/permits/{permit_id}/address-change"
    move = {"new_address": "宁波市某区", "new_region": "330203", "moved_on": "2026-10-10"}
    outside = app_client.post(url, headers={**office, "If-Match": '"2"'}, json=move)
    assert outside.status_code == 422
    assert outside.json()["errors"][0]["pointer"] == "/new_region"
    stale = app_client.post(
        url, headers={**office, "If-Match": '"1"'}, json={**move, "new_region": "150404"}
    )
    assert stale.status_code == 412


def test_cancellation_needs_a_reason_of_the_jurisdiction(
    app_client: TestClient, office: dict[str, str], registration_id: str
) -> None:
    permit_id = _issued_permit(app_client, office, registration_id)
    url = f"/registry/v1/permits/{permit_id}/cancel"
    refused = app_client.post(url, headers={**office, "If-Match": '"2"'}, json={"reason": "whim"})
    assert refused.status_code == 422
    assert refused.json()["type"] == "/problems/cancellation-reason-invalid"
    assert refused.json()["cite"].startswith("[CF §23]")
    done = app_client.post(
        url, headers={**office, "If-Match": '"2"'}, json={"reason": "conditions-no-longer-met"}
    )
    assert done.status_code == 200 and done.json()["state"] == "cancelled"
