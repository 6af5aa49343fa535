"""Data-sharing agreements through the real app: checked against the schema, versioned,
audited, changed only by governance, read by a department only if they are its own."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.composition import Hub
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient

TERMS: dict[str, Any] = {
    "department": "education",
    "purpose": "随迁子女义务教育入学",
    "subject": "holder-record",
    "fields": ["/permit/state", "/permit/expires_on", "/holder/name"],
    "legal_basis": "[CF §24]",
    "valid_from": "2026-01-01",
    "valid_to": None,
}
RECORD = {
    "$schema": "urn:permit-hub:schema:holder-record:1",
    "schema_version": 1,
    "event": {"id": "41", "type": "issue", "at": "2026-11-25T02:00:00Z"},
    "permit": {"state": "valid", "expires_on": "2027-11-24", "card_serial": "CF26A1"},
    "holder": {"name": "王芳", "citizen_id": "11010519491231002X", "contact": "13800000000"},
}


@pytest.fixture
def governance(app_client: TestClient, register_client: RegisterClient) -> dict[str, str]:
    new = register_client("public-security", ("schemas:read", "schemas:admin"))
    return bearer(access_token(app_client, new))


def _department(app_client: TestClient, register: RegisterClient, name: str) -> dict[str, str]:
    return bearer(access_token(app_client, register(name, ("schemas:read",))))


def _create(client: TestClient, headers: dict[str, str], **changes: Any) -> Any:
    return client.post("/schemas/v1/agreements", json={**TERMS, **changes}, headers=headers)


def test_create_read_amend_with_history(
    app_client: TestClient, governance: dict[str, str], hub: Hub
) -> None:
    created = _create(app_client, governance)
    assert created.status_code == 201, created.text
    agreement = created.json()
    assert created.headers["etag"] == '"1"' and agreement["status"] == "active"
    url = f"/schemas/v1/agreements/{agreement['id']}"

    no_match = app_client.put(url, json=TERMS, headers=governance)
    assert no_match.status_code == 428
    amended = app_client.put(
        url,
        json={**TERMS, "fields": ["/permit/state"]},
        headers={**governance, "If-Match": '"1"'},
    )
    assert amended.status_code == 200 and amended.headers["etag"] == '"2"'
    stale = app_client.put(url, json=TERMS, headers={**governance, "If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 2

    history = app_client.get(f"{url}/versions", headers=governance).json()
    assert [(v["version"], v["fields"]) for v in history] == [
        (1, TERMS["fields"]),
        (2, ["/permit/state"]),
    ]
    with Session(hub.engine) as session:
        actions = session.exec(
            select(AuditEntry.action).where(col(AuditEntry.action).startswith("agreement."))
        ).all()
    assert sorted(actions) == ["agreement.amend", "agreement.create"]


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"fields": ["/holder/name", "/holder/favourite_colour"]}, "/fields"),
        ({"subject": "nothing"}, "/subject"),
        ({"valid_to": "2025-12-31"}, "/valid_to"),
    ],
    ids=["unknown-field", "subject", "dates"],
)
def test_terms_the_schema_or_the_rules_do_not_allow(
    app_client: TestClient, governance: dict[str, str], changes: dict[str, Any], pointer: str
) -> None:
    refused = _create(app_client, governance, **changes)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"] == "/problems/agreement-refused"
    assert [error["pointer"] for error in problem["errors"]] == [pointer]
    if "favourite_colour" in str(changes):
        assert problem["unknown_fields"] == ["/holder/favourite_colour"]
    assert app_client.get("/schemas/v1/agreements", headers=governance).json() == []


@pytest.mark.parametrize(
    ("changes", "pointer", "zh"),
    [
        ({"fields": ["holder/name"]}, "/fields/0", "格式不符合要求"),
        ({"fields": ["/holder/name", "/holder/name"]}, "/fields", "各项不得重复"),
        ({"department": "tax"}, "/department", "取值须为"),
        ({"subject": "Holder_Record"}, "/subject", "格式不符合要求"),
        ({"valid_from": 1767225600}, "/valid_from", "应为日期"),
        ({"valid_from": "2026-01-01T00:00:00"}, "/valid_from", "应为日期"),
    ],
    ids=["not-a-pointer", "twice", "department", "subject", "seconds", "date-time"],
)
def test_terms_the_openapi_document_refuses(
    app_client: TestClient,
    governance: dict[str, str],
    changes: dict[str, Any],
    pointer: str,
    zh: str,
) -> None:
    """What the document states (pointers, each once, the departments, the subject's name,
    a date as YYYY-MM-DD) is checked with the body, in both languages."""
    refused = app_client.post(
        "/schemas/v1/agreements",
        json={**TERMS, **changes},
        headers={**governance, "Accept-Language": "zh-CN"},
    )
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"] == "/problems/validation-failed"
    assert [error["pointer"] for error in problem["errors"]] == [pointer]
    assert problem["errors"][0]["detail"].startswith(zh)
    assert app_client.get("/schemas/v1/agreements", headers=governance).json() == []


def test_a_body_the_document_refuses_is_a_422_whatever_the_if_match(
    app_client: TestClient, governance: dict[str, str]
) -> None:
    url = f"/schemas/v1/agreements/{_create(app_client, governance).json()['id']}"
    twice = {**TERMS, "fields": ["/holder/name", "/holder/name"]}
    for if_match in ('"7"', "'k"):
        answer = app_client.put(url, json=twice, headers={**governance, "If-Match": if_match})
        assert answer.status_code == 422, answer.text
        assert answer.json()["type"] == "/problems/validation-failed"
    assert app_client.get(url, headers=governance).headers["etag"] == '"1"'


def test_a_department_sees_only_its_own(
    app_client: TestClient, governance: dict[str, str], register_client: RegisterClient
) -> None:
    mine = _create(app_client, governance).json()
    theirs = _create(app_client, governance, department="housing").json()
    education = _department(app_client, register_client, "education")

    listed = app_client.get("/schemas/v1/agreements", headers=education).json()
    assert [a["id"] for a in listed] == [mine["id"]]
    asked_for_all = app_client.get(
        "/schemas/v1/agreements?department=housing", headers=education
    ).json()
    assert [a["id"] for a in asked_for_all] == [mine["id"]]
    other = app_client.get(f"/schemas/v1/agreements/{theirs['id']}", headers=education)
    assert other.status_code == 404
    assert app_client.get(f"/schemas/v1/agreements/{mine['id']}", headers=education).is_success
    assert _create(app_client, education).status_code == 403
    everyone = app_client.get("/schemas/v1/agreements", headers=governance).json()
    assert {a["department"] for a in everyone} == {"education", "housing"}


def test_projection_keeps_only_the_agreed_fields_and_the_envelope(
    app_client: TestClient, governance: dict[str, str], register_client: RegisterClient
) -> None:
    agreement = _create(app_client, governance).json()
    education = _department(app_client, register_client, "education")
    projected = app_client.post(
        f"/schemas/v1/agreements/{agreement['id']}/projection",
        json={"record": RECORD},
        headers=education,
    )
    assert projected.status_code == 200, projected.text
    body = projected.json()
    assert body["in_force"] is True
    assert body["record"] == {
        "$schema": RECORD["$schema"],
        "schema_version": 1,
        "event": RECORD["event"],
        "permit": {"state": "valid", "expires_on": "2027-11-24"},
        "holder": {"name": "王芳"},
    }
    valid = app_client.post(
        "/schemas/v1/subjects/holder-record/versions/1/validate",
        json={"document": body["record"]},
        headers=education,
    )
    assert valid.json()["valid"] is True


def test_an_agreement_out_of_force(app_client: TestClient, governance: dict[str, str]) -> None:
    suspended = _create(app_client, governance, status="suspended").json()
    projected = app_client.post(
        f"/schemas/v1/agreements/{suspended['id']}/projection",
        json={"record": RECORD},
        headers=governance,
    )
    assert projected.json()["in_force"] is False
