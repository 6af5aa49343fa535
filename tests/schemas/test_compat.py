"""Schema compatibility: which edits break readers, in which direction, and where.

The table gives each (old, new) pair the narrowings expected in both directions, so every case
states what breaks BACKWARD (`narrowings(old, new)`) and what breaks FORWARD (`narrowings(new,
old)`). Widening edits therefore appear twice: harmless one way, breaking the other.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from typing import Any, cast

import pytest

from hub.schemas.compat import (
    Change,
    ChangeKind,
    CompatibilityMode,
    Schema,
    Violation,
    check,
    diff,
    narrowings,
)

PR = ChangeKind.PROPERTY_REMOVED
TN = ChangeKind.TYPE_NARROWED
RA = ChangeKind.REQUIRED_ADDED
EV = ChangeKind.ENUM_VALUE_REMOVED
CT = ChangeKind.CONSTRAINT_TIGHTENED
RC = ChangeKind.REF_CHANGED
SC = ChangeKind.SCHEMA_CLOSED
KC = ChangeKind.KEYWORD_CHANGED

Found = set[tuple[ChangeKind, str]]

PERSON: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 50},
        "ids": {"type": "array", "items": {"type": "string", "pattern": "^[0-9X]{18}$"}},
    },
    "required": ["name"],
    "additionalProperties": False,
}
PERSON_REORDERED: dict[str, Any] = {
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "ids": {"items": {"pattern": "^[0-9X]{18}$", "type": "string"}, "type": "array"},
        "name": {"maxLength": 50, "type": "string"},
    },
    "type": "object",
}


def holder(name: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "object", "properties": {"name": name}}
    if required is not None:
        node["required"] = required
    return {"type": "object", "properties": {"holder": node}}


def address(zip_code: dict[str, Any]) -> dict[str, Any]:
    return {
        "$defs": {"address": {"type": "object", "properties": {"zip": zip_code}}},
        "properties": {"home": {"$ref": "#/$defs/address"}},
    }


CASES = [
    # --- no change --------------------------------------------------------------------------------
    pytest.param(PERSON, PERSON_REORDERED, set(), set(), id="no-change-keys-reordered"),
    pytest.param(True, True, set(), set(), id="no-change-true"),
    # --- properties -------------------------------------------------------------------------------
    pytest.param(
        {"properties": {"a": {"type": "string"}, "b": {"type": "integer"}}},
        {"properties": {"a": {"type": "string"}}},
        {(PR, "/properties/b")},
        set(),
        id="property-removed",
    ),
    pytest.param(
        {"properties": {"a": {"type": "string"}}},
        {"properties": {"a": {"type": "string"}, "b": {"type": "integer"}}},
        set(),
        {(PR, "/properties/b")},
        id="optional-property-added-to-open-model",
    ),
    pytest.param(
        {"properties": {"a": {}}, "additionalProperties": False},
        {"properties": {"a": {}, "b": {"type": "string"}}, "additionalProperties": False},
        set(),
        {(PR, "/properties/b")},
        id="optional-property-added-to-closed-model",
    ),
    pytest.param(
        {"additionalProperties": {"type": "string"}},
        {"properties": {"x": {"type": "integer"}}, "additionalProperties": {"type": "string"}},
        {(TN, "/properties/x")},
        {(PR, "/properties/x")},
        id="property-added-against-additional-properties-schema",
    ),
    pytest.param(
        {"patternProperties": {"^x-": {"type": "string"}}},
        {
            "patternProperties": {"^x-": {"type": "string"}},
            "properties": {"x-id": {"type": "integer"}},
        },
        {(TN, "/properties/x-id")},
        {(PR, "/properties/x-id")},
        id="property-added-against-pattern-properties",
    ),
    # --- required ---------------------------------------------------------------------------------
    pytest.param(
        {"properties": {"a": {}}},
        {"properties": {"a": {}}, "required": ["a"]},
        {(RA, "/properties/a")},
        set(),
        id="required-added",
    ),
    pytest.param(
        {"properties": {"a": {}}, "required": ["a"]},
        {"properties": {"a": {}}},
        set(),
        {(RA, "/properties/a")},
        id="required-removed",
    ),
    pytest.param({}, {"required": ["x"]}, {(RA, "/properties/x")}, set(), id="required-undeclared"),
    # --- type -------------------------------------------------------------------------------------
    pytest.param(
        {"type": ["string", "null"]}, {"type": "string"}, {(TN, "")}, set(), id="type-narrowed"
    ),
    pytest.param(
        {"type": "integer"}, {"type": "number"}, set(), {(TN, "")}, id="integer-to-number"
    ),
    pytest.param(
        {"type": ["number", "string"]},
        {"type": ["integer", "string"]},
        {(TN, "")},
        set(),
        id="number-to-integer-in-union",
    ),
    pytest.param({}, {"type": "string"}, {(TN, "")}, set(), id="type-added"),
    pytest.param(
        {"type": ["null", "boolean", "object", "array", "number", "string"]},
        {},
        set(),
        set(),
        id="all-types-equals-no-type",
    ),
    # --- enum and const ---------------------------------------------------------------------------
    pytest.param(
        {"enum": ["a", "b", "c"]}, {"enum": ["a", "b"]}, {(EV, "")}, set(), id="enum-value-removed"
    ),
    pytest.param(
        {"type": "string"},
        {"type": "string", "const": "x"},
        {(EV, "")},
        set(),
        id="const-added",
    ),
    pytest.param({"const": "x"}, {"const": "y"}, {(EV, "")}, {(EV, "")}, id="const-changed"),
    pytest.param(
        {"enum": ["x", "y"]}, {"const": "x"}, {(EV, "")}, set(), id="enum-replaced-by-const"
    ),
    pytest.param(
        {"enum": [1, 2]}, {"enum": [2.0, 1.0]}, set(), set(), id="enum-one-equals-one-dot-0"
    ),
    pytest.param({"enum": [True]}, {"enum": [1]}, {(EV, "")}, {(EV, "")}, id="enum-true-is-not-1"),
    # --- bounds -----------------------------------------------------------------------------------
    pytest.param({"maxLength": 10}, {"maxLength": 5}, {(CT, "")}, set(), id="max-length-decreased"),
    pytest.param(
        {"type": "string"},
        {"type": "string", "maxLength": 5},
        {(CT, "")},
        set(),
        id="max-length-added",
    ),
    pytest.param({"minimum": 0}, {"minimum": 1}, {(CT, "")}, set(), id="minimum-raised"),
    pytest.param(
        {"type": "number"},
        {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100},
        {(CT, "")},
        set(),
        id="exclusive-bounds-added",
    ),
    pytest.param(
        {"properties": {"tags": {"type": "array", "minItems": 0, "maxItems": 10}}},
        {"properties": {"tags": {"type": "array", "minItems": 1, "maxItems": 5}}},
        {(CT, "/properties/tags")},
        set(),
        id="item-count-bounds-tightened",
    ),
    pytest.param(
        {"minProperties": 1, "maxProperties": 5},
        {"minProperties": 2, "maxProperties": 5},
        {(CT, "")},
        set(),
        id="property-count-bounds-tightened",
    ),
    # --- multipleOf -------------------------------------------------------------------------------
    pytest.param(
        {"type": "integer"},
        {"type": "integer", "multipleOf": 5},
        {(CT, "")},
        set(),
        id="multiple-of-added",
    ),
    pytest.param({"multipleOf": 2}, {"multipleOf": 4}, {(CT, "")}, set(), id="multiple-of-2-to-4"),
    pytest.param(
        {"multipleOf": 0.1}, {"multipleOf": 0.01}, set(), {(CT, "")}, id="multiple-of-decimal"
    ),
    pytest.param(
        {"multipleOf": 4}, {"multipleOf": 6}, {(CT, "")}, {(CT, "")}, id="multiple-of-4-6"
    ),
    # --- pattern, format, uniqueItems -------------------------------------------------------------
    pytest.param(
        {"pattern": "^[0-9]{6}$"},
        {"pattern": "^[0-9]{18}$"},
        {(CT, "")},
        {(CT, "")},
        id="pattern-changed",
    ),
    pytest.param(
        {"type": "string"},
        {"type": "string", "format": "date"},
        {(CT, "")},
        set(),
        id="format-added",
    ),
    pytest.param(
        {"type": "array", "uniqueItems": False},
        {"type": "array", "uniqueItems": True},
        {(CT, "")},
        set(),
        id="unique-items-on",
    ),
    # --- closed content ---------------------------------------------------------------------------
    pytest.param(
        {"properties": {"a": {}}},
        {"properties": {"a": {}}, "additionalProperties": False},
        {(CT, "")},
        set(),
        id="additional-properties-closed",
    ),
    pytest.param(
        {"additionalProperties": {"type": "string"}},
        {"additionalProperties": False},
        {(CT, "")},
        set(),
        id="additional-properties-schema-to-false",
    ),
    pytest.param(
        {"additionalProperties": True},
        {"additionalProperties": {"type": "string"}},
        {(TN, "/additionalProperties")},
        set(),
        id="additional-properties-schema-narrowed",
    ),
    pytest.param(
        {}, {"unevaluatedProperties": False}, {(CT, "")}, set(), id="unevaluated-properties-closed"
    ),
    # --- $ref and $defs ---------------------------------------------------------------------------
    pytest.param(
        {"$ref": "#/$defs/a"}, {"$ref": "#/$defs/b"}, {(RC, "")}, {(RC, "")}, id="ref-changed"
    ),
    pytest.param(
        {"properties": {"home": {"type": "object"}}},
        {"properties": {"home": {"$ref": "#/$defs/address"}}},
        {(RC, "/properties/home")},
        {(RC, "/properties/home"), (TN, "/properties/home")},
        id="ref-added",
    ),
    pytest.param(
        address({"type": "string"}),
        address({"type": "string", "pattern": "^[0-9]{6}$"}),
        {(CT, "/$defs/address/properties/zip")},
        set(),
        id="defs-narrowed",
    ),
    pytest.param(
        {"$defs": {}},
        {"$defs": {"x": {"type": "string"}}},
        set(),
        set(),
        id="defs-added-is-not-a-change",
    ),
    # --- nesting ----------------------------------------------------------------------------------
    pytest.param(
        holder({"type": "string", "maxLength": 50}),
        holder({"type": "string", "maxLength": 20}, required=["name"]),
        {(CT, "/properties/holder/properties/name"), (RA, "/properties/holder/properties/name")},
        set(),
        id="nested-property",
    ),
    pytest.param(
        {"type": "array", "items": {"type": ["string", "integer"]}},
        {"type": "array", "items": {"type": "string"}},
        {(TN, "/items")},
        set(),
        id="items-narrowed",
    ),
    pytest.param(
        {"items": {"properties": {"a": {}, "b": {}}}},
        {"items": {"properties": {"a": {}}}},
        {(PR, "/items/properties/b")},
        set(),
        id="items-property-removed",
    ),
    pytest.param(
        {"prefixItems": [{"type": "string"}, {"type": "integer"}]},
        {"prefixItems": [{"type": "string"}, {"type": "string"}]},
        {(TN, "/prefixItems/1")},
        {(TN, "/prefixItems/1")},
        id="prefix-items-by-index",
    ),
    pytest.param(
        {"prefixItems": [{"type": "string"}]},
        {"prefixItems": [{"type": "string"}, {"type": "integer"}]},
        {(TN, "/prefixItems/1")},
        set(),
        id="prefix-items-extended",
    ),
    pytest.param(
        {"prefixItems": [{"type": "string"}]},
        {"prefixItems": [{"type": "string"}], "items": False},
        {(SC, "/items")},
        set(),
        id="tuple-closed",
    ),
    # --- pointer escaping -------------------------------------------------------------------------
    pytest.param(
        {"properties": {"a/b": {"type": "string"}, "c~d": {}}},
        {"properties": {"a/b": {"type": "integer"}}},
        {(TN, "/properties/a~1b"), (PR, "/properties/c~0d")},
        {(TN, "/properties/a~1b")},
        id="pointer-escaping-properties",
    ),
    pytest.param(
        {"$defs": {"x~/y": {"type": "string"}}},
        {"$defs": {"x~/y": {"type": "string", "minLength": 1}}},
        {(CT, "/$defs/x~0~1y")},
        set(),
        id="pointer-escaping-defs",
    ),
    # --- boolean schemas --------------------------------------------------------------------------
    pytest.param(True, False, {(SC, "")}, set(), id="true-to-false"),
    pytest.param(
        {"properties": {"x": True}},
        {"properties": {"x": False}},
        {(SC, "/properties/x")},
        set(),
        id="property-true-to-false",
    ),
    pytest.param(True, {"type": "string"}, {(TN, "")}, set(), id="true-to-schema"),
    pytest.param(
        False, {"type": "string", "maxLength": 1}, set(), {(SC, "")}, id="false-to-schema"
    ),
    # --- combinators ------------------------------------------------------------------------------
    pytest.param(
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        {"anyOf": [{"type": "string"}]},
        {(SC, "/anyOf/1")},
        set(),
        id="any-of-alternative-removed",
    ),
    pytest.param(
        {"allOf": [{"properties": {"a": {"maxLength": 5}}}]},
        {"allOf": [{"properties": {"a": {"maxLength": 3}}}]},
        {(CT, "/allOf/0/properties/a")},
        set(),
        id="all-of-nested",
    ),
    pytest.param(
        {},
        {"allOf": [{"required": ["a"]}]},
        {(RA, "/allOf/0/properties/a")},
        set(),
        id="all-of-added",
    ),
    pytest.param(
        {"oneOf": [{"type": "string", "maxLength": 3}, {"type": "string", "minLength": 5}]},
        {"oneOf": [{"type": "string", "maxLength": 10}, {"type": "string", "minLength": 5}]},
        {(KC, "/oneOf/0")},
        {(CT, "/oneOf/0")},
        id="one-of-alternative-widened",
    ),
    pytest.param(
        {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "number"}]},
        {(KC, "/oneOf/2")},
        {(SC, "/oneOf/2")},
        id="one-of-alternative-added",
    ),
    # --- keywords not analysed --------------------------------------------------------------------
    pytest.param({}, {"not": {"type": "null"}}, {(KC, "")}, set(), id="not-added"),
    pytest.param(
        {"patternProperties": {"^x-": {}}, "additionalProperties": False},
        {"additionalProperties": False},
        {(KC, "")},
        {(KC, "")},
        id="pattern-properties-removed",
    ),
    # --- widenings only ---------------------------------------------------------------------------
    pytest.param(
        {
            "type": "string",
            "minLength": 2,
            "maxLength": 5,
            "enum": ["ab", "cd"],
            "pattern": "^[a-z]+$",
            "format": "hostname",
        },
        {"type": ["string", "null"]},
        set(),
        {(TN, ""), (CT, ""), (EV, "")},
        id="constraints-removed",
    ),
]


def found(changes: list[Change]) -> Found:
    return {(change.kind, change.pointer) for change in changes}


@pytest.mark.parametrize(("old", "new", "backward", "forward"), CASES)
def test_narrowings_in_both_directions(
    old: Schema, new: Schema, backward: Found, forward: Found
) -> None:
    assert found(narrowings(old, new)) == backward
    assert found(narrowings(new, old)) == forward


def test_the_table_covers_every_kind_in_both_directions() -> None:
    backward_kinds = {kind for case in CASES for kind, _ in cast(Found, case.values[2])}
    forward_kinds = {kind for case in CASES for kind, _ in cast(Found, case.values[3])}
    assert backward_kinds == set(ChangeKind)
    assert forward_kinds == set(ChangeKind)
    assert len(CASES) >= 30


def test_every_change_is_reported_with_its_own_detail() -> None:
    changes = narrowings(
        {"type": "array", "minItems": 0, "maxItems": 10},
        {"type": "array", "minItems": 1, "maxItems": 5},
    )
    assert [change.en for change in changes] == [
        "maxItems tightened from 10 to 5",
        "minItems tightened from 0 to 1",
    ]
    assert [change.zh for change in changes] == [
        "maxItems 由 10 收紧为 5",
        "minItems 由 0 收紧为 1",
    ]


def test_details_name_what_was_lost() -> None:
    [removed] = narrowings({"properties": {"姓名": {}}}, {"properties": {}})
    assert removed.en == "property '姓名' was removed"
    assert removed.zh == "属性“姓名”被删除"
    [narrowed] = narrowings({"type": ["number", "null"]}, {"type": "integer"})
    assert narrowed.en == "type no longer accepts null, number (non-integer)"
    [enum] = narrowings({"enum": ["a", "b", "c"]}, {"enum": ["b"]})
    assert enum.en == 'values ["a", "c"] are no longer allowed'


def test_changes_are_sorted_by_pointer_then_kind() -> None:
    old = {"properties": {"b": {"type": "string"}, "a": {}, "c": {}}}
    new = {"properties": {"b": {"type": "integer"}}, "required": ["b", "a"], "maxProperties": 3}
    keys = [(change.pointer, change.kind.value) for change in narrowings(old, new)]
    assert keys == sorted(keys)
    assert keys == [
        ("", "constraint-tightened"),
        ("/properties/a", "property-removed"),
        ("/properties/a", "required-added"),
        ("/properties/b", "required-added"),
        ("/properties/b", "type-narrowed"),
        ("/properties/c", "property-removed"),
    ]


def test_schemas_are_not_modified() -> None:
    old, new = copy.deepcopy(PERSON), holder({"type": "string"})
    narrowings(old, new)
    narrowings(new, old)
    assert old == PERSON
    assert new == holder({"type": "string"})


def test_changes_serialise_as_plain_json() -> None:
    [change] = narrowings({"maxLength": 10}, {"maxLength": 5})
    violation = Violation(against_version=3, direction="backward", change=change)
    assert json.loads(json.dumps(asdict(violation))) == {
        "against_version": 3,
        "direction": "backward",
        "change": {
            "kind": "constraint-tightened",
            "pointer": "",
            "en": "maxLength tightened from 10 to 5",
            "zh": "maxLength 由 10 收紧为 5",
        },
    }


def test_diff_reports_both_directions() -> None:
    old, new = {"type": "integer"}, {"type": "number", "maximum": 10}
    assert diff(old, new) == {"backward": narrowings(old, new), "forward": narrowings(new, old)}
    assert found(diff(old, new)["backward"]) == {(CT, "")}
    assert found(diff(old, new)["forward"]) == {(TN, "")}


# --- check ----------------------------------------------------------------------------------------


def test_modes_are_spelled_as_confluent_spells_them() -> None:
    assert [mode.value for mode in CompatibilityMode] == [
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
        "NONE",
    ]


def person(pattern: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {"name": {"type": "string", "pattern": pattern}},
    }


# Only version 1 is incompatible with the candidate (its pattern differs), in both directions.
FIRST_INCOMPATIBLE = [
    (1, person("^[A-Z]+$", "v1")),
    (2, person("^[a-z]+$", "v2")),
    (3, person("^[a-z]+$", "v3")),
]
FIRST_INCOMPATIBLE_CANDIDATE = person("^[a-z]+$", "v4")
NAME = "/properties/name"

Reported = list[tuple[int, str, ChangeKind, str]]


def reported(violations: list[Violation]) -> Reported:
    return [(v.against_version, v.direction, v.change.kind, v.change.pointer) for v in violations]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param(CompatibilityMode.BACKWARD, [], id="backward"),
        pytest.param(
            CompatibilityMode.BACKWARD_TRANSITIVE,
            [(1, "backward", CT, NAME)],
            id="backward-transitive",
        ),
        pytest.param(CompatibilityMode.FORWARD, [], id="forward"),
        pytest.param(
            CompatibilityMode.FORWARD_TRANSITIVE,
            [(1, "forward", CT, NAME)],
            id="forward-transitive",
        ),
        pytest.param(CompatibilityMode.FULL, [], id="full"),
        pytest.param(
            CompatibilityMode.FULL_TRANSITIVE,
            [(1, "backward", CT, NAME), (1, "forward", CT, NAME)],
            id="full-transitive",
        ),
        pytest.param(CompatibilityMode.NONE, [], id="none"),
    ],
)
def test_only_transitive_modes_look_past_the_latest_version(
    mode: CompatibilityMode, expected: Reported
) -> None:
    violations = check(mode, FIRST_INCOMPATIBLE, FIRST_INCOMPATIBLE_CANDIDATE)
    assert reported(violations) == expected


# The candidate drops the optional "nickname" that only the latest version declared: readers on
# the candidate lose it (backward), while old readers simply never see it (forward is fine).
WITH_NICKNAME = {"properties": {"name": {"type": "string"}, "nickname": {"type": "string"}}}
WITHOUT_NICKNAME = {"properties": {"name": {"type": "string"}}}
LATEST_INCOMPATIBLE = [(1, WITHOUT_NICKNAME), (2, WITHOUT_NICKNAME), (3, WITH_NICKNAME)]
NICKNAME = "/properties/nickname"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param(CompatibilityMode.BACKWARD, [(3, "backward", PR, NICKNAME)], id="backward"),
        pytest.param(
            CompatibilityMode.BACKWARD_TRANSITIVE,
            [(3, "backward", PR, NICKNAME)],
            id="backward-transitive",
        ),
        pytest.param(CompatibilityMode.FORWARD, [], id="forward"),
        pytest.param(CompatibilityMode.FORWARD_TRANSITIVE, [], id="forward-transitive"),
        pytest.param(CompatibilityMode.FULL, [(3, "backward", PR, NICKNAME)], id="full"),
        pytest.param(
            CompatibilityMode.FULL_TRANSITIVE, [(3, "backward", PR, NICKNAME)], id="full-transitive"
        ),
        pytest.param(CompatibilityMode.NONE, [], id="none"),
    ],
)
def test_every_mode_checks_the_latest_version(mode: CompatibilityMode, expected: Reported) -> None:
    assert reported(check(mode, LATEST_INCOMPATIBLE, WITHOUT_NICKNAME)) == expected


@pytest.mark.parametrize("mode", list(CompatibilityMode), ids=lambda mode: mode.value.lower())
def test_an_empty_history_accepts_anything(mode: CompatibilityMode) -> None:
    assert check(mode, [], False) == []


def test_none_accepts_even_a_schema_that_rejects_everything() -> None:
    assert check(CompatibilityMode.NONE, [(1, True)], False) == []
    assert check(CompatibilityMode.FULL_TRANSITIVE, [(1, True)], False) != []


def test_transitive_violations_come_oldest_version_first() -> None:
    history: list[tuple[int, Schema]] = [
        (1, {"maxLength": 10}),
        (2, {"maxLength": 9}),
        (5, {"maxLength": 8}),
    ]
    violations = check(CompatibilityMode.FULL_TRANSITIVE, history, {"maxLength": 5, "format": "x"})
    assert [(v.against_version, v.direction, v.change.en) for v in violations] == [
        (1, "backward", 'format "x" was added'),
        (1, "backward", "maxLength tightened from 10 to 5"),
        (2, "backward", 'format "x" was added'),
        (2, "backward", "maxLength tightened from 9 to 5"),
        (5, "backward", 'format "x" was added'),
        (5, "backward", "maxLength tightened from 8 to 5"),
    ]


def test_forward_pointers_refer_to_the_earlier_version() -> None:
    history: list[tuple[int, Schema]] = [(1, {"properties": {"a": {}}})]
    candidate = {"properties": {"a": {}, "b/c": {"type": "integer"}}}
    [violation] = check(CompatibilityMode.FULL, history, candidate)
    assert violation == Violation(
        against_version=1,
        direction="forward",
        change=Change(
            kind=PR,
            pointer="/properties/b~1c",
            en="property 'b/c' was removed",
            zh="属性“b/c”被删除",
        ),
    )
