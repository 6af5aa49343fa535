"""Validating documents against registered schema versions: schema checks, compiled validators
and issues that never repeat what a document says.

Every registered version is named by a URI, `urn:permit-hub:schema:<subject>:<version>`
(`schema_uri`), and a schema may `$ref` another registered version by that URI, optionally with
a `#/...` fragment. Nothing else can be referenced: the hub never reaches the network or the
file system to validate, so a `$ref` to `https://...` or `file:...` is refused when the schema is
registered (`check_schema`), not discovered when a document arrives.

Validation (`Validators`) compiles each (subject, version) once and caches it: versions are
immutable, so a compiled schema never goes stale. A compiled schema is jsonschema's
`Draft202012Validator` (its pattern keywords searching with RE2, `hub.schemas.patterns`) over
the stored schema with `$id` set to its URI, the shared registry and `format_checker()`, and in
front of it a predicate compiled from the same schema into plain
Python closures. The reasons, measured by bench/schemas.py:

- `jsonschema.validate(document, schema)` checks the schema against the meta-schema and builds
  a validator on every call: under 200 holder records a second on one core.
- A reused `Draft202012Validator` skips both, but still builds a new validator object for every
  subschema it descends into (`evolve`, a referencing resource, a resolver): about 8,000 holder
  records a second, under the 30,000 the hub needs when it publishes records.
- The closures do the same keyword checks with dict look-ups and `isinstance`, and stop at the
  first failure: about 60,000 holder records a second, of which the format checks (citizen ID,
  dates, UUID) are half. Most documents are valid, and "valid" is all most callers need; only
  when the predicate says "invalid" does jsonschema walk the document again to report every
  issue (about 6,000 a second). The predicate covers every 2020-12 assertion and applicator
  except `unevaluatedProperties`, `unevaluatedItems` and `$dynamicRef`, in schemas without
  embedded resources (`$id` below the root); a schema outside that is validated by jsonschema
  alone (correct, only slower: `CompiledSchema.accelerated` says which).
  tests/schemas/test_validation.py holds the two to the same verdicts.

Issues (`Issue`) name where and what, in English and Chinese, built only from the schema side:
the keyword, the schema's value for it, property names. jsonschema's own messages repeat the
offending value ("'1101...' is not a 'citizen-id'"), and a document may carry a citizen ID, so
they are never used. Property names are the one thing taken from a document, for an unexpected
property: naming it is the only useful message.

This module is pure: no FastAPI, no SQL. The registry's storage is reached through `Fetch`.
"""

from __future__ import annotations

import ast
import copy
import itertools
import json
import numbers
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, TypeAlias
from urllib.parse import urldefrag, urljoin

from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped]
from jsonschema.validators import extend  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT202012

from hub.schemas import patterns
from hub.schemas.formats import format_checker

SCHEMA_URI_PREFIX: Final = "urn:permit-hub:schema:"
DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
"""The only `$schema` the registry accepts: every version is compiled as Draft 2020-12."""

_SUBJECT: Final = re.compile(r"[^\s:#?/\\]+")
"""A subject inside a URI: anything that cannot end or split it (no `:`, `#`, `?`, `/`)."""
_VERSION: Final = re.compile(r"[1-9][0-9]*")
"""Canonical decimal, so each version has exactly one URI (`01` would alias `1`)."""
_CANDIDATE_URI: Final = "urn:permit-hub:candidate"
"""Where `check_schema` places a schema not yet registered; refs to it use `#` fragments."""

Fetch: TypeAlias = Callable[[str, int], Mapping[str, Any] | None]
"""The registry's loader of a stored schema by (subject, version); None if there is none."""

Check: TypeAlias = Callable[[Any], bool]


def schema_uri(subject: str, version: int) -> str:
    """`urn:permit-hub:schema:<subject>:<version>`; ValueError for a subject containing `:`,
    `#`, `?`, `/`, `\\` or whitespace, or a version below 1."""
    if (
        _SUBJECT.fullmatch(subject) is None
        or isinstance(version, bool)
        or not isinstance(version, int)
        or version < 1
    ):
        raise ValueError(f"no schema URI for subject {subject!r} version {version!r}")
    return f"{SCHEMA_URI_PREFIX}{subject}:{version}"


def parse_schema_uri(uri: str) -> tuple[str, int] | None:
    """(subject, version) of a URI `schema_uri` would produce, else None (a fragment included:
    defragment first)."""
    if not uri.startswith(SCHEMA_URI_PREFIX):
        return None
    subject, colon, version = uri[len(SCHEMA_URI_PREFIX) :].rpartition(":")
    if not colon or _SUBJECT.fullmatch(subject) is None or _VERSION.fullmatch(version) is None:
        return None
    return subject, int(version)


@dataclass(frozen=True)
class Issue:
    """One reason a document (or a schema) is refused.

    `pointer` is an RFC 6901 JSON pointer into the document, or into the schema for a schema's
    own problems. For a missing property (`required`, `dependentRequired`) and for an unexpected
    one (`additionalProperties`, `unevaluatedProperties`) it points at that property, i.e. the
    object's pointer plus `/name`, although a missing property is not there: the caller can
    then attach the message to the field a form shows, and the keyword says which case it is.
    `en` and `zh` never contain a value from the document.

    One limit comes from jsonschema: a document refused by a `false` subschema (e.g.
    `"properties": {"x": false}`) is reported at the enclosing object with keyword "false",
    because jsonschema does not record the path below it.
    """

    pointer: str
    keyword: str
    en: str
    zh: str


