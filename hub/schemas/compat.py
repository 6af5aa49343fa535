"""Structural compatibility of JSON Schema (Draft 2020-12) versions, with Confluent's semantics.

Confluent Schema Registry speaks of a *writer* (the producer that serialised a document with one
schema version) and a *reader* (the consumer that validates and reads it with another). Translated
to JSON Schema, where "reading" means "validating", a reader can fail on a writer's document
exactly when the reader's schema rejects something the writer's schema accepted. We call such a
change from `old` to `new` a *narrowing*:

* BACKWARD: consumers move to the candidate first and still read data written with the previous
  version, so the candidate must not narrow the previous one: `narrowings(old=previous,
  new=candidate)`.
* FORWARD: producers move to the candidate first and consumers still on the previous version read
  its data, so the previous version must not narrow the candidate: `narrowings(old=candidate,
  new=previous)`.
* FULL is both; the `_TRANSITIVE` modes check every earlier version instead of only the latest;
  NONE checks nothing.

The comparison walks the two schema trees side by side (it is not a text diff, so reordering keys
or re-indenting changes nothing) and compares keyword by keyword. Deciding whether one schema
accepts a subset of another is hard in general, so the checker is *conservative*: it may call a
change breaking that a full semantic analysis would accept (an `anyOf` whose alternatives were
merely reordered, a `maximum` replaced by an equivalent `exclusiveMaximum`), but apart from the
property rule below it never calls a narrowing of the kinds in `ChangeKind` harmless. Validation
keywords it does not analyse (`not`, `if`/`then`/`else`, `patternProperties`, `contains`, ...)
are reported as `keyword-changed` whenever they are added or changed, for the same reason.

Two deliberate departures from Confluent concern properties. Confluent judges an open content
model (`additionalProperties` absent or `true`) by validity alone, so there adding a property is
breaking and removing one is not. This registry takes the contract view instead: `properties`
lists what producers write and readers rely on.

* Removing a declared property is breaking (`property-removed`) even in an open content model,
  where the document stays valid: a reader relying on the field would lose it.
* Adding an optional property to an open content model is not breaking: producers are assumed to
  write declared properties only. When the old schema had a schema for the name (under
  `patternProperties` or `additionalProperties`), the new property is checked against it,
  because a producer could have written the name under it.

Two limits of the structural walk follow from not resolving references:

* A changed `$ref` target is reported as `ref-changed`, even when both targets are equivalent;
  the definitions themselves are compared by name under `$defs`.
* An added or removed definition is not a change of its own: what matters is whether a `$ref`
  to it was added or removed (a dangling `$ref` is for registration to catch, not this check).

Schemas are assumed to be well formed (valid against the 2020-12 meta-schema); malformed keyword
values are not diagnosed here. Pointers are RFC 6901 JSON pointers to the schema node in the
*new* schema, i.e. the second argument of `narrowings`; for a removed property or alternative, to
where it would sit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any, Literal, TypeAlias

from hub.schemas import patterns

Schema: TypeAlias = Mapping[str, Any] | bool
"""A JSON Schema: an object, or `true` (accepts everything) / `false` (accepts nothing)."""

Direction = Literal["backward", "forward"]


class CompatibilityMode(StrEnum):
    """Confluent's compatibility levels, spelled as Confluent spells them."""

    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    NONE = "NONE"


class ChangeKind(StrEnum):
    """What kind of narrowing was found; the values are a public contract of the registry API."""

    PROPERTY_REMOVED = "property-removed"
    TYPE_NARROWED = "type-narrowed"
    REQUIRED_ADDED = "required-added"
    ENUM_VALUE_REMOVED = "enum-value-removed"
    CONSTRAINT_TIGHTENED = "constraint-tightened"
    REF_CHANGED = "ref-changed"
    SCHEMA_CLOSED = "schema-closed"
    """A subschema became `false`, or an `anyOf`/`oneOf` alternative was removed."""
    KEYWORD_CHANGED = "keyword-changed"
    """A keyword the checker does not analyse was added or changed; assumed to narrow."""


@dataclass(frozen=True)
class Change:
    """One narrowing: where (JSON pointer into the new schema) and what, in English and Chinese."""

    kind: ChangeKind
    pointer: str
    en: str
    zh: str


