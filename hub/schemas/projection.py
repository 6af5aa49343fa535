"""Department views of a record: the fields a data-sharing agreement allows, and nothing else.

An agreement lists the fields a department may receive as RFC 6901 JSON pointers into the
record (`/holder/name`, `/permit`, `/holder/a~1b` for a property named `a/b`). A pointer to an
object allows its whole subtree; arrays are allowed only whole (an index names a position, not
a field, and positions shift between records).

Three steps, at two times:

- When an agreement is registered, `missing_fields` tells which of its pointers the record's
  schema does not declare, so an agreement cannot promise a field no record will have, nor
  hide a typo (`/holder/nmae` would silently share nothing).
- When an agreement or a schema version changes, `unkept_required` tells which fields the
  schema requires that the projection would drop: a record projected by that agreement could
  not be valid, and the registry refuses the change rather than widen the agreement.
- For every record sent, a `Projection` built once per agreement copies the allowed fields. It
  is on the path of every published record, so the pointers are parsed once into a tree and
  `apply` only walks that tree with dict look-ups: no parsing, no schema, per record.

A projection never adds or changes a value: it leaves fields out. What it keeps besides the
agreed fields is given (`always`, the fixed envelope of `hub.schemas.domain.ENVELOPE`), never
taken from a schema: a schema cannot widen what a department receives.

This module is pure: no FastAPI, no SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeAlias
from urllib.parse import unquote, urldefrag

Resolve: TypeAlias = Callable[[str], Mapping[str, Any] | None]
"""The schema registered at a URI (without fragment), e.g. urn:permit-hub:schema:x:1; None if
unknown."""

Tree: TypeAlias = dict[str, "Tree | None"]
"""Compiled pointers: each key an allowed property; None allows its whole value, a tree only
the properties in it."""

WHOLE: Final = None
_BAD_ESCAPE: Final = re.compile("~(?![01])")


def parse_pointer(pointer: str) -> tuple[str, ...] | None:
    """The reference tokens of an RFC 6901 pointer (`/a~1b/c` -> ("a/b", "c")), or None if it
    is malformed: not starting with "/", or "~" not followed by 0 or 1.

    The empty pointer (the whole record) is treated as malformed too: an agreement names fields,
    and "everything" is not a field.
    """
    if not pointer.startswith("/"):
        return None
    tokens = []
    for token in pointer[1:].split("/"):
        if "~" in token:
            if _BAD_ESCAPE.search(token):
                return None
            token = token.replace("~1", "/").replace("~0", "~")
        tokens.append(token)
    return tuple(tokens)


# --- checking an agreement against a schema ----------------------------------------------------


def missing_fields(
    schema: Mapping[str, Any], pointers: Sequence[str], resolve: Resolve | None = None
) -> list[str]:
    """The pointers `schema` does not declare, in the order given, each once.

    A pointer is declared when each of its tokens is a key of `properties` of the subschema
    reached so far. To find `properties` the walk follows `$ref` (local `#/...` fragments in
    the document that holds the reference; `urn:permit-hub:schema:...` and other URIs through
    `resolve`, then their fragment) and looks into every `allOf` branch, since all of those
    apply to the same object. It does not look into `anyOf`/`oneOf`/`if` branches: a field
    declared in only one alternative may be absent from every record of the other, and
    `patternProperties`/`additionalProperties` declare no name. Malformed pointers (see
    `parse_pointer`) are missing.
    """
    missing: list[str] = []
    for pointer in pointers:
        tokens = parse_pointer(pointer)
        if (tokens is None or not _declares(schema, tokens, resolve)) and pointer not in missing:
            missing.append(pointer)
    return missing


_Node: TypeAlias = tuple[Any, Mapping[str, Any]]
"""A subschema and the document it is in (where its local `#/...` references resolve)."""


def declared_fields(
    schema: Mapping[str, Any], resolve: Resolve | None = None, depth: int = 6
) -> list[str]:
    """Every pointer `schema` declares, as `missing_fields` reads declarations (properties
    through `$ref` and `allOf`), parents before children in the schema's order: the fields an
    agreement may choose from. `depth` ends a schema that refers to itself."""
    found: list[str] = []

    def walk(at: str, nodes: list[_Node], level: int) -> None:
        inside: dict[str, list[_Node]] = {}
        for subschema, document in _applying(nodes, resolve):
            properties = subschema.get("properties")
            for name, child in properties.items() if isinstance(properties, Mapping) else ():
                inside.setdefault(name, []).append((child, document))
        for name, child in inside.items():
            found.append(f"{at}/{_escape(name)}")
            if level < depth:
                walk(found[-1], child, level + 1)

    walk("", [(schema, schema)], 1)
    return found


def _declares(schema: Mapping[str, Any], tokens: tuple[str, ...], resolve: Resolve | None) -> bool:
    nodes: list[_Node] = [(schema, schema)]
    for token in tokens:
        found: list[_Node] = []
        for subschema, document in _applying(nodes, resolve):
            properties = subschema.get("properties")
            if isinstance(properties, Mapping) and token in properties:
                found.append((properties[token], document))
        if not found:
            return False
        nodes = found
    return True


def _applying(nodes: list[_Node], resolve: Resolve | None) -> list[tuple[Mapping[str, Any], Any]]:
    """The object subschemas that apply where `nodes` apply: themselves, what their `$ref`
    points to and their `allOf` branches, transitively; each once (cycles end)."""
    result: list[tuple[Mapping[str, Any], Any]] = []
    seen: set[int] = set()
    stack = list(nodes)
    while stack:
        subschema, document = stack.pop()
        if not isinstance(subschema, Mapping) or id(subschema) in seen:
            continue
        seen.add(id(subschema))
        result.append((subschema, document))
        branches = subschema.get("allOf")
        if isinstance(branches, list):
            stack.extend((branch, document) for branch in branches)
        ref = subschema.get("$ref")
        if isinstance(ref, str):
            target = _follow(ref, document, resolve)
            if target is not None:
                stack.append(target)
    return result


def _follow(ref: str, document: Mapping[str, Any], resolve: Resolve | None) -> _Node | None:
    uri, fragment = urldefrag(ref)
    if uri:
        if resolve is None:
            return None
        found = resolve(uri)
        if found is None:
            return None
        document = found
    if not fragment:
        return document, document
    if not fragment.startswith("/"):
        return None  # a named anchor: not followed, so its properties count as undeclared
    tokens = parse_pointer(unquote(fragment))
    if tokens is None:
        return None
    node: Any = document
    for token in tokens:
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node, document


def unkept_required(
    schema: Mapping[str, Any], kept: Sequence[str], resolve: Resolve | None = None
) -> list[str]:
    """Pointers to the properties `schema` requires that a projection keeping `kept` drops,
    each once, parents before children.

    Checked where the projection keeps an object only in part: at the root, and inside each
    property some pointer goes through (`/holder` for `/holder/name`); an object kept whole
    keeps whatever it requires. `required` is gathered as `missing_fields` gathers
    `properties`: through `$ref` and `allOf`, which apply to every record, not `anyOf`/`oneOf`/
    `if` branches, which may not. So an empty answer means no `required` of those drops a
    field; the projected record is still validated before it is sent. ValueError for a
    malformed pointer, as `Projection`.
    """
    unkept: list[str] = []
    pending: list[tuple[str, list[_Node], Tree]] = [("", [(schema, schema)], _tree(kept))]
    while pending:
        at, nodes, tree = pending.pop()
        applying = _applying(nodes, resolve)
        for subschema, _document in applying:
            required = subschema.get("required")
            for name in required if isinstance(required, list) else ():
                pointer = f"{at}/{_escape(name)}" if isinstance(name, str) else None
                if pointer is not None and name not in tree and pointer not in unkept:
                    unkept.append(pointer)
        for name, subtree in reversed(tree.items()):
            if subtree is WHOLE:
                continue
            inside = [
                (subschema["properties"][name], document)
                for subschema, document in applying
                if isinstance(subschema.get("properties"), Mapping)
                and name in subschema["properties"]
            ]
            pending.append((f"{at}/{_escape(name)}", inside, subtree))
    return unkept


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


# --- projecting records -----------------------------------------------------------------------


class Projection:
    """The allowed fields of records, per one agreement. Build once, apply to every record.

    Thread-safe: `apply` only reads the compiled tree.
    """

    __slots__ = ("pointers", "tree")

    def __init__(self, pointers: Sequence[str], always: Sequence[str] = ()) -> None:
        """Compile `pointers` and `always` (fields every projected record carries whatever the
        agreement says, e.g. the envelope without which a record is invalid) into one tree.

        A pointer that is a prefix of another allows the whole subtree, so the longer one adds
        nothing. ValueError for a malformed pointer: check agreements with `missing_fields`
        first.
        """
        self.pointers = tuple(dict.fromkeys((*always, *pointers)))
        self.tree = _tree(self.pointers)

    def apply(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A new dict with only the allowed fields of `record`.

        Absent fields stay absent; a pointer through a value that is not an object (null, a
        string, an array) is ignored there. Every object on the way to an allowed field is a
        new dict, so the result can be changed without changing `record`; values allowed whole
        are the record's own objects, not copies (they are only ever serialised).
        """
        return _project(record, self.tree)


def _tree(pointers: Sequence[str]) -> Tree:
    tree: Tree = {}
    for pointer in pointers:
        tokens = parse_pointer(pointer)
        if tokens is None:
            raise ValueError(f"not a JSON pointer to a field: {pointer!r}")
        _insert(tree, tokens)
    return tree


def _insert(tree: Tree, tokens: tuple[str, ...]) -> None:
    node = tree
    for token in tokens[:-1]:
        if token in node:
            child = node[token]
            if child is WHOLE:
                return  # an ancestor is already allowed whole
            node = child
        else:
            child = {}
            node[token] = child
            node = child
    node[tokens[-1]] = WHOLE


def _project(record: Mapping[str, Any], tree: Tree) -> dict[str, Any]:
    """The hot loop: walk the tree (the agreement's few fields), not the record."""
    projected: dict[str, Any] = {}
    for name, subtree in tree.items():
        if name in record:
            value = record[name]
            if subtree is None:
                projected[name] = value
            elif type(value) is dict or isinstance(value, Mapping):
                projected[name] = _project(value, subtree)
    return projected
