"""The schema registry's part of the OpenAPI document (/schemas/v1) as a contract: the rules
JSON Schema can state are stated, every answer is described, and the examples work in order as
one flow whose every answer is valid against the schema the document gives for it.
tests/test_contract.py fuzzes the live hub against the same document; these pin what it says."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped]

from hub.composition import Hub
from hub.db import INT_MAX
from hub.problems import MEDIA_TYPE
from hub.schemas import domain
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient, seed_shipped_agreements

PREFIX = "/schemas/v1/"
AGREEMENT = "/schemas/v1/agreements/{agreement_id}"


@pytest.fixture
def document(app_client: TestClient) -> dict[str, Any]:
    answer = app_client.get("/openapi.json")
    assert answer.status_code == 200
    return dict(answer.json())


@pytest.fixture
def governance(app_client: TestClient, register_client: RegisterClient) -> dict[str, str]:
    new = register_client("public-security", ("schemas:read", "schemas:admin"))
    return bearer(access_token(app_client, new))


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of /schemas/v1, in the document's order."""
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        if path.startswith(PREFIX)
        for method, operation in item.items()
    ]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in operation["parameters"] if p["name"] == name)


def _conforms(document: dict[str, Any], operation: dict[str, Any], answer: Any) -> None:
    """The answer is valid against the schema the document gives for its status."""
    response = operation["responses"][str(answer.status_code)]
    schema = response["content"]["application/json"]["schema"]
    validator = Draft202012Validator(
        {**schema, "components": document["components"]}, format_checker=FormatChecker()
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(answer.json())]
    assert not errors, errors
    for header in response.get("headers", {}):
        assert header.lower() in answer.headers, header


def test_every_success_answer_has_a_closed_schema(document: dict[str, Any]) -> None:
    operations = _operations(document)
    assert len(operations) == 19
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


def test_a_registration_describes_both_answers_and_where_the_version_is(
    document: dict[str, Any],
) -> None:
    responses = document["paths"]["/schemas/v1/subjects/{subject}/versions"]["post"]["responses"]
    for code in ("200", "201"):
        assert responses[code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/VersionView"
        }
        assert "Location" in responses[code]["headers"]
    for status in ("409", "422"):
        problem = responses[status]["content"][MEDIA_TYPE]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}


def test_subject_names_and_version_numbers_state_their_rules(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        if "{subject}" in path:
            subject = _parameter(operation, "subject")["schema"]
            assert subject["pattern"] == domain.SUBJECT_NAME.pattern, (method, path)
            assert subject["maxLength"] == domain.SUBJECT_NAME_MAX
    reference = _parameter(
        document["paths"]["/schemas/v1/subjects/{subject}/versions/{version}"]["get"], "version"
    )["schema"]["pattern"]
    numbers = [1, 9, 10, 999_999_999, 10**9, 2 * 10**9, INT_MAX - 1, INT_MAX]
    numbers += random.Random(11).sample(range(1, INT_MAX), 2000)
    assert all(re.fullmatch(reference, str(n)) for n in numbers)
    beyond = [0, INT_MAX + 1, 2_147_483_650, 2_147_490_000, 2_200_000_000, 9_999_999_999]
    beyond += random.Random(12).sample(range(INT_MAX + 1, 10**11), 2000)
    assert not any(re.fullmatch(reference, str(n)) for n in beyond)
    assert not any(re.fullmatch(reference, text) for text in ("01", "+1", "1.0", "Latest"))
    assert re.fullmatch(reference, "latest")


def test_agreement_bodies_state_their_rules(document: dict[str, Any]) -> None:
    body = _resolve(document, {"$ref": "#/components/schemas/AgreementBody"})["properties"]
    assert _resolve(document, body["department"])["enum"] == [
        "hr-social-security",
        "housing",
        "education",
        "health",
        "civil-affairs",
        "public-security",
    ]
    assert body["subject"]["pattern"] == domain.SUBJECT_NAME.pattern
    fields = body["fields"]
    assert fields["uniqueItems"] is True and fields["minItems"] == 1
    pointer = fields["items"]["pattern"]
    assert all(re.fullmatch(pointer, p) for p in ("/holder/name", "/a~1b/c~0d", "/"))
    assert not any(re.fullmatch(pointer, p) for p in ("", "holder/name", "/a~2", "/a~"))
    assert body["valid_from"]["format"] == "date"


def test_amending_an_agreement_requires_if_match(document: dict[str, Any]) -> None:
    operation = document["paths"][AGREEMENT]["put"]
    headers = [p for p in operation["parameters"] if p["in"] == "header"]
    assert [(p["name"], p["required"]) for p in headers] == [("If-Match", True)]
    assert "ETag" in operation["responses"]["200"]["headers"]
    for status in ("409", "412", "422", "428"):
        problem = operation["responses"][status]["content"][MEDIA_TYPE]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}


