"""The built-in schemas: valid 2020-12 schemas, closed objects, and examples that pass while
every single broken variant of them is refused.

The broken variants are derived by walking each schema alongside its example, so a property
added later is covered without a new test: each closed object gets an unknown property, each
enum a value outside it, each format a value that breaks it, each required property goes
missing. Optional properties are dropped one by one and must still pass, since the hub projects
holder records field by field to each department's agreement.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from hub.schemas.formats import FORMATS, format_checker

BUILTIN = files("hub.schemas") / "builtin"
SUBJECTS = {
    "holder-record",
    "proof.employment",
    "proof.social-insurance",
    "proof.rental-registration",
    "proof.school-enrolment",
    "proof.health-service",
    "proof.civil-affairs",
    "tap-decision",
    "report.hire",
    "report.tenancy",
}
PROOF_KINDS = {
    "proof.employment": ["employment", "business-licence"],
    "proof.social-insurance": ["social-insurance"],
    "proof.rental-registration": ["rental-registration", "property-registration"],
    "proof.school-enrolment": ["school-enrolment"],
    "proof.health-service": ["health-service"],
    "proof.civil-affairs": ["civil-affairs"],
}
OPEN_OBJECTS = {("tap-decision", ("properties", "disclosed"))}
"""The only objects allowed extra properties: what is disclosed depends on the agreement."""

BROKEN_FORMAT = {
    "citizen-id": "110105194912310021",  # 11010519491231002X with a wrong check digit
    "region-code": "110000",
    "phone-cn": "12800138000",
    "date": "2023-02-29",
    "date-time": "2025-03-14T09:30:00",
    "email": "nobody",
    "uuid": "not-a-uuid",
}

Path = tuple[str | int, ...]
Json = Any


def load(subject: str) -> dict[str, Json]:
    schema: dict[str, Json] = json.loads((BUILTIN / f"{subject}.json").read_text("utf-8"))
    return schema


def validator(schema: dict[str, Json]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=format_checker())


def nodes(schema: Json, at: Path = ()) -> Iterator[tuple[Path, dict[str, Json]]]:
    """Every subschema, with its path inside the schema (examples excluded)."""
    if not isinstance(schema, dict):
        return
    yield at, schema
    for key, value in schema.items():
        if key in {"properties", "$defs"}:
            for name, sub in value.items():
                yield from nodes(sub, (*at, key, name))
        elif key in {"items", "additionalProperties"}:
            yield from nodes(value, (*at, key))


def covered(schema: dict[str, Json], instance: Json, at: Path = ()) -> Iterator[tuple[Path, Json]]:
    """Every place in `instance` a subschema describes: (path in the instance, subschema)."""
    yield at, schema
    if isinstance(instance, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in instance:
                yield from covered(sub, instance[name], (*at, name))
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(instance):
            yield from covered(schema["items"], item, (*at, index))


def changed(instance: Json, at: Path, change: Any) -> Json:
    """A deep copy of `instance` with `change(parent, key)` applied at `at`."""
    result = copy.deepcopy(instance)
    parent = result
    for key in at[:-1]:
        parent = parent[key]
    change(parent, at[-1])
    return result


def set_to(value: Json) -> Any:
    def change(parent: Any, key: str | int) -> None:
        parent[key] = value

    return change


def drop(parent: Any, key: str | int) -> None:
    del parent[key]


def breakages(schema: dict[str, Json], example: Json) -> Iterator[tuple[str, Json]]:
    """(what was broken, the broken example) for every single fault the schema must catch."""
    for at, sub in covered(schema, example):
        if sub.get("additionalProperties") is False:
            extra = changed(example, (*at, "unexpected"), set_to(1))
            yield f"unknown property at /{'/'.join(map(str, at))}", extra
        if "enum" in sub:
            yield f"enum at {at}", changed(example, at, set_to("not-a-member"))
        if "format" in sub:
            broken = BROKEN_FORMAT[sub["format"]]
            yield f"format {sub['format']} at {at}", changed(example, at, set_to(broken))
        if "minimum" in sub:
            yield f"below minimum at {at}", changed(example, at, set_to(sub["minimum"] - 1))
        if "pattern" in sub:
            yield f"pattern at {at}", changed(example, at, set_to("Not Matching!"))
        for name in sub.get("required", []):
            yield f"missing {name} at {at}", changed(example, (*at, name), drop)


def optional_drops(schema: dict[str, Json], example: Json) -> Iterator[tuple[str, Json]]:
    for at, sub in covered(schema, example):
        required = set(sub.get("required", []))
        for name in sub.get("properties", {}):
            if name not in required and name in _at(example, at):
                yield f"without {name} at {at}", changed(example, (*at, name), drop)


def _at(instance: Json, at: Path) -> Json:
    for key in at:
        instance = instance[key]
    return instance


def test_the_builtin_subjects_are_exactly_these() -> None:
    names = {entry.name for entry in BUILTIN.iterdir() if entry.is_file()}
    assert names == {f"{subject}.json" for subject in SUBJECTS}


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_each_is_a_valid_2020_12_schema_without_an_id(subject: str) -> None:
    schema = load(subject)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "$id" not in schema, "the registry assigns ids"


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_each_has_a_title_and_a_description_in_english_and_chinese(subject: str) -> None:
    schema = load(subject)
    assert schema["title"].strip()
    assert re.search(r"[A-Za-z]{3}", schema["description"])
    assert re.search(r"[\u4e00-\u9fff]", schema["description"])


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_every_object_is_closed(subject: str) -> None:
    for at, sub in nodes(load(subject)):
        if sub.get("type") == "object" or "properties" in sub:
            is_open = (subject, at) in OPEN_OBJECTS
            assert sub.get("additionalProperties") is is_open, at


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_only_enforced_formats_are_used(subject: str) -> None:
    used = {sub["format"] for _, sub in nodes(load(subject)) if "format" in sub}
    assert used <= FORMATS


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_the_example_is_valid_and_complete(subject: str) -> None:
    schema = load(subject)
    [example] = schema["examples"]
    validator(schema).validate(example)
    for at, sub in covered(schema, example):
        instance = _at(example, at)
        if isinstance(instance, dict) and "properties" in sub:
            assert set(instance) == set(sub["properties"]), f"incomplete at {at}"


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_every_single_breakage_of_the_example_is_refused(subject: str) -> None:
    schema = load(subject)
    [example] = schema["examples"]
    check = validator(schema)
    cases = list(breakages(schema, example))
    assert len(cases) >= 5
    for what, broken in cases:
        assert not check.is_valid(broken), what


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_optional_properties_may_be_left_out(subject: str) -> None:
    schema = load(subject)
    [example] = schema["examples"]
    check = validator(schema)
    for what, smaller in optional_drops(schema, example):
        assert check.is_valid(smaller), what


def test_a_holder_record_may_share_no_permit_or_holder_fields() -> None:
    """Records are projected to each agreement: an agreement may list no field at all."""
    schema = load("holder-record")
    [example] = schema["examples"]
    record = {**example, "permit": {}, "holder": {}}
    assert validator(schema).is_valid(record)
    bare = {key: example[key] for key in schema["required"]}
    assert validator(schema).is_valid(bare)


@pytest.mark.parametrize(
    ("subject", "pointer", "value"),
    [
        ("holder-record", ("holder", "citizen_id"), "11010519491231002x"),
        ("holder-record", ("holder", "household_region"), "990101"),
        ("holder-record", ("holder", "contact"), "1" * 33),
        ("holder-record", ("event", "at"), "2025-03-14 09:30:00"),
        ("holder-record", ("event", "type"), "Change_Address"),
        ("holder-record", ("permit", "id"), "03664491377a4eddb5f11314e17b46b7"),
        ("holder-record", ("permit", "residence_start"), None),
        ("holder-record", ("schema_version",), 0),
        ("proof.employment", ("details", "employer_credit_code"), "91150402MA0N1234I5"),
        ("proof.employment", ("details", "employer_credit_code"), "91150402MA0N1234X"),
        ("proof.employment", ("kind",), "social-insurance"),
        ("proof.social-insurance", ("details", "continuous"), "yes"),
        ("proof.social-insurance", ("details", "back_paid_months"), 1.5),
        ("proof.rental-registration", ("valid_to",), "2026-02-30"),
        ("proof.school-enrolment", ("proof_id",), "x" * 129),
        ("proof.school-enrolment", ("proof_id",), ""),
        ("tap-decision", ("reasons",), ["permit-valid", "permit-valid"]),
        ("tap-decision", ("reasons",), ["Permit_Valid"]),
        ("tap-decision", ("decided_at",), "2025-03-18T10:02:45"),
    ],
)
def test_specific_faults_are_refused(subject: str, pointer: Path, value: Json) -> None:
    schema = load(subject)
    [example] = schema["examples"]
    assert not validator(schema).is_valid(changed(example, pointer, set_to(value)))


@pytest.mark.parametrize(("subject", "kinds"), sorted(PROOF_KINDS.items()))
def test_each_proof_subject_names_its_kinds(subject: str, kinds: list[str]) -> None:
    schema = load(subject)
    assert schema["properties"]["kind"]["enum"] == kinds
    assert schema["required"] == ["proof_id", "citizen_id", "kind", "valid_from", "details"]
    assert schema["examples"][0]["kind"] in kinds


def test_null_is_allowed_only_where_declared() -> None:
    schema = load("holder-record")
    [example] = schema["examples"]
    nulled = changed(example, ("permit", "expires_on"), set_to(None))
    assert validator(schema).is_valid(nulled)
    assert not validator(schema).is_valid(changed(example, ("holder", "name"), set_to(None)))


def test_the_disclosed_fields_of_a_decision_are_open() -> None:
    schema = load("tap-decision")
    [example] = schema["examples"]
    wider = changed(example, ("disclosed", "anything"), set_to("shared under the agreement"))
    assert validator(schema).is_valid(wider)
