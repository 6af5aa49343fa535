"""Agreements' field pointers against schemas, and projections of records by them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from importlib.resources import files
from typing import Any

import pytest

from hub.schemas.agreements import Projections
from hub.schemas.domain import ENVELOPE
from hub.schemas.projection import Projection, missing_fields, parse_pointer, unkept_required
from hub.schemas.store import Agreement, SchemaVersion
from hub.schemas.validation import Validators

BUILTIN = files("hub.schemas") / "builtin"

Json = Any


def load(subject: str) -> dict[str, Json]:
    schema: dict[str, Json] = json.loads((BUILTIN / f"{subject}.json").read_text("utf-8"))
    return schema


HOLDER_RECORD = load("holder-record")
EXAMPLE: dict[str, Json] = HOLDER_RECORD["examples"][0]


# --- pointers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pointer", "tokens"),
    [
        ("/holder/name", ("holder", "name")),
        ("/a~1b", ("a/b",)),
        ("/m~0n", ("m~n",)),
        ("/~01", ("~1",)),
        ("/", ("",)),
        ("/a//b", ("a", "", "b")),
        ("", None),
        ("holder/name", None),
        ("/a~2b", None),
        ("/a~", None),
        ("/~~01", None),
    ],
)
def test_parse_pointer(pointer: str, tokens: tuple[str, ...] | None) -> None:
    assert parse_pointer(pointer) == tokens


# --- missing_fields --------------------------------------------------------------------------

DECLARED = [
    "/$schema",
    "/schema_version",
    "/event",
    "/event/at",
    "/permit",
    "/permit/state",
    "/holder",
    "/holder/name",
    "/holder/citizen_id",
    "/holder/current_region",
]
UNDECLARED = [
    "/holder/nmae",  # a typo
    "/holder/name/first",  # below a string
    "/holder/",  # the property "" of holder
    "/examples",  # a keyword of the schema, not a property
    "/properties/holder",  # the schema's own path, not the record's
    "/permit/state/0",
    "holder/name",  # malformed: no leading /
    "",  # malformed: the whole record is not a field
    "/holder/a~2b",  # malformed escape
]


def test_declared_fields_of_holder_record() -> None:
    assert missing_fields(HOLDER_RECORD, DECLARED) == []


@pytest.mark.parametrize("pointer", UNDECLARED)
def test_undeclared_fields_of_holder_record(pointer: str) -> None:
    assert missing_fields(HOLDER_RECORD, [pointer]) == [pointer]


def test_missing_fields_keeps_order_and_lists_each_once() -> None:
    pointers = ["/holder/nmae", "/holder/name", "/zzz", "/holder/nmae", "/permit"]
    assert missing_fields(HOLDER_RECORD, pointers) == ["/holder/nmae", "/zzz"]


ESCAPED = {"properties": {"a/b": {"properties": {"m~n": {"type": "string"}}}, "a": {}}}


@pytest.mark.parametrize(
    ("pointer", "missing"),
    [("/a~1b", False), ("/a~1b/m~0n", False), ("/a/b", True), ("/a~1b/m~n", True), ("/a", False)],
)
def test_escaped_names(pointer: str, missing: bool) -> None:
    assert missing_fields(ESCAPED, [pointer]) == ([pointer] if missing else [])


COMPOSED = {
    "allOf": [
        {"properties": {"x": {"type": "string"}}},
        {"$ref": "#/$defs/with-y"},
    ],
    "properties": {"z": {"$ref": "#/$defs/node"}},
    "anyOf": [{"properties": {"only-sometimes": {}}}],
    "patternProperties": {"^p-": {}},
    "$defs": {
        "with-y": {"properties": {"y": {"allOf": [{"properties": {"deep": {}}}]}}},
        "node": {"properties": {"value": {}, "next": {"$ref": "#/$defs/node"}}},
        "a~b": {"properties": {"escaped": {}}},
    },
}


@pytest.mark.parametrize(
    ("pointer", "missing"),
    [
        ("/x", False),  # allOf branch
        ("/y", False),  # $ref inside an allOf branch
        ("/y/deep", False),  # allOf inside the referenced $defs
        ("/z/value", False),  # $ref under properties
        ("/z/next/next/next/value", False),  # a recursive $ref
        ("/z/next/other", True),
        ("/only-sometimes", True),  # anyOf declares nothing for every record
        ("/p-1", True),  # patternProperties declares no name
        ("/$defs", True),
        ("/with-y", True),
    ],
)
def test_fields_declared_through_refs_and_allof(pointer: str, missing: bool) -> None:
    assert missing_fields(COMPOSED, [pointer]) == ([pointer] if missing else [])


def test_escaped_local_refs() -> None:
    schema = {**COMPOSED, "properties": {"e": {"$ref": "#/$defs/a~0b"}}}
    assert missing_fields(schema, ["/e/escaped"]) == []


def test_urn_refs_resolve_through_resolve() -> None:
    uri = "urn:permit-hub:schema:holder-record:1"
    schema = {
        "properties": {
            "holder": {"$ref": f"{uri}#/properties/holder"},
            "record": {"$ref": uri},
        }
    }
    asked: list[str] = []

    def resolve(asked_for: str) -> dict[str, Json] | None:
        asked.append(asked_for)
        return HOLDER_RECORD if asked_for == uri else None

    pointers = ["/holder/name", "/record/event/at", "/holder/nmae"]
    assert missing_fields(schema, pointers, resolve) == ["/holder/nmae"]
    assert set(asked) == {uri}
    assert missing_fields(schema, pointers) == pointers  # nothing resolves without `resolve`
    other = {"properties": {"h": {"$ref": "urn:permit-hub:schema:nobody:1#/properties/holder"}}}
    assert missing_fields(other, ["/h/name"], resolve) == ["/h/name"]


def test_a_local_ref_in_a_referenced_schema_resolves_in_that_schema() -> None:
    uri = "urn:permit-hub:schema:defs:1"
    defs = {"properties": {"a": {"$ref": "#/$defs/a"}}, "$defs": {"a": {"properties": {"b": {}}}}}
    schema = {"properties": {"outer": {"$ref": uri}}, "$defs": {"a": {"properties": {"c": {}}}}}
    found = missing_fields(schema, ["/outer/a/b", "/outer/a/c"], {uri: defs}.get)
    assert found == ["/outer/a/c"]


# --- projecting ------------------------------------------------------------------------------


def test_projection_keeps_only_the_allowed_fields() -> None:
    projection = Projection(["/holder/name", "/holder/current_region", "/permit/state"], ENVELOPE)
    assert projection.apply(EXAMPLE) == {
        "$schema": EXAMPLE["$schema"],
        "schema_version": 1,
        "event": EXAMPLE["event"],
        "permit": {"state": "valid"},
        "holder": {"name": "乌云其其格", "current_region": "150402"},
    }


def test_a_pointer_to_an_object_allows_the_whole_subtree_whatever_the_order() -> None:
    for pointers in (["/permit", "/permit/state"], ["/permit/state", "/permit"]):
        assert Projection(pointers).apply(EXAMPLE) == {"permit": EXAMPLE["permit"]}


def test_absent_fields_stay_absent() -> None:
    record = {key: value for key, value in EXAMPLE.items() if key != "holder"}
    record["permit"] = {"state": "valid"}
    projection = Projection(["/holder/name", "/permit/card_serial", "/permit/state"], ENVELOPE)
    projected = projection.apply(record)
    assert "holder" not in projected
    assert projected["permit"] == {"state": "valid"}
    assert Projection(["/holder/name"]).apply({"holder": {}}) == {"holder": {}}


def test_null_stays_null_when_shared_whole() -> None:
    projected = Projection(["/permit/suspended_on", "/holder/workplace"]).apply(EXAMPLE)
    assert projected == {
        "permit": {"suspended_on": None},
        "holder": {"workplace": EXAMPLE["holder"]["workplace"]},
    }


@pytest.mark.parametrize("value", [None, "text", 5, ["a", {"name": "x"}], True])
def test_a_pointer_through_a_non_object_is_ignored(value: Json) -> None:
    assert Projection(["/holder/name", "/event/id"]).apply(
        {"holder": value, "event": {"id": "e"}}
    ) == {"event": {"id": "e"}}


def test_arrays_are_allowed_only_whole() -> None:
    record = {"reasons": ["permit-valid", "residence-months-met"], "other": 1}
    assert Projection(["/reasons/0"]).apply(record) == {}
    assert Projection(["/reasons"]).apply(record) == {"reasons": record["reasons"]}


def test_escaped_pointers_project_their_names() -> None:
    record = {"a/b": {"m~n": 1, "x": 2}, "a": {"b": 3}}
    assert Projection(["/a~1b/m~0n"]).apply(record) == {"a/b": {"m~n": 1}}


def test_values_are_untouched_and_the_input_is_not_mutated() -> None:
    record = copy.deepcopy(EXAMPLE)
    before = copy.deepcopy(record)
    projection = Projection(["/holder", "/permit/id", "/permit/expires_on"], ENVELOPE)
    projected = projection.apply(record)
    assert record == before
    assert projected["holder"] == record["holder"]
    assert projected["permit"] == {"id": record["permit"]["id"], "expires_on": "2026-03-19"}
    projected["permit"]["id"] = "changed"
    projected["extra"] = 1
    assert record == before


def test_malformed_pointers_are_refused_when_compiled() -> None:
    for pointer in ("holder/name", "", "/a~2"):
        with pytest.raises(ValueError):
            Projection([pointer])
    with pytest.raises(ValueError):
        Projection(["/holder/name"], always=["event"])


def test_pointers_are_kept_once_in_order() -> None:
    projection = Projection(["/holder/name", "/event", "/holder/name"], ENVELOPE)
    assert projection.pointers == ("/$schema", "/schema_version", "/event", "/holder/name")


AGREEMENTS = [
    [],
    ["/holder/name", "/holder/current_region"],
    [
        "/holder/name",
        "/holder/sex",
        "/holder/birth_date",
        "/holder/current_address",
        "/holder/current_region",
        "/permit/state",
        "/permit/expires_on",
        "/permit/valid_from",
        "/permit/card_serial",
        "/event/type",
    ],
    ["/holder", "/permit"],
    ["/holder/citizen_id", "/permit/suspended_on", "/permit/cancel_reason"],
]


@pytest.mark.parametrize("agreement", AGREEMENTS)
def test_projected_records_still_validate(agreement: list[str]) -> None:
    assert missing_fields(HOLDER_RECORD, [*ENVELOPE, *agreement]) == []
    compiled = Validators(lambda subject, version: HOLDER_RECORD).get("holder-record", 1)
    projection = Projection(agreement, always=ENVELOPE)
    records = [copy.deepcopy(EXAMPLE)]
    sparse = copy.deepcopy(EXAMPLE)
    del sparse["permit"], sparse["holder"]["workplace"]
    records.append(sparse)
    for record in records:
        assert compiled.errors(record) == []
        projected = projection.apply(record)
        assert compiled.errors(projected) == []
        assert set(projected) >= {"$schema", "schema_version", "event"}


def test_without_the_envelope_a_projection_can_be_invalid() -> None:
    """Why `always` exists: the holder-record schema requires its envelope."""
    compiled = Validators(lambda subject, version: HOLDER_RECORD).get("holder-record", 1)
    projected = Projection(["/holder/name", "/event/type"]).apply(EXAMPLE)
    assert {issue.pointer for issue in compiled.errors(projected)} == {
        "/$schema",
        "/schema_version",
        "/event/at",
        "/event/id",
    }


# --- unkept_required ---------------------------------------------------------------------------


def test_the_fixed_envelope_and_an_agreement_keep_what_version_1_requires() -> None:
    for agreement in AGREEMENTS:
        assert unkept_required(HOLDER_RECORD, [*ENVELOPE, *agreement]) == []
    assert unkept_required(HOLDER_RECORD, ["/holder/name"]) == list(ENVELOPE)


NESTED: dict[str, Json] = {
    "$defs": {
        "person": {
            "type": "object",
            "properties": {"name": {}, "sex": {}, "a/b": {}},
            "required": ["name", "sex"],
        }
    },
    "properties": {
        "holder": {"$ref": "#/$defs/person"},
        "permit": {
            "allOf": [{"required": ["state"]}, {"properties": {"state": {}, "card": {}}}],
            "properties": {"card": {"properties": {"serial": {}}, "required": ["serial"]}},
        },
        "event": {"anyOf": [{"required": ["id"]}, {}]},
    },
    "allOf": [{"$ref": "urn:permit-hub:schema:envelope:1"}],
}
ENVELOPE_SCHEMA: dict[str, Json] = {"required": ["holder", "a/b"]}


@pytest.mark.parametrize(
    ("kept", "unkept"),
    [
        (["/holder", "/a~1b"], []),  # kept whole: whatever it requires comes along
        (["/holder/name", "/a~1b"], ["/holder/sex"]),  # through $ref
        (["/holder/name", "/holder/sex"], ["/a~1b"]),  # required by a referenced version
        (["/a~1b"], ["/holder"]),
        (["/holder", "/a~1b", "/permit/card"], ["/permit/state"]),  # through allOf
        (["/holder", "/a~1b", "/permit/state", "/permit/card/x"], ["/permit/card/serial"]),
        (["/holder", "/a~1b", "/event/type"], []),  # anyOf branches may not apply
    ],
)
def test_unkept_required_follows_ref_and_all_of_into_objects_kept_in_part(
    kept: list[str], unkept: list[str]
) -> None:
    def resolve(uri: str) -> dict[str, Json] | None:
        return ENVELOPE_SCHEMA if uri == "urn:permit-hub:schema:envelope:1" else None

    assert unkept_required(NESTED, kept, resolve) == unkept


def test_unkept_required_refuses_a_malformed_pointer() -> None:
    with pytest.raises(ValueError):
        unkept_required(HOLDER_RECORD, ["holder"])


def test_projections_are_kept_per_agreement_version_and_schema_version() -> None:
    """One agreement, two versions of its subject: what it lacks under the second is never
    taken for its standing under the first, whichever was projected first."""
    agreement = Agreement(
        id="a",
        version=1,
        department="education",
        purpose="p",
        subject="holder-record",
        allowed_fields=["/holder/name"],
        legal_basis="b",
        valid_from=date(2026, 1, 1),
        status="active",
        changed_by="x",
        changed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    narrow = copy.deepcopy(HOLDER_RECORD)
    narrow["properties"]["holder"]["required"] = ["sex"]
    first, second = (
        SchemaVersion(subject="holder-record", version=number, definition=definition)
        for number, definition in ((1, HOLDER_RECORD), (2, narrow))
    )
    projections = Projections()
    today = date(2026, 6, 1)
    for schema, shortfall in (
        (second, ("/holder/sex",)),
        (first, None),
        (second, ("/holder/sex",)),
    ):
        projected = projections.project(agreement, schema, EXAMPLE, today, lambda uri: None)
        found = projected.shortfall.fields if projected.shortfall else None
        assert found == shortfall
        assert projected.record["holder"] == {"name": EXAMPLE["holder"]["name"]}
        assert set(projected.record) == {"$schema", "schema_version", "event", "holder"}