@dataclass(frozen=True)
class Violation:
    """A narrowing that breaks the chosen mode against one registered version."""

    against_version: int
    direction: Direction
    change: Change


# --- public API -----------------------------------------------------------------------------------


def narrowings(old: Schema, new: Schema) -> list[Change]:
    """Every change that may make a document valid under `old` invalid under `new`.

    Sorted by pointer, then kind, then English detail, so that results are stable across runs and
    can be compared in tests and stored.
    """
    unique = set(_compare(old, new, ""))
    return sorted(unique, key=lambda change: (change.pointer, change.kind.value, change.en))


def diff(old: Schema, new: Schema) -> dict[str, list[Change]]:
    """Both directions between two versions, as shown when a person compares them.

    "backward" lists what breaks readers of `new` on data written with `old`, "forward" what
    breaks readers of `old` on data written with `new`.
    """
    return {"backward": narrowings(old, new), "forward": narrowings(new, old)}


_BACKWARD_MODES = frozenset(
    {
        CompatibilityMode.BACKWARD,
        CompatibilityMode.BACKWARD_TRANSITIVE,
        CompatibilityMode.FULL,
        CompatibilityMode.FULL_TRANSITIVE,
    }
)
_FORWARD_MODES = frozenset(
    {
        CompatibilityMode.FORWARD,
        CompatibilityMode.FORWARD_TRANSITIVE,
        CompatibilityMode.FULL,
        CompatibilityMode.FULL_TRANSITIVE,
    }
)
_TRANSITIVE_MODES = frozenset(
    {
        CompatibilityMode.BACKWARD_TRANSITIVE,
        CompatibilityMode.FORWARD_TRANSITIVE,
        CompatibilityMode.FULL_TRANSITIVE,
    }
)


def check(
    mode: CompatibilityMode, history: Sequence[tuple[int, Schema]], candidate: Schema
) -> list[Violation]:
    """The violations that forbid registering `candidate` under `mode`; empty means accepted.

    `history` holds (version, schema) pairs oldest first; its last entry is the latest version.
    Violations come in history order and, per version, backward before forward. A forward
    violation's pointer refers to the earlier version's schema, the "new" side of that direction.
    """
    mode = CompatibilityMode(mode)  # a plain "FULL" from a request body works too
    if mode == CompatibilityMode.NONE or not history:
        return []
    against = history if mode in _TRANSITIVE_MODES else history[-1:]
    violations: list[Violation] = []
    for version, previous in against:
        if mode in _BACKWARD_MODES:
            backward = narrowings(previous, candidate)
            violations += [Violation(version, "backward", change) for change in backward]
        if mode in _FORWARD_MODES:
            forward = narrowings(candidate, previous)
            violations += [Violation(version, "forward", change) for change in forward]
    return violations


# --- the walk -------------------------------------------------------------------------------------

NodeCheck: TypeAlias = Callable[[Mapping[str, Any], Mapping[str, Any], str], Iterator[Change]]


def _compare(old: Schema, new: Schema, at: str) -> Iterator[Change]:
    """Narrowings from subschema `old` to subschema `new`, the latter sitting at pointer `at`."""
    if old is False:
        return  # nothing was accepted before, so nothing can be lost
    if isinstance(new, bool):
        if not new:
            yield _change(
                ChangeKind.SCHEMA_CLOSED,
                at,
                "schema became false: no value is accepted any more",
                "模式变为 false：不再接受任何值",
            )
        return
    old_node: Mapping[str, Any] = {} if isinstance(old, bool) else old
    for node_check in _NODE_CHECKS:
        yield from node_check(old_node, new, at)


def _change(kind: ChangeKind, at: str, en: str, zh: str) -> Change:
    return Change(kind=kind, pointer=at, en=en, zh=zh)


def _child(at: str, *tokens: str | int) -> str:
    """Extend a JSON pointer, escaping `~` and `/` as RFC 6901 requires (in that order)."""
    escaped = (str(token).replace("~", "~0").replace("/", "~1") for token in tokens)
    return at + "".join("/" + token for token in escaped)


