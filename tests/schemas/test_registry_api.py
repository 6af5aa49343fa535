"""The schema registry through the real app on both databases: subjects, versions, modes,
states, validation, $ref between registered versions, and the governance scopes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.app import create_app
from hub.audit import AuditEntry
from hub.clock import FixedClock
from hub.composition import Hub
from hub.db import INT_MAX
from hub.settings import Settings
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient

BUILTIN = {
    "holder-record",
    "proof.civil-affairs",
    "proof.employment",
    "proof.health-service",
    "proof.rental-registration",
    "proof.school-enrolment",
    "proof.social-insurance",
    "report.hire",
    "report.tenancy",
    "tap-decision",
}
PERSON = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 64}},
    "additionalProperties": False,
}


@pytest.fixture
def governance(app_client: TestClient, register_client: RegisterClient) -> dict[str, str]:
    new = register_client("public-security", ("schemas:read", "schemas:admin"))
    return bearer(access_token(app_client, new))


@pytest.fixture
def education(app_client: TestClient, register_client: RegisterClient) -> dict[str, str]:
    new = register_client("education", ("schemas:read",))
    return bearer(access_token(app_client, new))


def _register(
    client: TestClient, headers: dict[str, str], subject: str, schema: Any, **extra: Any
) -> Any:
    return client.post(
        f"/schemas/v1/subjects/{subject}/versions",
        json={"schema": schema, **extra},
        headers=headers,
    )


def _with(schema: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**schema, **changes}


def test_builtin_subjects_are_registered_once(
    app_client: TestClient, education: dict[str, str], settings: Settings, hub: Hub
) -> None:
    listed = app_client.get("/schemas/v1/subjects", headers=education)
    assert listed.status_code == 200
    subjects = {entry["subject"]: entry for entry in listed.json()}
    assert set(subjects) == BUILTIN
    for entry in subjects.values():
        assert entry["compatibility"] == "BACKWARD" and entry["compatibility_is_default"]
        assert [(v["version"], v["state"]) for v in entry["versions"]] == [(1, "ACTIVE")]

    with TestClient(create_app(settings, engine=hub.engine, clock=FixedClock(hub.clock.now()))):
        pass  # a second start on the same database
    again = app_client.get("/schemas/v1/subjects", headers=education).json()
    assert all(len(entry["versions"]) == 1 for entry in again)


def test_register_then_find_the_identical_schema(
    app_client: TestClient, governance: dict[str, str]
) -> None:
    created = _register(app_client, governance, "person", PERSON)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["subject"], body["version"], body["state"]) == ("person", 1, "DRAFT")
    assert created.headers["location"] == "/schemas/v1/subjects/person/versions/1"

    same = _register(app_client, governance, "person", dict(reversed(PERSON.items())))
    assert same.status_code == 200 and same.json()["id"] == body["id"]

    by_id = app_client.get(f"/schemas/v1/schemas/ids/{body['id']}", headers=governance)
    assert by_id.json()["schema"] == PERSON
    latest = app_client.get("/schemas/v1/subjects/person/versions/latest", headers=governance)
    assert latest.json()["version"] == 1


@pytest.mark.parametrize(
    ("mode", "candidate", "accepted"),
    [
        ("BACKWARD", _with(PERSON, required=["name"]), False),
        ("BACKWARD", _with(PERSON, additionalProperties=True), True),
        ("FORWARD", _with(PERSON, additionalProperties=True), False),
        ("FORWARD", _with(PERSON, required=["name"]), True),
        ("FULL", _with(PERSON, required=["name"]), False),
        ("NONE", {"type": "integer"}, True),
    ],
    ids=["backward-required", "backward-open", "forward-open", "forward-required", "full", "none"],
)
def test_a_version_that_breaks_the_mode_is_a_409_listing_each_change(
    app_client: TestClient,
    governance: dict[str, str],
    mode: str,
    candidate: dict[str, Any],
    accepted: bool,
) -> None:
    assert _register(app_client, governance, "person", PERSON).status_code == 201
    config = app_client.put(
        "/schemas/v1/config/person", json={"compatibility": mode}, headers=governance
    )
    assert config.json() == {"compatibility": mode, "is_default": False}
    answer = _register(app_client, governance, "person", candidate)
    if accepted:
        assert answer.status_code == 201 and answer.json()["version"] == 2
        return
    assert answer.status_code == 409
    problem = answer.json()
    assert problem["type"] == "/problems/schema-incompatible"
    assert problem["compatibility"] == mode
    assert problem["violations"] and all(v["against_version"] == 1 for v in problem["violations"])
    assert all(error["pointer"].startswith("/schema") for error in problem["errors"])
    versions = app_client.get("/schemas/v1/subjects/person/versions", headers=governance).json()
    assert [v["version"] for v in versions] == [1]


def test_the_dry_run_and_the_diff_store_nothing(
    app_client: TestClient, governance: dict[str, str], education: dict[str, str]
) -> None:
    _register(app_client, governance, "person", PERSON)
    narrowed = _with(PERSON, required=["name"])
    check = app_client.post(
        "/schemas/v1/compatibility/subjects/person", json={"schema": narrowed}, headers=education
    )
    assert check.status_code == 200
    assert check.json()["compatible"] is False
    assert [v["kind"] for v in check.json()["violations"]] == ["required-added"]

    app_client.put("/schemas/v1/config/person", json={"compatibility": "NONE"}, headers=governance)
    _register(app_client, governance, "person", narrowed)
    diff = app_client.get("/schemas/v1/subjects/person/diff?from=1&to=2", headers=education)
    assert diff.status_code == 200
    assert [c["pointer"] for c in diff.json()["breaking_for_readers_of_new"]] == [
        "/properties/name"
    ]
    assert diff.json()["breaking_for_readers_of_old"] == []
    missing = app_client.get("/schemas/v1/subjects/person/diff?from=1&to=9", headers=education)
    assert missing.status_code == 404
    assert missing.json()["type"] == "/problems/schema-version-not-found"


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"type": "strin"}, "/schema/type"),
        ({"properties": {"a": {"minLength": -1}}}, "/schema/properties/a/minLength"),
        ({"$ref": "urn:permit-hub:schema:nothing:1"}, "/schema/$ref"),
        ({"$ref": "https://example.com/schema.json"}, "/schema/$ref"),
        ([1, 2], "/schema"),
        (True, "/schema"),
        (False, "/schema"),
        ({"properties": {"a": {"pattern": "(a)\\1"}}}, "/schema/properties/a/pattern"),
        ({"patternProperties": {"(?=x)": {}}}, "/schema/patternProperties/(?=x)"),
    ],
    ids=[
        "bad-type",
        "negative-bound",
        "unknown-urn",
        "network-ref",
        "not-a-schema",
        "true",
        "false",
        "backreference",
        "lookahead",
    ],
)
def test_an_invalid_schema_is_a_422_pointing_at_it(
    app_client: TestClient, governance: dict[str, str], schema: Any, pointer: str
) -> None:
    answer = _register(app_client, governance, "person", schema)
    assert answer.status_code == 422, answer.text
    assert pointer in [error.get("pointer") for error in answer.json()["errors"]]
    listed = app_client.get("/schemas/v1/subjects/person/versions", headers=governance)
    assert listed.status_code == 404


@pytest.mark.parametrize("state", ["DRAFT", "ACTIVE"])
def test_a_boolean_is_never_a_version_of_a_subject_in_use(
    app_client: TestClient, governance: dict[str, str], state: str
) -> None:
    for schema in (True, False):
        answer = _register(app_client, governance, "holder-record", schema, state=state)
        assert answer.status_code == 422, answer.text
        checked = app_client.post(
            "/schemas/v1/compatibility/subjects/holder-record",
            json={"schema": schema},
            headers=governance,
        )
        assert checked.status_code == 422
    listed = app_client.get("/schemas/v1/subjects/holder-record/versions", headers=governance)
    assert [(v["version"], v["state"]) for v in listed.json()] == [(1, "ACTIVE")]
    activate = app_client.put(
        "/schemas/v1/subjects/holder-record/versions/2/state",
        json={"state": "ACTIVE"},
        headers=governance,
    )
    assert activate.status_code == 404


@pytest.mark.parametrize(
    ("route", "method", "body"),
    [
        ("/schemas/v1/schemas/ids/{n}", "GET", None),
        ("/schemas/v1/subjects/holder-record/versions/{n}/state", "PUT", {"state": "ACTIVE"}),
        ("/schemas/v1/subjects/holder-record/versions/{n}", "GET", None),
        ("/schemas/v1/subjects/holder-record/versions/{n}/validate", "POST", {"document": {}}),
        ("/schemas/v1/subjects/holder-record/diff?from=1&to={n}", "GET", None),
    ],
)
def test_numbers_beyond_the_stored_range_are_a_4xx(
    app_client: TestClient, governance: dict[str, str], route: str, method: str, body: Any
) -> None:
    """Versions and ids are int4 columns: the largest is not found, one more is refused before
    it reaches the database (a driver error, a 500, on PostgreSQL and SQLite alike)."""
    for number, status in ((INT_MAX, 404), (INT_MAX + 1, 422), (2**63, 422), (10**30, 422)):
        answer = app_client.request(method, route.format(n=number), json=body, headers=governance)
        assert answer.status_code == status, (number, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"


def test_a_bad_subject_name(app_client: TestClient, governance: dict[str, str]) -> None:
    answer = _register(app_client, governance, "Person_Record", PERSON)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["type"] == "/problems/validation-failed"
    assert [error["parameter"] for error in problem["errors"]] == ["subject"]
    subjects = app_client.get("/schemas/v1/subjects", headers=governance).json()
    assert {entry["subject"] for entry in subjects} == BUILTIN


def test_states_only_move_forward_and_retired_refuses(
    app_client: TestClient, governance: dict[str, str], education: dict[str, str]
) -> None:
    _register(app_client, governance, "person", PERSON)
    url = "/schemas/v1/subjects/person/versions/1"
    for state in ("ACTIVE", "DEPRECATED"):
        moved = app_client.put(f"{url}/state", json={"state": state}, headers=governance)
        assert moved.status_code == 200 and moved.json()["state"] == state
    back = app_client.put(f"{url}/state", json={"state": "ACTIVE"}, headers=governance)
    assert back.status_code == 409
    assert back.json()["type"] == "/problems/schema-state-change-illegal"

    for _ in range(2):
        used = app_client.post(
            f"{url}/validate", json={"document": {"name": "x"}}, headers=education
        )
        assert used.json()["valid"] is True
    assert app_client.get(url, headers=education).json()["deprecated_uses"] == 2

    app_client.put(f"{url}/state", json={"state": "RETIRED"}, headers=governance)
    refused = app_client.post(f"{url}/validate", json={"document": {}}, headers=education)
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/schema-version-retired"
    latest = app_client.get("/schemas/v1/subjects/person/versions/latest", headers=education)
    assert latest.status_code == 404


def test_validation_lists_every_error_without_repeating_values(
    app_client: TestClient, education: dict[str, str]
) -> None:
    document = {
        "$schema": "urn:permit-hub:schema:holder-record:1",
        "schema_version": 0,
        "event": {"id": "7", "type": "Issue!", "at": "yesterday"},
        "holder": {"citizen_id": "110105194912310021", "sex": "x", "nickname": "secret-name"},
    }
    answer = app_client.post(
        "/schemas/v1/subjects/holder-record/versions/1/validate",
        json={"document": document},
        headers=education,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["valid"] is False
    pointers = {error["pointer"] for error in body["errors"]}
    assert {
        "/schema_version",
        "/event/type",
        "/event/at",
        "/holder/citizen_id",
        "/holder/sex",
    } <= pointers
    assert "110105194912310021" not in answer.text and "yesterday" not in answer.text


def test_a_schema_may_refer_to_another_registered_version(
    app_client: TestClient, governance: dict[str, str]
) -> None:
    address = {
        "type": "object",
        "properties": {"region": {"type": "string", "format": "region-code"}},
        "required": ["region"],
    }
    assert _register(app_client, governance, "common.address", address).status_code == 201
    move = {
        "type": "object",
        "properties": {"to": {"$ref": "urn:permit-hub:schema:common.address:1"}},
    }
    assert _register(app_client, governance, "move", move).status_code == 201
    url = "/schemas/v1/subjects/move/versions/1/validate"
    good = app_client.post(url, json={"document": {"to": {"region": "150402"}}}, headers=governance)
    assert good.json()["valid"] is True
    bad = app_client.post(url, json={"document": {"to": {"region": "99"}}}, headers=governance)
    assert [e["pointer"] for e in bad.json()["errors"]] == ["/to/region"]


def test_only_governance_changes_the_registry(
    app_client: TestClient, education: dict[str, str], governance: dict[str, str], hub: Hub
) -> None:
    assert _register(app_client, education, "person", PERSON).status_code == 403
    put = app_client.put("/schemas/v1/config", json={"compatibility": "NONE"}, headers=education)
    assert put.status_code == 403
    assert app_client.get("/schemas/v1/config", headers=education).json() == {
        "compatibility": "BACKWARD"
    }
    changed = app_client.put(
        "/schemas/v1/config", json={"compatibility": "FULL"}, headers=governance
    )
    assert changed.json() == {"compatibility": "FULL"}
    unset = app_client.put("/schemas/v1/config", json={"compatibility": None}, headers=governance)
    assert unset.status_code == 422
    _register(app_client, governance, "person", PERSON)
    with Session(hub.engine) as session:
        actions = session.exec(
            select(AuditEntry.action).where(col(AuditEntry.actor_department) == "public-security")
        ).all()
    assert {"schema.compatibility", "schema.register"} <= set(actions)


def test_problems_are_bilingual(app_client: TestClient, education: dict[str, str]) -> None:
    answer = app_client.get(
        "/schemas/v1/subjects/nothing/versions",
        headers={**education, "Accept-Language": "zh-CN"},
    )
    assert answer.status_code == 404
    assert answer.json()["title"] == "数据主题不存在"