# --- checking a schema before it is registered ------------------------------------------------


def check_schema(schema: Any, fetch: Fetch, *, uri: str = _CANDIDATE_URI) -> list[Issue]:
    """Every reason `schema` cannot be registered, with pointers into it; empty if it can.

    - It must be a JSON object, valid under the Draft 2020-12 meta-schema, and any `$schema`
      in it must be 2020-12 (`DIALECT`): the registry compiles every version as 2020-12, so a
      draft-07 schema would silently mean something else. A boolean is a schema too, but not a
      version: `true` would publish anything and `false` nothing, and what the hub builds from a
      version (projections, compiled validators) reads an object.
    - Every `pattern` and `patternProperties` name must be one RE2 runs within its limits
      (`hub.schemas.patterns`): documents are matched by RE2, never by a backtracking engine.
    - Every `$ref` and `$dynamicRef` must resolve: a fragment (`#/$defs/x`, `#anchor`) against
      the schema itself, `urn:permit-hub:schema:<subject>:<version>[#fragment]` against the
      version `fetch` returns. Any other URI (http, https, file, a relative path) is refused
      without being fetched. References are checked only once the schema is well formed.

    `uri` is where the schema will be registered, if known; the schema's own `$id`, if any, is
    replaced by it, as it is when the version is compiled. Each referenced version is fetched
    at most once.
    """
    if not isinstance(schema, dict):
        return [
            Issue("", "type", "a schema version must be a JSON object", "模式版本应为 JSON 对象")
        ]
    issues = _issues(_META_VALIDATOR.iter_errors(schema)) + _pattern_issues(schema, uri)
    for pointer, node, base in _subschemas(schema, uri):
        node_id = node.get("$id")
        if isinstance(node_id, str) and _join(base, node_id) is None:
            issues.append(
                Issue(
                    f"{pointer}/$id",
                    "$id",
                    f"{node_id} is not a valid URI reference",
                    f"{node_id} 不是有效的 URI 引用",
                )
            )
        elif pointer and isinstance(node_id, str) and parse_schema_uri(base) is not None:
            issues.append(
                Issue(
                    f"{pointer}/$id",
                    "$id",
                    f"a subschema cannot take the URI of a registered schema ({base})",
                    f"子模式不得使用已注册模式的 URI（{base}）",
                )
            )
        dialect = node.get("$schema", DIALECT)
        if dialect != DIALECT:
            issues.append(
                Issue(
                    f"{pointer}/$schema",
                    "$schema",
                    f"only JSON Schema 2020-12 ({DIALECT}) is supported",
                    f"仅支持 JSON Schema 2020-12（{DIALECT}）",
                )
            )
    if not issues:
        sources = _Sources(fetch)
        document = _with_id(schema, uri)
        registry: Registry[Any] = (
            Registry(retrieve=sources.retrieve)  # type: ignore[call-arg]
            .with_resource(uri, DRAFT202012.create_resource(document))
            .crawl()
        )
        issues, _ = _reference_issues(document, uri, sources, registry)
    return _sorted(issues)


def _meta_formats() -> FormatChecker:
    """The meta-schema's format checker without "regex", which compiles with Python's `re`:
    `_pattern_issues` checks patterns with the engine that will run them."""
    checker = FormatChecker(formats=())
    for name, (function, raises) in Draft202012Validator.FORMAT_CHECKER.checkers.items():
        if name != "regex":
            checker.checks(name, raises)(function)
    return checker


_META_VALIDATOR: Final = Draft202012Validator(
    Draft202012Validator.META_SCHEMA,
    format_checker=_meta_formats(),
    registry=Registry(),  # the meta-schemas jsonschema ships, and nothing fetched
)
"""What `Draft202012Validator.check_schema` uses, built once, reporting every error."""

DocumentValidator: Final = extend(Draft202012Validator, patterns.KEYWORDS)
"""Draft 2020-12 with `pattern`, `patternProperties`, `additionalProperties` and
`unevaluatedProperties` matching by RE2: what validates documents when the predicate does not."""


def _pattern_issues(schema: dict[str, Any], uri: str) -> list[Issue]:
    """An issue at each `pattern` (a string) and `patternProperties` name RE2 refuses."""
    issues = []
    for pointer, node, _base in _subschemas(schema, uri):
        found = []
        if isinstance(node.get("pattern"), str):
            found.append((f"{pointer}/pattern", "pattern", node["pattern"]))
        if isinstance(node.get("patternProperties"), dict):
            found.extend(
                (f"{pointer}/patternProperties/{_escape(name)}", "patternProperties", name)
                for name in node["patternProperties"]
            )
        for where, keyword, pattern in found:
            try:
                patterns.compile_pattern(pattern)
            except patterns.PatternRefused as refused:
                issues.append(Issue(where, keyword, refused.en, refused.zh))
    return issues


def _with_id(schema: Mapping[str, Any], uri: str) -> dict[str, Any]:
    """A shallow copy with `$id` set to the registry's URI, whatever `$id` it carried."""
    return {**schema, "$id": uri}