def _show(value: Any) -> str:
    """A JSON rendering for messages; Chinese text stays readable."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)


# --- type -----------------------------------------------------------------------------------------

_FRACTIONAL = "number (non-integer)"
"""JSON Schema's "number" split in two, so that "integer" can be a plain subset of it."""
_ANY_TYPE = frozenset({"null", "boolean", "object", "array", "string", "integer", _FRACTIONAL})


def _accepted_types(node: Mapping[str, Any]) -> frozenset[str]:
    """The types a node accepts, with "number" expanded; a missing `type` accepts any type."""
    declared = node.get("type")
    if declared is None:
        return _ANY_TYPE
    names = {declared} if isinstance(declared, str) else set(declared)
    if "number" in names:
        names |= {"integer", _FRACTIONAL}
    return frozenset(names - {"number"})


def _type_lost_names(lost: frozenset[str]) -> list[str]:
    """Name lost types as a schema author would: both halves of "number" are just "number"."""
    if {"integer", _FRACTIONAL} <= lost:
        lost = (lost - {"integer", _FRACTIONAL}) | {"number"}
    return sorted(lost)


def _check_type(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> Iterator[Change]:
    lost = _accepted_types(old) - _accepted_types(new)
    if lost:
        names = ", ".join(_type_lost_names(lost))
        yield _change(
            ChangeKind.TYPE_NARROWED,
            at,
            f"type no longer accepts {names}",
            f"类型不再接受 {names}",
        )


# --- enum and const -------------------------------------------------------------------------------


def _json_key(value: Any) -> Hashable:
    """A hashable key with JSON equality: 1 equals 1.0, but true does not equal 1."""
    if value is None or isinstance(value, bool | str):
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        return ("number", Fraction(value) if math.isfinite(value) else repr(value))
    if isinstance(value, Mapping):
        return ("object", frozenset((key, _json_key(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return ("array", tuple(_json_key(item) for item in value))
    return ("other", repr(value))


def _allowed_values(node: Mapping[str, Any]) -> list[Any] | None:
    """The values `enum` and `const` together allow, or None when neither restricts the node."""
    values: list[Any] | None = list(node["enum"]) if "enum" in node else None
    if "const" in node:
        const_key = _json_key(node["const"])
        candidates = [node["const"]] if values is None else values
        values = [value for value in candidates if _json_key(value) == const_key]
    return values


def _check_enum(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> Iterator[Change]:
    new_values = _allowed_values(new)
    if new_values is None:
        return
    old_values = _allowed_values(old)
    if old_values is None:
        shown = _show(new_values)
        yield _change(
            ChangeKind.ENUM_VALUE_REMOVED,
            at,
            f"values restricted to {shown} (enum or const added)",
            f"取值被限制为 {shown}（新增 enum 或 const）",
        )
        return
    new_keys = {_json_key(value) for value in new_values}
    removed = [value for value in old_values if _json_key(value) not in new_keys]
    if removed:
        shown = _show(removed)
        yield _change(
            ChangeKind.ENUM_VALUE_REMOVED,
            at,
            f"values {shown} are no longer allowed",
            f"取值 {shown} 不再允许",
        )


# --- bounds and other value constraints -----------------------------------------------------------

_UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
_LOWER_BOUNDS = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bound_change(keyword: str, old: Any, new: Any, is_upper: bool) -> tuple[str, str] | None:
    """English and Chinese detail when bound `keyword` got stricter from `old` to `new`.

    Each keyword is compared on its own: swapping `maximum` for an equivalent `exclusiveMaximum`
    reads as a bound added, which errs on the breaking side.
    """
    if old is None:
        return f"{keyword} {_show(new)} was added", f"新增约束 {keyword} = {_show(new)}"
    if _is_number(old) and _is_number(new):
        stricter = new < old if is_upper else new > old
    else:
        stricter = _json_key(old) != _json_key(new)
    if not stricter:
        return None
    return (
        f"{keyword} tightened from {_show(old)} to {_show(new)}",
        f"{keyword} 由 {_show(old)} 收紧为 {_show(new)}",
    )


def _check_bounds(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> Iterator[Change]:
    for keywords, is_upper in ((_UPPER_BOUNDS, True), (_LOWER_BOUNDS, False)):
        for keyword in keywords:
            if keyword not in new:
                continue
            detail = _bound_change(keyword, old.get(keyword), new[keyword], is_upper)
            if detail is not None:
                yield _change(ChangeKind.CONSTRAINT_TIGHTENED, at, *detail)


def _exact(value: Any) -> Fraction | None:
    """A number as an exact fraction (0.1 as 1/10, not its binary approximation)."""
    if not _is_number(value) or not math.isfinite(value):
        return None
    return Fraction(Decimal(repr(value))) if isinstance(value, float) else Fraction(value)


def _check_multiple_of(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> Iterator[Change]:
    """Multiples of `old` stay valid exactly when the new step divides the old one."""
    if "multipleOf" not in new:
        return
    new_step = _exact(new["multipleOf"])
    shown_new = _show(new["multipleOf"])
    if "multipleOf" not in old:
        yield _change(
            ChangeKind.CONSTRAINT_TIGHTENED,
            at,
            f"multipleOf {shown_new} was added",
            f"新增约束 multipleOf = {shown_new}",
        )
        return
    old_step = _exact(old["multipleOf"])
    # A zero or non-numeric step divides nothing, so it counts as a change.
    if old_step is not None and new_step and (old_step / new_step).denominator == 1:
        return
    shown_old = _show(old["multipleOf"])
    yield _change(
        ChangeKind.CONSTRAINT_TIGHTENED,
        at,
        f"multipleOf changed from {shown_old} to {shown_new}, which does not divide it",
        f"multipleOf 由 {shown_old} 改为 {shown_new}，后者不能整除前者",
    )


def _check_string_rules(
    old: Mapping[str, Any], new: Mapping[str, Any], at: str
) -> Iterator[Change]:
    """`pattern` and `format` are not compared as languages: any addition or change counts."""
    for keyword in ("pattern", "format"):
        if keyword not in new or old.get(keyword) == new[keyword]:
            continue
        shown_new = _show(new[keyword])
        if keyword in old:
            shown_old = _show(old[keyword])
            en = f"{keyword} changed from {shown_old} to {shown_new}"
            zh = f"{keyword} 由 {shown_old} 改为 {shown_new}"
        else:
            en, zh = f"{keyword} {shown_new} was added", f"新增约束 {keyword} = {shown_new}"
        yield _change(ChangeKind.CONSTRAINT_TIGHTENED, at, en, zh)


def _check_unique_items(
    old: Mapping[str, Any], new: Mapping[str, Any], at: str
) -> Iterator[Change]:
    if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
        yield _change(
            ChangeKind.CONSTRAINT_TIGHTENED,
            at,
            "uniqueItems turned on: repeated items are rejected",
            "启用 uniqueItems：数组元素不得重复",
        )


_PROPERTY_MAPS = ("additionalProperties", "unevaluatedProperties")


def _check_closed_content(
    old: Mapping[str, Any], new: Mapping[str, Any], at: str
) -> Iterator[Change]:
    """Closing the content model rejects properties that used to pass undeclared."""
    for keyword in _PROPERTY_MAPS:
        if new.get(keyword) is False and old.get(keyword) is not False:
            yield _change(
                ChangeKind.CONSTRAINT_TIGHTENED,
                at,
                f"{keyword} set to false: undeclared properties are rejected",
                f"{keyword} 设为 false：不再接受未声明的属性",
            )


# --- object structure -----------------------------------------------------------------------------


def _check_required(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> Iterator[Change]:
    """One change per newly required name, at the property's node (declared or not)."""
    for name in set(new.get("required", ())) - set(old.get("required", ())):
        yield _change(
            ChangeKind.REQUIRED_ADDED,
            _child(at, "properties", name),
            f"property {name!r} is now required",
            f"属性“{name}”变为必填",
        )


def _matches(pattern: Any, name: str) -> bool:
    """Whether a `patternProperties` pattern matches `name`, searched by the engine documents
    are matched by (`hub.schemas.patterns`); a pattern that engine refuses may match."""
    try:
        return patterns.compile_pattern(str(pattern))(name)
    except patterns.PatternRefused:
        return True


def _old_schemas_for_new_property(old: Mapping[str, Any], name: str) -> list[Schema]:
    """What governed `name` in the old schema, i.e. what a new declaration must not narrow.

    A declared property compares with its old declaration; an undeclared one with the old
    `patternProperties` that match it, or failing those with a schema-valued
    `additionalProperties`. Under `false` no old document had the property, and under an open
    model producers are assumed not to have written it (see the module docstring).
    """
    old_properties: Mapping[str, Any] = old.get("properties", {})
    if name in old_properties:
        return [old_properties[name]]
    patterns: Mapping[str, Any] = old.get("patternProperties", {})
    matching = [schema for pattern, schema in patterns.items() if _matches(pattern, name)]
    if matching:
        return matching
    additional = old.get("additionalProperties", True)
    return [additional] if isinstance(additional, Mapping) else []


def _check_properties(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> Iterator[Change]:
    new_properties: Mapping[str, Any] = new.get("properties", {})
    for name in old.get("properties", {}):
        if name not in new_properties:
            yield _change(
                ChangeKind.PROPERTY_REMOVED,
                _child(at, "properties", name),
                f"property {name!r} was removed",
                f"属性“{name}”被删除",
            )
    for name, new_property in new_properties.items():
        for old_property in _old_schemas_for_new_property(old, name):
            yield from _compare(old_property, new_property, _child(at, "properties", name))


def _check_property_maps(
    old: Mapping[str, Any], new: Mapping[str, Any], at: str
) -> Iterator[Change]:
    """Recurse into schema-valued `additionalProperties`/`unevaluatedProperties`.

    A new `false` is reported by `_check_closed_content`, as the node's constraint.
    """
    for keyword in _PROPERTY_MAPS:
        new_value = new.get(keyword, True)
        if new_value is not False:
            yield from _compare(old.get(keyword, True), new_value, _child(at, keyword))


# --- arrays ---------------------------------------------------------------------------------------


def _item_schema(node: Mapping[str, Any], index: int) -> Schema:
    """The schema for array position `index`: its `prefixItems` entry, else `items`."""
    prefix = node.get("prefixItems", [])
    if index < len(prefix):
        positional: Schema = prefix[index]
        return positional
    rest: Schema = node.get("items", True)
    return rest


def _check_items(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> Iterator[Change]:
    """Compare position by position, since a prefix entry may take over from `items` or back."""
    old_prefix_length = len(old.get("prefixItems", []))
    new_prefix_length = len(new.get("prefixItems", []))
    for index in range(max(old_prefix_length, new_prefix_length)):
        where = (
            _child(at, "prefixItems", index) if index < new_prefix_length else _child(at, "items")
        )
        yield from _compare(_item_schema(old, index), _item_schema(new, index), where)
    yield from _compare(old.get("items", True), new.get("items", True), _child(at, "items"))
    yield from _compare(
        old.get("unevaluatedItems", True),
        new.get("unevaluatedItems", True),
        _child(at, "unevaluatedItems"),
    )


# --- references and definitions -------------------------------------------------------------------


def _check_ref(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> Iterator[Change]:
    """`$ref` is not resolved, so any change of target counts, even a removal."""
    old_ref, new_ref = old.get("$ref"), new.get("$ref")
    if old_ref == new_ref:
        return
    if old_ref is None:
        en, zh = f"$ref {_show(new_ref)} was added", f"新增 $ref {_show(new_ref)}"
    elif new_ref is None:
        en, zh = f"$ref {_show(old_ref)} was removed", f"删除了 $ref {_show(old_ref)}"
    else:
        en = f"$ref changed from {_show(old_ref)} to {_show(new_ref)}"
        zh = f"$ref 由 {_show(old_ref)} 改为 {_show(new_ref)}"
    yield _change(ChangeKind.REF_CHANGED, at, en, zh)


def _check_definitions(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> Iterator[Change]:
    """Definitions present on both sides, by name (`definitions` is the pre-2019 spelling)."""
    for keyword in ("$defs", "definitions"):
        old_definitions: Mapping[str, Any] = old.get(keyword, {})
        for name, new_definition in new.get(keyword, {}).items():
            if name in old_definitions:
                where = _child(at, keyword, name)
                yield from _compare(old_definitions[name], new_definition, where)


# --- combinators ----------------------------------------------------------------------------------


def _check_all_of(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> Iterator[Change]:
    """A conjunct compares with the old one at its index; an added conjunct with `true`."""
    old_branches = old.get("allOf", [])
    for index, new_branch in enumerate(new.get("allOf", [])):
        old_branch = old_branches[index] if index < len(old_branches) else True
        yield from _compare(old_branch, new_branch, _child(at, "allOf", index))


def _check_alternatives(
    old: Mapping[str, Any], new: Mapping[str, Any], at: str
) -> Iterator[Change]:
    """`anyOf`/`oneOf` by index: each alternative must not narrow its predecessor.

    A missing `anyOf`/`oneOf` in the old schema acts as a single `true` alternative; one missing
    in the new schema constrains nothing. A removed alternative is a `false` one. `oneOf` also
    fails when a document matches two alternatives, so an added or widened alternative of a
    `oneOf` that has several is reported as well.
    """
    for keyword in ("anyOf", "oneOf"):
        if keyword not in new:
            continue
        old_branches: Sequence[Schema] = old.get(keyword, [True])
        new_branches: Sequence[Schema] = new[keyword]
        exclusive = keyword == "oneOf" and len(new_branches) > 1
        for index, new_branch in enumerate(new_branches):
            where = _child(at, keyword, index)
            if index >= len(old_branches):
                if exclusive:
                    yield _overlap_risk(keyword, index, where, "added")
                continue
            yield from _compare(old_branches[index], new_branch, where)
            if exclusive and any(True for _ in _compare(new_branch, old_branches[index], where)):
                yield _overlap_risk(keyword, index, where, "widened")
        for index in range(len(new_branches), len(old_branches)):
            if old_branches[index] is not False:
                yield _change(
                    ChangeKind.SCHEMA_CLOSED,
                    _child(at, keyword, index),
                    f"{keyword} alternative {index} was removed",
                    f"{keyword} 的第 {index} 个分支被删除",
                )


def _overlap_risk(keyword: str, index: int, at: str, how: Literal["added", "widened"]) -> Change:
    verb = "新增" if how == "added" else "放宽"
    return _change(
        ChangeKind.KEYWORD_CHANGED,
        at,
        f"{keyword} alternative {index} was {how}: a document may now match two alternatives",
        f"{keyword} 的第 {index} 个分支被{verb}：文档可能同时匹配两个分支",
    )


# --- everything else ------------------------------------------------------------------------------

_UNANALYSED = (
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "contains",
    "minContains",
    "maxContains",
    "additionalItems",
    "$dynamicRef",
)
"""Validation keywords whose effect is not analysed: adding or changing one counts as breaking.

Removing one only widens, except `patternProperties`, whose names then fall to
`additionalProperties`.
"""


def _check_unanalysed(old: Mapping[str, Any], new: Mapping[str, Any], at: str) -> Iterator[Change]:
    for keyword in _UNANALYSED:
        if keyword in new:
            if keyword in old and _json_key(old[keyword]) == _json_key(new[keyword]):
                continue
            how_en, how_zh = ("changed", "修改") if keyword in old else ("added", "新增")
        elif keyword == "patternProperties" and keyword in old:
            how_en, how_zh = "removed", "删除"
        else:
            continue
        yield _change(
            ChangeKind.KEYWORD_CHANGED,
            at,
            f"{keyword} was {how_en}; its effect is not analysed, so it counts as breaking",
            f"{keyword} 被{how_zh}；未做语义分析，按不兼容处理",
        )


_NODE_CHECKS: tuple[NodeCheck, ...] = (
    _check_type,
    _check_enum,
    _check_bounds,
    _check_multiple_of,
    _check_string_rules,
    _check_unique_items,
    _check_closed_content,
    _check_required,
    _check_ref,
    _check_unanalysed,
    _check_properties,
    _check_property_maps,
    _check_items,
    _check_definitions,
    _check_all_of,
    _check_alternatives,
)