def test_the_default_mode_cannot_be_null_but_a_subjects_can(document: dict[str, Any]) -> None:
    default = _resolve(document, {"$ref": "#/components/schemas/DefaultModeBody"})
    assert default["properties"]["compatibility"] == {
        "$ref": "#/components/schemas/CompatibilityMode"
    }
    subject = _resolve(document, {"$ref": "#/components/schemas/SubjectModeBody"})
    assert {"type": "null"} in subject["properties"]["compatibility"]["anyOf"]


def _example(schema: dict[str, Any]) -> Any:
    return schema["examples"][0]


def _request(document: dict[str, Any], path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """The request the document's examples make of `operation`: every required parameter
    and the body."""
    query, headers = {}, {}
    for parameter in operation.get("parameters", []):
        if not parameter["required"]:
            continue
        value = str(_example(parameter["schema"]))
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", value)
        elif parameter["in"] == "query":
            query[parameter["name"]] = value
        else:
            headers[parameter["name"]] = value
    request: dict[str, Any] = {"url": path, "params": query, "headers": headers}
    if "requestBody" in operation:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        request["json"] = _example(_resolve(document, schema))
    return request


def test_the_examples_work_as_a_flow(
    app_client: TestClient, document: dict[str, Any], governance: dict[str, str], hub: Hub
) -> None:
    """Every operation, in the document's order, with its examples: register the example
    subject, check its next version, set its mode and make it ACTIVE; read, validate and diff
    holder-record; make the example agreement, amend the shipped one with the ETag it was
    seeded with and project the example record by it. Each is a success, as documented."""
    seed_shipped_agreements(hub)
    answers = {}
    for method, path, operation in _operations(document):
        request = _request(document, path, operation)
        request["headers"].update(governance)
        answer = app_client.request(method.upper(), **request)
        assert answer.is_success, (method, path, answer.text)
        _conforms(document, operation, answer)
        answers[f"{method.upper()} {path}"] = answer.json()

    assert answers["PUT /schemas/v1/subjects/{subject}/versions/{version}/state"]["state"] == (
        "ACTIVE"
    )
    assert answers["POST /schemas/v1/compatibility/subjects/{subject}"]["compatible"] is True
    assert answers["POST /schemas/v1/subjects/{subject}/versions/{version}/validate"] == {
        "subject": "holder-record",
        "version": 1,
        "state": "ACTIVE",
        "valid": True,
        "errors": [],
    }
    assert answers[f"PUT {AGREEMENT}"]["version"] == 2
    projected = answers[f"POST {AGREEMENT}/projection"]
    assert projected["in_force"] is True
    assert set(projected["record"]["holder"]) == {"citizen_id", "name", "current_region"}


def test_the_registration_example_is_found_again(
    app_client: TestClient, document: dict[str, Any], governance: dict[str, str]
) -> None:
    path = "/schemas/v1/subjects/{subject}/versions"
    operation = document["paths"][path]["post"]
    request = _request(document, path, operation)
    request["headers"].update(governance)
    first = app_client.post(**request)
    again = app_client.post(**request)
    assert (first.status_code, again.status_code) == (201, 200)
    _conforms(document, operation, again)
    assert again.json()["id"] == first.json()["id"]


def test_names_and_numbers_the_document_refuses_are_refused_as_it_says(
    app_client: TestClient, governance: dict[str, str]
) -> None:
    for url in (
        "/schemas/v1/subjects/Holder_Record/versions",
        "/schemas/v1/config/holder-record.",
        "/schemas/v1/subjects/holder-record/versions/01",
        "/schemas/v1/agreements?department=tax",
    ):
        answer = app_client.get(url, headers=governance)
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["type"] == "/problems/validation-failed"