_IN_VALUE: Final = (
    "additionalProperties",
    "contains",
    "contentSchema",
    "else",
    "if",
    "items",
    "not",
    "propertyNames",
    "then",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_IN_ARRAY: Final = ("allOf", "anyOf", "oneOf", "prefixItems")
_IN_MAP: Final = ("$defs", "definitions", "dependentSchemas", "patternProperties", "properties")
"""Where 2020-12 keeps subschemas: the same keywords `referencing.jsonschema.DRAFT202012`
crawls, so a `$ref` is found exactly where jsonschema would follow one."""


def _join(base: str, reference: str) -> str | None:
    """`urljoin`, or None for what it cannot parse (e.g. `http://[`, an unclosed IPv6 host)."""
    try:
        return urljoin(base, reference)
    except ValueError:
        return None


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _subschemas(schema: Any, base: str) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(pointer, subschema, base URI) for every object subschema, parents first.

    The base URI changes where a subschema has its own `$id`, as jsonschema's resolver does
    when it descends (`urljoin` of the parent's base and the `$id`). Iterative, so a deeply
    nested schema cannot exhaust the stack here.
    """
    stack: list[tuple[str, Any, str]] = [("", schema, base)]
    while stack:
        pointer, node, base = stack.pop()
        if not isinstance(node, dict):
            continue
        node_id = node.get("$id")
        if isinstance(node_id, str):
            base = _join(base, node_id.rstrip("#")) or base  # `check_schema` reports a bad one
        yield pointer, node, base
        children: list[tuple[str, Any, str]] = []
        for keyword in _IN_VALUE:
            if keyword in node:
                children.append((f"{pointer}/{keyword}", node[keyword], base))
        for keyword in _IN_ARRAY:
            value = node.get(keyword)
            if isinstance(value, list):
                children.extend(
                    (f"{pointer}/{keyword}/{index}", item, base) for index, item in enumerate(value)
                )
        for keyword in _IN_MAP:
            value = node.get(keyword)
            if isinstance(value, dict):
                children.extend(
                    (f"{pointer}/{keyword}/{_escape(name)}", item, base)
                    for name, item in value.items()
                )
        stack.extend(reversed(children))


def _reference_issues(
    document: dict[str, Any], uri: str, sources: _Sources, registry: Registry[Any]
) -> tuple[list[Issue], list[str]]:
    """Issues for each `$ref`/`$dynamicRef` of `document` (registered as `uri` in `registry`)
    that does not resolve, and the registered versions it references.

    A reference is a fragment (`#/...`, `#anchor`), resolved where it stands (in the enclosing
    resource), or a registered version's URI. Nothing else, not even the `$id` of a resource
    embedded in the document: a `$ref` to `https://...` must not depend on a subschema
    claiming that URI, and reads as an external reference to anyone reviewing the schema.
    """
    issues: list[Issue] = []
    referenced: list[str] = []
    for pointer, node, base in _subschemas(document, uri):
        for keyword in ("$ref", "$dynamicRef"):
            ref = node.get(keyword)
            if not isinstance(ref, str):
                continue
            joined = base if ref.startswith("#") else _join(base, ref)
            target = urldefrag(joined)[0] if joined is not None else None
            problem: tuple[str, str] | None = None
            if target is None:
                problem = (f"{ref} is not a valid URI reference", f"{ref} 不是有效的 URI 引用")
            elif not ref.startswith("#") and target != uri:
                if parse_schema_uri(target) is None:
                    problem = (
                        "only registered schemas may be referenced"
                        f" ({SCHEMA_URI_PREFIX}<subject>:<version>), not {ref}",
                        f"只能引用已注册的模式（{SCHEMA_URI_PREFIX}<主题>:<版本>），不能引用 {ref}",
                    )
                elif sources.resource(target) is None:
                    problem = (
                        f"{target} is not a registered schema version",
                        f"{target} 不是已注册的模式版本",
                    )
                else:
                    referenced.append(target)
            if problem is None:
                try:
                    contents = registry.resolver(base).lookup(ref).contents
                except (Unresolvable, LookupError, ValueError, TypeError):
                    problem = (f"{ref} does not resolve", f"{ref} 指向的位置不存在")
                else:
                    if not isinstance(contents, dict | bool):
                        problem = (f"{ref} is not a schema", f"{ref} 指向的不是模式")
            if problem is not None:
                issues.append(Issue(f"{pointer}/{keyword}", keyword, *problem))
    return issues, referenced


class _Sources:
    """Registered schemas loaded through `fetch`, each at most once, as 2020-12 resources with
    `$id` set to their URI. Unknown versions are not remembered: they may be registered later.
    """

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._loaded: dict[str, Resource[Any]] = {}
        self._lock = threading.Lock()

    def resource(self, uri: str) -> Resource[Any] | None:
        found = self._loaded.get(uri)
        if found is not None:
            return found
        parsed = parse_schema_uri(uri)
        if parsed is None:
            return None
        with self._lock:
            found = self._loaded.get(uri)
            if found is None:
                schema = self._fetch(*parsed)
                if schema is None:
                    return None
                # a copy: the cache must not change if the caller's object does
                found = DRAFT202012.create_resource(_with_id(copy.deepcopy(schema), uri))
                self._loaded[uri] = found
        return found

    def retrieve(self, uri: str) -> Resource[Any]:
        """`referencing`'s retrieve hook: registered versions only, anything else unknown."""
        found = self.resource(uri)
        if found is None:
            raise NoSuchResource(uri)
        return found


# --- compiled validators -----------------------------------------------------------------------


class CompiledSchema:
    """One registered version, ready to validate documents; safe to share between threads.

    `errors` and `is_valid` always agree: `is_valid(document) == (errors(document) == [])`.
    """

    __slots__ = ("_check", "_validator", "accelerated", "schema", "subject", "uri", "version")

    def __init__(
        self,
        subject: str,
        version: int,
        schema: dict[str, Any],
        validator: Any,
        check: Check | None,
    ) -> None:
        self.subject = subject
        self.version = version
        self.uri: str = schema["$id"]
        self.schema = schema
        """The stored schema with `$id` set to `uri`; do not modify it."""
        self.accelerated = check is not None
        """Whether the compiled predicate runs first (see the module docstring)."""
        self._validator = validator
        self._check: Check = check if check is not None else validator.is_valid

    def is_valid(self, document: Any) -> bool:
        return self._check(document)

    def errors(self, document: Any) -> list[Issue]:
        """Every issue, sorted by pointer; empty if the document is valid."""
        if self._check(document):
            return []
        issues = _sorted(_issues(self._validator.iter_errors(document)))
        if not issues:
            raise RuntimeError(
                f"{self.uri}: the compiled predicate refused a document jsonschema accepts"
            )
        return issues


class Validators:
    """Compiled validators by (subject, version), each compiled once.

    A version is compiled on first use with every version it references (transitively)
    fetched, once each, into one registry shared by all validators, so validating never
    fetches. `get` reads the cache without a lock; compiling takes one, so two threads asking
    for the same new version compile it once.
    """

    def __init__(self, fetch: Fetch) -> None:
        self._sources = _Sources(fetch)
        self._registry: Registry[Any] = Registry(retrieve=self._sources.retrieve)  # type: ignore[call-arg]
        self._compiled: dict[tuple[str, int], CompiledSchema] = {}
        self._lock = threading.Lock()

    def get(self, subject: str, version: int) -> CompiledSchema:
        """The compiled version, the same object every time.

        LookupError if the version is not registered, or references a version that is not or a
        location that does not exist (which `check_schema` refuses at registration).
        """
        key = (subject, version)
        compiled = self._compiled.get(key)
        if compiled is not None:
            return compiled
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                compiled = self._compile(subject, version)
                self._compiled[key] = compiled
        return compiled

    def _compile(self, subject: str, version: int) -> CompiledSchema:
        try:
            uri = schema_uri(subject, version)
        except ValueError:
            raise LookupError(f"no schema {subject!r} version {version!r}") from None
        root = self._sources.resource(uri)
        if root is None:
            raise LookupError(f"schema {subject} version {version} is not registered")
        pending, seen = [uri], set[str]()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            resource = self._sources.resource(current)
            if resource is None:
                raise LookupError(f"{current}, referenced from {uri}, is not registered")
            registry = self._registry.with_resource(current, resource).crawl()
            issues, referenced = _reference_issues(
                resource.contents, current, self._sources, registry
            )
            issues += _pattern_issues(resource.contents, current)  # stored before RE2 checked
            if issues:
                raise LookupError(f"{current}{issues[0].pointer}: {issues[0].en}")
            pending.extend(referenced)
        resources = [(each, self._sources.retrieve(each)) for each in sorted(seen)]
        self._registry = self._registry.with_resources(resources).crawl()
        validator = DocumentValidator(
            root.contents, registry=self._registry, format_checker=format_checker()
        )
        check = _Compiler(self._registry, validator.format_checker).compile_root(root.contents, uri)
        return CompiledSchema(subject, version, root.contents, validator, check)


# --- the compiled predicate ------------------------------------------------------------------

_SUPPORTED: Final = frozenset(
    {
        "$ref",
        "additionalProperties",
        "allOf",
        "anyOf",
        "const",
        "contains",
        "dependentRequired",
        "dependentSchemas",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "format",
        "if",
        "items",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "multipleOf",
        "not",
        "oneOf",
        "pattern",
        "patternProperties",
        "prefixItems",
        "properties",
        "propertyNames",
        "required",
        "type",
        "uniqueItems",
    }
)
_UNSUPPORTED: Final = frozenset(Draft202012Validator.VALIDATORS) - _SUPPORTED
"""jsonschema's keywords the predicate does not compile: `$dynamicRef` and the two
`unevaluated*`, which depend on what sibling and referenced subschemas evaluated."""


class _Unsupported(Exception):
    """The schema uses something the predicate does not compile; jsonschema alone validates."""


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def _is_number(value: Any) -> bool:
    kind = type(value)
    if kind is int or kind is float:
        return True
    return kind is not bool and isinstance(value, numbers.Number)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPES: Final[dict[str, Check]] = {
    "null": lambda value: value is None,
    "boolean": lambda value: isinstance(value, bool),
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "number": _is_number,
    "integer": _is_integer,
}
"""jsonschema's 2020-12 type checker, case by case: `object` is a dict and `array` a list (not
any Mapping or Sequence), booleans are not numbers, and 1.0 is an integer."""

_UNIQUE_TRUE: Final = object()
_UNIQUE_FALSE: Final = object()


def _unbool(value: Any) -> Any:
    """jsonschema's `_utils.unbool`: keeps True apart from 1 and False from 0."""
    if value is True:
        return _UNIQUE_TRUE
    if value is False:
        return _UNIQUE_FALSE
    return value


def _equal(one: Any, two: Any) -> bool:
    """jsonschema's `_utils.equal` (enum, const, uniqueItems): JSON equality, where 1 == 1.0
    but True != 1, element by element."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(
            key in two and _equal(value, two[key]) for key, value in one.items()
        )
    return bool(_unbool(one) == _unbool(two))


def _unique(items: list[Any]) -> bool:
    """jsonschema's `_utils.uniq`, including its sort-first strategy."""
    try:
        ordered = sorted(_unbool(item) for item in items)
        for one, two in zip(ordered, itertools.islice(ordered, 1, None), strict=False):
            if _equal(one, two):
                return False
    except (NotImplementedError, TypeError):
        seen: list[Any] = []
        for item in items:
            item = _unbool(item)
            if any(_equal(other, item) for other in seen):
                return False
            seen.append(item)
    return True


def _every(checks: Sequence[Check]) -> Check:
    """The conjunction, without a loop for the common short cases."""
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)
    if len(checks) == 3:
        first, second, third = checks
        return lambda value: first(value) and second(value) and third(value)
    every = tuple(checks)

    def check(value: Any) -> bool:
        for each in every:  # noqa: SIM110 (a plain loop: all() over a generator is slower)
            if not each(value):
                return False
        return True

    return check


def _some(options: tuple[Check, ...]) -> Check:
    return lambda value: any(option(value) for option in options)


def _exactly_one(options: tuple[Check, ...]) -> Check:
    return lambda value: sum(1 for option in options if option(value)) == 1


def _number(value: Any) -> int | float:
    if not _is_number(value) or not isinstance(value, int | float):
        raise _Unsupported
    return value


def _count(value: Any) -> int | float:
    """A length bound (minLength, maxItems...): a non-negative integer, 3.0 included."""
    if not _is_integer(value) or value < 0:
        raise _Unsupported
    return value  # type: ignore[no-any-return]


class _Compiler:
    """Turns one schema (and what it references) into a `Check`, mirroring jsonschema's
    keyword functions (jsonschema/_keywords.py) for validity: same types, same equality, same
    regular expressions (searched by RE2, `patterns.KEYWORDS`), same format checker.

    Subschemas are compiled once each, keyed by identity and base URI, so shared `$defs` are
    shared closures and recursive references close into a cycle through a cell.
    """

    def __init__(self, registry: Registry[Any], checker: Any) -> None:
        self._registry = registry
        self._formats: Mapping[str, tuple[Callable[[Any], Any], Any]] = checker.checkers
        self._compiled: dict[tuple[int, str], Check] = {}
        self._documents: set[str] = set()
        self._keep: list[Any] = []  # compiled nodes stay alive, so their ids stay theirs

    def compile_root(self, document: dict[str, Any], uri: str) -> Check | None:
        try:
            return self._schema(document, uri)
        except _Unsupported:
            return None

    def _document(self, uri: str) -> None:
        """Refuse documents with embedded resources: below a nested `$id` the base URI is not
        the document's, and the predicate keeps one base per document."""
        if uri in self._documents:
            return
        self._documents.add(uri)
        try:
            document = self._registry.contents(uri)
        except LookupError:
            raise _Unsupported from None
        for pointer, node, _base in _subschemas(document, uri):
            if pointer and "$id" in node:
                raise _Unsupported

    def _schema(self, node: Any, base: str) -> Check:
        if node is True:
            return _always
        if node is False:
            return _never
        if not isinstance(node, dict):
            raise _Unsupported
        key = (id(node), base)
        found = self._compiled.get(key)
        if found is not None:
            return found
        cell: list[Check] = []
        self._compiled[key] = lambda value: cell[0](value)  # reached again while compiling
        self._keep.append(node)
        check = self._node(node, base)
        cell.append(check)
        self._compiled[key] = check
        return check

    def _node(self, node: dict[str, Any], base: str) -> Check:
        self._document(base)
        if not _UNSUPPORTED.isdisjoint(node):
            raise _Unsupported
        if node.get("$schema", DIALECT) != DIALECT or node.get("$id", base) != base:
            raise _Unsupported
        types = self._types(node)
        typed = types[0] if types is not None and len(types) == 1 else None
        checks: list[Check] = []
        if types is not None and typed not in ("object", "string"):
            checks.append(self._type(types))
        for build in (self._object, self._array, self._string, self._numeric):
            check = build(node, base, typed)
            if check is not None:
                checks.append(check)
        if "format" in node and typed != "string":  # a typed string checks it in `_string`
            checks.append(self._format(node["format"]))
        if "enum" in node:
            checks.append(self._enum(node["enum"]))
        if "const" in node:
            constant = node["const"]
            checks.append(lambda value: _equal(value, constant))
        checks.extend(self._applicators(node, base))
        return _every(checks)

    # -- keywords for any instance

    @staticmethod
    def _types(node: dict[str, Any]) -> list[str] | None:
        if "type" not in node:
            return None
        types = node["type"]
        types = [types] if isinstance(types, str) else types
        if not isinstance(types, list) or not types or not all(t in _TYPES for t in types):
            raise _Unsupported  # jsonschema raises UnknownType; the meta-schema refuses it
        return types

    @staticmethod
    def _type(types: list[str]) -> Check:
        if len(types) == 1:
            return _TYPES[types[0]]
        if len(types) == 2 and "null" in types:
            other = _TYPES[types[0] if types[1] == "null" else types[1]]
            return lambda value: value is None or other(value)
        tests = tuple(_TYPES[name] for name in types)
        return lambda value: any(test(value) for test in tests)

    def _format(self, name: Any) -> Check:
        if not isinstance(name, str):
            raise _Unsupported
        entry = self._formats.get(name)
        if entry is None:
            return _always  # an unchecked format is an annotation, as in jsonschema
        function, raises = entry

        def check(value: Any) -> bool:
            try:
                return bool(function(value))
            except raises:
                return False

        return check

    @staticmethod
    def _enum(values: Any) -> Check:
        if not isinstance(values, list):
            raise _Unsupported
        if all(isinstance(value, str) for value in values):
            allowed = frozenset(values)  # `equal` is plain == when either side is a string
            return lambda value: isinstance(value, str) and value in allowed
        options = tuple(values)
        return lambda value: any(_equal(option, value) for option in options)

    def _applicators(self, node: dict[str, Any], base: str) -> Iterator[Check]:
        for keyword in ("allOf", "anyOf", "oneOf"):
            if keyword not in node:
                continue
            branches = node[keyword]
            if not isinstance(branches, list) or not branches:
                raise _Unsupported
            compiled = tuple(self._schema(branch, base) for branch in branches)
            if keyword == "allOf":
                yield _every(compiled)
            elif keyword == "anyOf":
                yield _some(compiled)
            else:
                yield _exactly_one(compiled)
        if "not" in node:
            negated = self._schema(node["not"], base)
            yield lambda value: not negated(value)
        if "if" in node:
            condition = self._schema(node["if"], base)
            then = self._schema(node["then"], base) if "then" in node else _always
            otherwise = self._schema(node["else"], base) if "else" in node else _always
            yield lambda value: then(value) if condition(value) else otherwise(value)
        if "$ref" in node:
            yield self._reference(node["$ref"], base)

    def _reference(self, ref: Any, base: str) -> Check:
        if not isinstance(ref, str):
            raise _Unsupported
        try:
            resolved = self._registry.resolver(base).lookup(ref)
        except (Unresolvable, LookupError, ValueError, TypeError):
            raise _Unsupported from None
        target = base if ref.startswith("#") else urldefrag(urljoin(base, ref))[0]
        return self._schema(resolved.contents, target)

    # -- keywords for one type of instance; `typed` is the node's only type, if it has one

    def _object(self, node: dict[str, Any], base: str, typed: str | None) -> Check | None:
        properties = node.get("properties", {})
        by_pattern = node.get("patternProperties", {})
        required = node.get("required", [])
        dependent_required = node.get("dependentRequired", {})
        dependent_schemas = node.get("dependentSchemas", {})
        if not (
            isinstance(properties, dict)
            and isinstance(by_pattern, dict)
            and isinstance(required, list)
            and all(isinstance(name, str) for name in required)
            and isinstance(dependent_required, dict)
            and all(
                isinstance(names, list) and all(isinstance(name, str) for name in names)
                for names in dependent_required.values()
            )
            and isinstance(dependent_schemas, dict)
        ):
            raise _Unsupported
        closed = typed == "object"
        keywords = {
            "properties",
            "patternProperties",
            "additionalProperties",
            "required",
            "minProperties",
            "maxProperties",
            "dependentRequired",
            "dependentSchemas",
            "propertyNames",
        }
        if not closed and keywords.isdisjoint(node):
            return None
        declared = {name: self._schema(sub, base) for name, sub in properties.items()}
        needed = tuple(required)
        additional = (
            self._schema(node["additionalProperties"], base)
            if "additionalProperties" in node
            else None
        )
        simple = keywords.isdisjoint(
            node.keys() - {"properties", "required", "additionalProperties"}
        )
        if simple:
            get = declared.get
            if additional is _never:

                def closed_object(value: Any) -> bool:
                    if not isinstance(value, dict):
                        return not closed
                    for name in needed:
                        if name not in value:
                            return False
                    for name, item in value.items():
                        check = get(name)
                        if check is None or not check(item):
                            return False
                    return True

                return closed_object

            def open_object(value: Any) -> bool:
                if not isinstance(value, dict):
                    return not closed
                for name in needed:
                    if name not in value:
                        return False
                for name, item in value.items():
                    check = get(name)
                    if check is None:
                        if additional is not None and not additional(item):
                            return False
                    elif not check(item):
                        return False
                return True

            return open_object

        searches = tuple(
            (patterns.compile_pattern(pattern), self._schema(sub, base))
            for pattern, sub in by_pattern.items()
        )
        # additionalProperties skips names any pattern matches (as `patterns.matches_any`)
        skip = _some(tuple(search for search, _ in searches)) if searches else None
        names = self._schema(node["propertyNames"], base) if "propertyNames" in node else None
        fewest = _count(node["minProperties"]) if "minProperties" in node else 0
        most = _count(node["maxProperties"]) if "maxProperties" in node else float("inf")
        depends = tuple((name, tuple(names)) for name, names in dependent_required.items())
        subschemas = tuple(
            (name, self._schema(sub, base)) for name, sub in dependent_schemas.items()
        )

        def general_object(value: Any) -> bool:
            if not isinstance(value, dict):
                return not closed
            if not fewest <= len(value) <= most:
                return False
            for name in needed:
                if name not in value:
                    return False
            for name, item in value.items():
                check = declared.get(name)
                if check is not None and not check(item):
                    return False
                for search, pattern_check in searches:
                    if search(name) and not pattern_check(item):
                        return False
                if (
                    additional is not None
                    and check is None
                    and (skip is None or not skip(name))
                    and not additional(item)
                ):
                    return False
                if names is not None and not names(name):
                    return False
            for name, others in depends:
                if name in value:
                    for other in others:
                        if other not in value:
                            return False
            for name, check in subschemas:  # noqa: SIM110 (as in _every)
                if name in value and not check(value):
                    return False
            return True

        return general_object

    def _array(self, node: dict[str, Any], base: str, typed: str | None) -> Check | None:
        keywords = {"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains"}
        if keywords.isdisjoint(node):
            return None
        prefix_schemas = node.get("prefixItems", [])
        if not isinstance(prefix_schemas, list):
            raise _Unsupported
        prefix = tuple(self._schema(sub, base) for sub in prefix_schemas)
        rest = self._schema(node["items"], base) if "items" in node else None
        fewest = _count(node["minItems"]) if "minItems" in node else 0
        most = _count(node["maxItems"]) if "maxItems" in node else float("inf")
        unique = bool(node.get("uniqueItems", False))
        contains = self._schema(node["contains"], base) if "contains" in node else None
        least = _count(node["minContains"]) if "minContains" in node else 1
        at_most = _count(node["maxContains"]) if "maxContains" in node else None

        def array(value: Any) -> bool:
            if not isinstance(value, list):
                return True
            if not fewest <= len(value) <= most:
                return False
            for item, check in zip(value, prefix, strict=False):
                if not check(item):
                    return False
            if rest is not None:
                for item in itertools.islice(value, len(prefix), None):
                    if not rest(item):
                        return False
            if unique and not _unique(value):
                return False
            if contains is not None:
                matches = 0
                limit = len(value) if at_most is None else at_most
                for item in value:
                    if contains(item):
                        matches += 1
                        if matches > limit:
                            return False
                if matches < least:
                    return False
            return True

        return array

    def _string(self, node: dict[str, Any], base: str, typed: str | None) -> Check | None:
        closed = typed == "string"
        shortest = _count(node["minLength"]) if "minLength" in node else 0
        longest = _count(node["maxLength"]) if "maxLength" in node else float("inf")
        pattern = node.get("pattern")
        if pattern is not None and not isinstance(pattern, str):
            raise _Unsupported
        form = self._format(node["format"]) if closed and "format" in node else None
        if not closed and pattern is None and "minLength" not in node and "maxLength" not in node:
            return None
        search = patterns.compile_pattern(pattern) if pattern is not None else None
        if search is None and form is None:
            if shortest == 0 and longest == float("inf"):
                return _TYPES["string"] if closed else None

            def length(value: Any) -> bool:
                if not isinstance(value, str):
                    return not closed
                return shortest <= len(value) <= longest

            return length

        def string(value: Any) -> bool:
            if not isinstance(value, str):
                return not closed
            if not shortest <= len(value) <= longest:
                return False
            if search is not None and not search(value):
                return False
            return form is None or form(value)

        return string

    def _numeric(self, node: dict[str, Any], base: str, typed: str | None) -> Check | None:
        keywords = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
        if not any(keyword in node for keyword in keywords):
            return None
        low = _number(node["minimum"]) if "minimum" in node else None
        high = _number(node["maximum"]) if "maximum" in node else None
        above = _number(node["exclusiveMinimum"]) if "exclusiveMinimum" in node else None
        below = _number(node["exclusiveMaximum"]) if "exclusiveMaximum" in node else None
        step = _number(node["multipleOf"]) if "multipleOf" in node else None
        if step is not None and step <= 0:
            raise _Unsupported

        def numeric(value: Any) -> bool:
            if not _is_number(value):
                return True
            if low is not None and value < low:
                return False
            if high is not None and value > high:
                return False
            if above is not None and value <= above:
                return False
            if below is not None and value >= below:
                return False
            return step is None or _multiple(value, step)

        return numeric


def _multiple(value: Any, step: int | float) -> bool:
    """jsonschema's multipleOf, float quirks and all."""
    if isinstance(step, float):
        quotient = value / step
        try:
            return bool(int(quotient) == quotient)
        except OverflowError:
            return (Fraction(value) / Fraction(step)).denominator == 1
    return not value % step


# --- issues from jsonschema's errors ----------------------------------------------------------

_FORMAT_NAMES_ZH: Final = {
    "citizen-id": "公民身份号码",
    "region-code": "行政区划代码",
    "phone-cn": "电话号码",
    "date": "日期",
    "date-time": "日期时间",
    "email": "电子邮箱地址",
    "uuid": "UUID",
    "regex": "正则表达式",
}


def _shown(value: Any) -> str:
    """A schema value as JSON, shortened: messages stay one line."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _pointer(path: Iterable[str | int]) -> str:
    return "".join(f"/{_escape(str(token))}" for token in path)


def _describe(keyword: str, value: Any) -> tuple[str, str]:
    """English and Chinese for a failed keyword, from the schema's value for it alone."""
    match keyword:
        case "type":
            names = [value] if isinstance(value, str) else list(value)
            return (
                f"must be of type {' or '.join(map(str, names))}",
                f"类型应为 {' 或 '.join(map(str, names))}",
            )
        case "enum":
            shown = [_shown(each) for each in value]
            return f"must be one of {', '.join(shown)}", f"应为以下值之一：{'、'.join(shown)}"
        case "const":
            return f"must be {_shown(value)}", f"应为 {_shown(value)}"
        case "format":
            name = _FORMAT_NAMES_ZH.get(value)
            return (
                f"is not a valid {value}",
                f"不是有效的{name}（{value}）" if name else f"不符合 {value} 格式",
            )
        case "pattern":
            return f"must match the pattern {value}", f"应匹配正则表达式 {value}"
        case "minLength":
            return (
                f"must be at least {_shown(value)} characters long",
                f"长度应不少于 {_shown(value)} 个字符",
            )
        case "maxLength":
            return (
                f"must be at most {_shown(value)} characters long",
                f"长度应不超过 {_shown(value)} 个字符",
            )
        case "minimum":
            return f"must be at least {_shown(value)}", f"应不小于 {_shown(value)}"
        case "maximum":
            return f"must be at most {_shown(value)}", f"应不大于 {_shown(value)}"
        case "exclusiveMinimum":
            return f"must be greater than {_shown(value)}", f"应大于 {_shown(value)}"
        case "exclusiveMaximum":
            return f"must be less than {_shown(value)}", f"应小于 {_shown(value)}"
        case "multipleOf":
            return f"must be a multiple of {_shown(value)}", f"应为 {_shown(value)} 的整数倍"
        case "minItems":
            return f"must have at least {_shown(value)} items", f"应至少包含 {_shown(value)} 项"
        case "maxItems":
            return f"must have at most {_shown(value)} items", f"应至多包含 {_shown(value)} 项"
        case "uniqueItems":
            return "must not contain duplicate items", "各项不得重复"
        case "minProperties":
            return (
                f"must have at least {_shown(value)} properties",
                f"应至少包含 {_shown(value)} 个属性",
            )
        case "maxProperties":
            return (
                f"must have at most {_shown(value)} properties",
                f"应至多包含 {_shown(value)} 个属性",
            )
        case "contains":
            return (
                "must contain an item that matches the item schema",
                "应至少包含一项符合要求的元素",
            )
        case "minContains":
            return (
                f"must contain at least {_shown(value)} matching items",
                f"应至少包含 {_shown(value)} 项符合要求的元素",
            )
        case "maxContains":
            return (
                f"must contain at most {_shown(value)} matching items",
                f"应至多包含 {_shown(value)} 项符合要求的元素",
            )
        case "anyOf":
            return "must match at least one of the allowed schemas", "应至少符合一种允许的结构"
        case "oneOf":
            return "must match exactly one of the allowed schemas", "应恰好符合一种允许的结构"
        case "not":
            return "must not match the excluded schema", "不得符合被排除的结构"
        case "false":
            return "is not allowed here", "此处不允许出现该值"
        case "unevaluatedItems":
            return (
                "must not have items the schema does not describe",
                "不得包含模式未定义的项",
            )
    return f"fails {keyword}", f"未通过 {keyword} 校验"


_UNEVALUATED_NAMES: Final = re.compile(
    r"\((.*) (?:was|were) (?:unexpected|unevaluated and invalid)\)", re.DOTALL
)


def _unevaluated(message: str) -> list[str] | None:
    """The property names in jsonschema's unevaluatedProperties message, which is the only
    place it reports them (it needs the evaluation state to find them). They are the
    reprs of the names, so `literal_eval` reads them back exactly; None if that fails."""
    found = _UNEVALUATED_NAMES.search(message)
    if found is None:
        return None
    try:
        names = ast.literal_eval(f"({found.group(1)},)")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(names, tuple) or not all(isinstance(name, str) for name in names):
        return None
    return list(names)


def _issues(errors: Iterable[Any]) -> list[Issue]:
    """Issues from jsonschema's `ValidationError`s; their `.message` is never shown."""
    issues: list[Issue] = []
    for error in errors:
        pointer = _pointer(error.absolute_path)
        keyword = error.validator if isinstance(error.validator, str) else "false"
        value, instance = error.validator_value, error.instance
        if keyword == "required" and isinstance(instance, dict):
            issues.extend(
                Issue(
                    f"{pointer}/{_escape(name)}",
                    keyword,
                    f"required property {name} is missing",
                    f"缺少必填属性 {name}",
                )
                for name in value
                if name not in instance
            )
        elif keyword == "dependentRequired" and isinstance(instance, dict):
            issues.extend(
                Issue(
                    f"{pointer}/{_escape(other)}",
                    keyword,
                    f"property {other} is required when {name} is present",
                    f"存在属性 {name} 时必须有属性 {other}",
                )
                for name, others in value.items()
                if name in instance
                for other in others
                if other not in instance
            )
        elif keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(
            instance, dict
        ):
            if keyword == "additionalProperties":
                declared = error.schema.get("properties", {})
                named = error.schema.get("patternProperties", {})
                extras: list[str] | None = [
                    name
                    for name in instance
                    if name not in declared and not patterns.matches_any(named, name)
                ]
            else:
                extras = _unevaluated(error.message)
            if extras is None:
                issues.append(
                    Issue(
                        pointer,
                        keyword,
                        "has properties that are not allowed",
                        "包含不允许出现的属性",
                    )
                )
            issues.extend(
                Issue(
                    f"{pointer}/{_escape(name)}",
                    keyword,
                    f"property {name} is not allowed",
                    f"不允许出现属性 {name}",
                )
                for name in extras or ()
            )
        elif keyword == "items" and value is False:
            allowed = len(error.schema.get("prefixItems", []))
            issues.append(
                Issue(
                    pointer,
                    keyword,
                    f"must have at most {allowed} items",
                    f"应至多包含 {allowed} 项",
                )
            )
        else:
            issues.append(Issue(pointer, keyword, *_describe(keyword, value)))
    return issues


def _sorted(issues: Iterable[Issue]) -> list[Issue]:
    """Without duplicates, by pointer, then keyword and message: stable across runs."""
    return sorted(set(issues), key=lambda issue: (issue.pointer, issue.keyword, issue.en))
