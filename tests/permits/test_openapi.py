"""The registry's part of the OpenAPI document (/registry/v1, the card writes included) as a
contract: every answer described, every precondition declared, examples that work as a flow.
tests/test_contract.py checks the live answers against it; these pin what it must say."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.clock import FixedClock
from hub.problems import MEDIA_TYPE
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient

ACTIONS = ("issue", "endorse", "replace", "renew", "cancel", "settle")
PERMIT = "/registry/v1/permits/{permit_id}"


@pytest.fixture
def document(app_client: TestClient) -> dict[str, Any]:
    answer = app_client.get("/openapi.json")
    assert answer.status_code == 200
    return dict(answer.json())


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        if path.startswith("/registry/v1/")
        for method, operation in item.items()
    ]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_success_answer_has_a_closed_schema(document: dict[str, Any]) -> None:
    operations = _operations(document)
    assert len(operations) == 23
    for method, path, operation in operations:
        successes = {code: r for code, r in operation["responses"].items() if code < "300"}
        assert successes, (method, path)
        for code, response in successes.items():
            schema = response["content"]["application/json"]["schema"]
            if schema.get("type") == "array":
                schema = schema["items"]
            model = _resolve(document, schema)
            assert model["type"] == "object" and model["properties"], (method, path, code)
            assert model["additionalProperties"] is False, (method, path, code)


def test_a_repeated_proof_and_a_new_one_are_both_described(document: dict[str, Any]) -> None:
    responses = document["paths"]["/registry/v1/proofs"]["post"]["responses"]
    for code in ("200", "201"):
        schema = responses[code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ProofView"}


def test_each_lifecycle_action_is_an_operation_of_its_own(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert not [path for path in paths if "{action}" in path]
    for action in ACTIONS:
        assert set(paths[f"{PERMIT}/{action}"]) == {"post"}, action


@pytest.mark.parametrize("suffix", [*ACTIONS, "address-change"])
def test_versioned_writes_require_if_match_and_declare_412_and_428(
    document: dict[str, Any], suffix: str
) -> None:
    operation = document["paths"][f"{PERMIT}/{suffix}"]["post"]
    headers = [p for p in operation["parameters"] if p["in"] == "header"]
    assert [(p["name"], p["required"]) for p in headers] == [("If-Match", True)]
    ok = operation["responses"]["200"]
    assert "ETag" in ok["headers"]
    for status in ("409", "412", "428"):
        problem = operation["responses"][status]["content"][MEDIA_TYPE]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}


def test_reads_and_creations_declare_their_headers(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "ETag" in paths[PERMIT]["get"]["responses"]["200"]["headers"]
    assert "Location" in paths["/registry/v1/registrations"]["post"]["responses"]["201"]["headers"]
    accepted = paths["/registry/v1/applications"]["post"]["responses"]["201"]["headers"]
    assert {"ETag", "Location"} <= set(accepted)


def test_a_proof_kind_comes_with_its_own_department(document: dict[str, Any]) -> None:
    schema = _resolve(document, {"$ref": "#/components/schemas/ProofBody"})
    assert "social-insurance" in schema["properties"]["kind"]["enum"]
    pairs = {
        branch["properties"]["kind"]["const"]: branch["properties"]["source_department"]["enum"]
        for branch in schema["anyOf"]
    }
    assert pairs["rental-registration"] == ["housing"]
    assert pairs["social-insurance"] == ["hr-social-security"]


def test_citizen_ids_and_card_bytes_state_their_shape(document: dict[str, Any]) -> None:
    registration = _resolve(document, {"$ref": "#/components/schemas/RegistrationBody"})
    pattern = registration["properties"]["citizen_id"]["pattern"]
    assert re.fullmatch(pattern, "11010519491231002X")
    full_width = {ord(c): ord(c) + 0xFEE0 for c in "0123456789x"}
    assert re.fullmatch(pattern, "11010519491231002x".translate(full_width))  # as IMEs type it
    assert not re.fullmatch(pattern, "11010519491231002")

    personalisation = _resolve(document, {"$ref": "#/components/schemas/Personalisation"})
    fields = personalisation["properties"]
    assert {fields[name]["contentEncoding"] for name in ("card_key", "nonce", "photo")} == {
        "base64"
    }
    example = personalisation["examples"][0]
    for name in ("card_key", "nonce", "photo"):
        assert re.fullmatch(fields[name]["pattern"], example[name]), name
    assert not re.fullmatch(fields["nonce"]["pattern"], "q83vEjRWeJq83vEjRWeJ")  # 15 bytes
    assert not re.fullmatch(fields["photo"]["pattern"], "iVBORw0KGgo")  # padding left out
    assert fields["photo"]["maxLength"] == 21_848  # 16,384 bytes


def test_the_examples_work_as_a_flow(
    app_client: TestClient,
    document: dict[str, Any],
    register_client: RegisterClient,
    clock: FixedClock,
) -> None:
    """Register the example holder, apply with the example claim through the `apply` link,
    then issue through the `issue` link: the documented journey, answered 201, 201, 200."""
    clock.set(datetime(2026, 12, 7, 2, tzinfo=UTC))
    office = bearer(
        access_token(
            app_client, register_client("public-security", ("registry:read", "registry:write"))
        )
    )
    schemas = document["components"]["schemas"]
    registration = app_client.post(
        "/registry/v1/registrations",
        headers=office,
        json=schemas["RegistrationBody"]["examples"][0],
    )
    assert registration.status_code == 201, registration.text
    created = document["paths"]["/registry/v1/registrations"]["post"]["responses"]["201"]
    link = created["links"]["apply"]
    assert link["requestBody"] == {"registration_id": "$response.body#/id"}
    claim = {
        **schemas["ApplicationBody"]["examples"][0],
        "registration_id": registration.json()["id"],
    }
    application = app_client.post("/registry/v1/applications", headers=office, json=claim)
    assert application.status_code == 201, application.text
    assert application.json()["met_by"] == "documents"

    accepted = document["paths"]["/registry/v1/applications"]["post"]["responses"]["201"]
    link = accepted["links"]["issue"]
    assert link["operationRef"] == "#/paths/~1registry~1v1~1permits~1{permit_id}~1issue/post"
    assert link["parameters"]["header.If-Match"] == "$response.header.ETag"
    permit_id = application.json()["permit"]["id"]
    issued = app_client.post(
        f"/registry/v1/permits/{permit_id}/issue",
        headers={**office, "If-Match": application.headers["etag"]},
    )
    assert issued.status_code == 200, issued.text
    assert issued.json()["state"] == "valid"

    cancel = schemas["CancelBody"]["properties"]["reason"]["examples"][0]
    cancelled = app_client.post(
        f"/registry/v1/permits/{permit_id}/cancel",
        headers={**office, "If-Match": issued.headers["etag"]},
        json={"reason": cancel},
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancel_reason"] == cancel
