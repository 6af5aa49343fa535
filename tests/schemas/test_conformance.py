"""The official JSON-Schema-Test-Suite (draft 2020-12, required tests) through the registry's
validator: every group the registry accepts passes every case, except the format cases the hub
asserts on purpose; every group it refuses is refused for a rule of the registry, never for a
shortcoming of the validator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.schemas.validation import Validators, check_schema

SUITE = Path(__file__).parent.parent / "conformance" / "draft2020-12"

FORMATS_ASSERTED = {
    ("format.json", "email format", "invalid email string is only an annotation by default"),
    ("format.json", "date format", "invalid date string is only an annotation by default"),
    (
        "format.json",
        "date-time format",
        "invalid date-time string is only an annotation by default",
    ),
    ("format.json", "uuid format", "invalid uuid string is only an annotation by default"),
}
"""(file, group, case) the suite calls valid because 2020-12 treats `format` as an annotation,
and the hub refuses because it asserts these formats (hub.schemas.formats)."""

REGISTRY_RULES = {
    "type": "a version is a JSON object, not true or false",
    "$ref": "only registered versions (urn:permit-hub:schema:...) may be referenced",
    "$dynamicRef": "only registered versions may be referenced",
    "$schema": "every version is JSON Schema 2020-12",
}
"""Why the registry refuses a schema the suite uses: the keywords of the issues it may give."""


def _groups() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(SUITE.glob("*.json")):
        for group in json.loads(path.read_text(encoding="utf-8")):
            yield path.name, group


GROUPS = list(_groups())


def _no_other_versions(subject: str, version: int) -> None:
    return None


def test_the_suite_is_there() -> None:
    assert len(GROUPS) > 300
    assert sum(len(group["tests"]) for _, group in GROUPS) > 1200


@pytest.mark.parametrize(
    ("name", "group"), GROUPS, ids=[f"{name}:{group['description']}" for name, group in GROUPS]
)
def test_the_registry_validates_as_the_suite_says(name: str, group: dict[str, Any]) -> None:
    schema = group["schema"]
    refused = check_schema(schema, _no_other_versions)
    if refused:
        assert {issue.keyword for issue in refused} <= REGISTRY_RULES.keys(), refused
        return
    compiled = Validators(lambda subject, version: schema).get("case", 1)
    for case in group["tests"]:
        expected = case["valid"]
        if (name, group["description"], case["description"]) in FORMATS_ASSERTED:
            assert expected, case
            expected = False
        assert compiled.is_valid(case["data"]) is expected, case["description"]
        assert (compiled.errors(case["data"]) == []) is expected, case["description"]


def test_most_groups_are_registered_and_refusals_are_the_registry_s_rules() -> None:
    registered = [
        (name, group)
        for name, group in GROUPS
        if not check_schema(group["schema"], _no_other_versions)
    ]
    assert len(registered) >= len(GROUPS) - 60
    refused_files = {name for name, group in GROUPS if (name, group) not in registered}
    assert refused_files <= {
        "anchor.json",  # absolute-URI $ids of embedded resources, referenced by those URIs
        "boolean_schema.json",
        "defs.json",  # references the 2020-12 meta-schema by its https URI
        "dynamicRef.json",
        "ref.json",
        "refRemote.json",
        "unevaluatedItems.json",
        "unevaluatedProperties.json",
        "vocabulary.json",  # custom meta-schemas
    }
    assert {case for name, group in registered for case in _format_cases(name, group)} == (
        FORMATS_ASSERTED
    )


def _format_cases(name: str, group: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    for case in group["tests"]:
        key = (name, group["description"], case["description"])
        if key in FORMATS_ASSERTED:
            yield key
