"""Validating documents against registered schema versions: schema checks, compiled validators
and issues that never repeat what a document says.

Every registered version is named by a URI, `urn:permit-hub:schema:<subject>:<version>`
(`schema_uri`), and a schema may `$ref` another registered version by that URI, optionally with
a `#/...` fragment. Nothing else can be referenced: the hub never reaches the network or the
file system to validate, so a `$ref` to `https://...` or `file:...` is refused when the schema is
registered (`check_schema`), not discovered when a document arrives.

Validation (`Validators`) compiles each (subject, version) once and caches it: versions are
immutable, so a compiled schema never goes stale. A compiled schema is jsonschema-rs's
Draft 2020-12 validator over the stored schema with `$id` set to its URI, every registered
version it references (transitively) in its registry and a retriever that refuses anything
else, the hub's format checks (`hub.schemas.formats`) and its linear-time regular expressions
(`hub.schemas.patterns`). It covers all of 2020-12, `unevaluated*`, `$dynamicRef` and embedded
resources included. Measured by bench/schemas.py: jsonschema (which still checks a schema
against the meta-schema here, and drives the compatibility analysis) validates holder records
hundreds of times slower, and reports an invalid one's errors over ten times slower.

Issues (`Issue`) name where and what, in English and Chinese, built only from the schema side:
the keyword, the schema's value for it, property names. jsonschema's own messages repeat the
offending value ("'1101...' is not a 'citizen-id'"), and a document may carry a citizen ID, so
they are never used. Property names are the one thing taken from a document, for an unexpected
property: naming it is the only useful message.

This module is pure: no FastAPI, no SQL. The registry's storage is reached through `Fetch`.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias
from urllib.parse import unquote, urldefrag, urljoin

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT202012

from hub.problems import FieldError, Text
from hub.schemas import patterns
from hub.schemas.formats import format_callbacks

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
    `en` and `zh` never contain a value from the document. A value refused by a `false`
    subschema (e.g. `"properties": {"x": false}`) is reported where it stands, keyword "false".
    """

    pointer: str
    keyword: str
    en: str
    zh: str

    def field_error(self, below: str = "") -> FieldError:
        """This issue in a problem's `errors`, its pointer under `below`: where the request
        holds the document (e.g. `/proof`)."""
        return FieldError(Text(self.zh, self.en), pointer=below + self.pointer)


# --- checking a schema before it is registered ------------------------------------------------


def check_schema(schema: Any, fetch: Fetch, *, uri: str = _CANDIDATE_URI) -> list[Issue]:
    """Every reason `schema` cannot be registered, with pointers into it; empty if it can.

    - It must be a JSON object, valid under the Draft 2020-12 meta-schema, and any `$schema`
      in it must be 2020-12 (`DIALECT`): the registry compiles every version as 2020-12, so a
      draft-07 schema would silently mean something else. A boolean is a schema too, but not a
      version: `true` would publish anything and `false` nothing, and what the hub builds from a
      version (projections, compiled validators) reads an object.
    - Every `pattern` and `patternProperties` name must be one the linear-time engine runs
      within its limits (`hub.schemas.patterns`): documents are never matched by a
      backtracking engine.
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


def _pattern_issues(schema: dict[str, Any], uri: str) -> list[Issue]:
    """An issue at each `pattern` (a string) and `patternProperties` name the engine refuses."""
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
                issues.append(Issue(where, keyword, refused.text.en, refused.text.zh))
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

    __slots__ = (
        "_keywords",
        "_located",
        "_plain",
        "_validator",
        "schema",
        "subject",
        "uri",
        "version",
    )

    def __init__(
        self,
        subject: str,
        version: int,
        schema: dict[str, Any],
        validator: jsonschema_rs.Validator,
        located: Mapping[str, Any],
    ) -> None:
        self.subject = subject
        self.version = version
        self.uri: str = schema["$id"]
        self.schema = schema
        """The stored schema with `$id` set to `uri`; do not modify it."""
        self._validator = validator
        self._located = located
        """Each schema resource the validator may report a location in, by its URI."""
        self._plain: dict[tuple[str | int | None, ...], Issue] = {}
        """The issue of a common kind of error by schema location and document path: documents
        refused in bulk tend to fail alike. Bounded by _PLAIN_ISSUES."""
        self._keywords: dict[str, _Keyword] = {}
        """`_keyword`'s answers by absolute keyword location: a schema has few keywords, and
        a racing thread at worst computes the same answer twice."""

    def is_valid(self, document: Any) -> bool:
        try:
            return self._validator.is_valid(document)
        except UnicodeEncodeError:  # a lone surrogate, which a Rust string cannot hold
            return self._validator.is_valid(patterns.without_surrogates(document))

    def errors(self, document: Any) -> list[Issue]:
        """Every issue, sorted by pointer; empty if the document is valid. One pass: on a
        valid document jsonschema-rs's `iter_errors` costs what `is_valid` does."""
        try:
            errors = list(self._validator.iter_errors(document))
        except UnicodeEncodeError:
            errors = list(self._validator.iter_errors(patterns.without_surrogates(document)))
        if not errors:
            return []
        issues = [issue for error in errors for issue in self._issues(error, "")]
        return issues if len(issues) == 1 else _sorted(issues)

    def _issues(self, error: jsonschema_rs.ValidationError, below: str) -> list[Issue]:
        """The issues of one of jsonschema-rs's errors, from its kind, where it points in the
        document and the schema's value at the keyword it names; `.message` is never read.
        `below`: the pointer of the object whose property names a `propertyNames` error is
        about (such an error points into a name, not the document)."""
        kind = error.kind
        if not isinstance(kind, _PARTICULAR_KINDS):  # most errors: the keyword's own message
            key = (error.absolute_keyword_location, below, *error.instance_path)
            issue = self._plain.get(key)
            if issue is None:
                at = self._keyword(error)
                issue = Issue(below or _pointer(error.instance_path), at.keyword, at.en, at.zh)
                if len(self._plain) >= _PLAIN_ISSUES:
                    self._plain.clear()
                self._plain[key] = issue
            return [issue]
        pointer = below or _pointer(error.instance_path)
        at = self._keyword(error)
        location, keyword, value = at.location, at.keyword, at.value
        match kind:
            case jsonschema_rs.ValidationErrorKind.PropertyNames(inner):
                return self._issues(inner, pointer)
            case jsonschema_rs.ValidationErrorKind.Required(name):
                if keyword == "dependentRequired" and isinstance(error.instance, dict):
                    return [
                        Issue(
                            f"{pointer}/{_escape(name)}",
                            keyword,
                            f"property {name} is required when {present} is present",
                            f"存在属性 {present} 时必须有属性 {name}",
                        )
                        for present, needed in value.items()
                        if present in error.instance and name in needed
                    ]
                return [
                    Issue(
                        f"{pointer}/{_escape(name)}",
                        "required",
                        f"required property {name} is missing",
                        f"缺少必填属性 {name}",
                    )
                ]
            case jsonschema_rs.ValidationErrorKind.AdditionalProperties(
                names
            ) | jsonschema_rs.ValidationErrorKind.UnevaluatedProperties(names):
                return [
                    Issue(
                        f"{pointer}/{_escape(name)}",
                        keyword,
                        f"property {name} is not allowed",
                        f"不允许出现属性 {name}",
                    )
                    for name in names
                ]
            case jsonschema_rs.ValidationErrorKind.FalseSchema() if _is_items(location):
                allowed = len(self._at(location[:-1]).get("prefixItems", []))
                return [
                    Issue(
                        _pointer(error.instance_path[:-1]),
                        "items",
                        f"must have at most {allowed} items",
                        f"应至多包含 {allowed} 项",
                    )
                ]
            case _:  # FalseSchema
                return [Issue(pointer, "false", *_describe("false", False))]

    def _keyword(self, error: jsonschema_rs.ValidationError) -> _Keyword:
        """The keyword an error names, from its absolute keyword location, e.g.
        `urn:...:1#/properties/a/type`. A `dependentRequired` error's location names an index
        below the keyword, whose value (the whole map) says which present property needed it.
        """
        location = error.absolute_keyword_location
        found = self._keywords.get(location) if location is not None else None
        if found is None:
            keyword = str(error.schema_path[-1]) if error.schema_path else "false"
            found = self._resolve(location, keyword)
            if location is not None:  # a location names one keyword: the key is enough
                self._keywords[location] = found
        return found

    def _resolve(self, location: str | None, keyword: str) -> _Keyword:
        uri, _, fragment = (location or f"{self.uri}#").partition("#")
        tokens = [
            unquote(token).replace("~1", "/").replace("~0", "~")
            for token in fragment.split("/")[1:]
        ]
        if keyword == "dependentRequired" and keyword in tokens:
            del tokens[len(tokens) - tokens[::-1].index(keyword) :]
        path = (uri, *tokens)
        value = self._at(path)
        return _Keyword(path, keyword, value, *_describe(keyword, value))

    def _at(self, path: tuple[str, ...]) -> Any:
        node: Any = self._located.get(path[0], self.schema)
        for token in path[1:]:
            node = node[int(token)] if isinstance(node, list) else node.get(token)
        return node


_PLAIN_ISSUES: Final = 4_096

_PARTICULAR_KINDS: Final = (
    jsonschema_rs.ValidationErrorKind.PropertyNames,
    jsonschema_rs.ValidationErrorKind.Required,
    jsonschema_rs.ValidationErrorKind.AdditionalProperties,
    jsonschema_rs.ValidationErrorKind.UnevaluatedProperties,
    jsonschema_rs.ValidationErrorKind.FalseSchema,
)
"""The error kinds `_issues` words from the error itself; every other kind gets its keyword's
message, made once per schema location."""


@dataclass(frozen=True)
class _Keyword:
    """A keyword of the schema as errors name it: where it is, as (resource URI, reference
    tokens...), its name and value, and what a document failing it is told (`_describe`), made
    once per schema location: the messages of `enum` alone format every allowed value."""

    location: tuple[str, ...]
    keyword: str
    value: Any
    en: str
    zh: str


def _is_items(location: tuple[str, ...]) -> bool:
    """Whether a location is an `items` keyword, not a property or definition named so."""
    return len(location) > 1 and location[-1] == "items" and location[-2] not in _IN_MAP


def _refuse_retrieval(uri: str) -> Any:
    """jsonschema-rs's retriever: every registered version a schema references is in the
    validator's registry before it is built, so anything asked for here is not one, and the
    hub never reaches the network or the file system for a schema."""
    raise LookupError(f"{uri} is not a registered schema version")


class Validators:
    """Compiled validators by (subject, version), each compiled once.

    A version is compiled on first use with every version it references (transitively)
    fetched, once each, into the validator's registry, so validating never fetches. `get`
    reads the cache without a lock; compiling takes one, so two threads asking for the same
    new version compile it once.
    """

    def __init__(self, fetch: Fetch) -> None:
        self._sources = _Sources(fetch)
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
            registry = (
                Registry(retrieve=self._sources.retrieve)  # type: ignore[call-arg]
                .with_resource(current, resource)
                .crawl()
            )
            issues, referenced = _reference_issues(
                resource.contents, current, self._sources, registry
            )
            issues += _pattern_issues(resource.contents, current)  # stored before they were
            if issues:
                raise LookupError(f"{current}{issues[0].pointer}: {issues[0].en}")
            pending.extend(referenced)
        documents = {each: self._sources.retrieve(each).contents for each in sorted(seen)}
        validator = jsonschema_rs.Draft202012Validator(
            root.contents,
            registry=jsonschema_rs.Registry(list(documents.items())),
            retriever=_refuse_retrieval,
            formats=format_callbacks(),
            validate_formats=True,
            pattern_options=patterns.OPTIONS,
        )
        located = {
            base: node
            for each, document in documents.items()
            for _, node, base in _subschemas(document, each)
            if "$id" in node
        }
        return CompiledSchema(subject, version, root.contents, validator, located)


# --- issues ----------------------------------------------------------------------------------


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
    """The RFC 6901 pointer of a path. Asked for every error of every document, so the usual
    case, no token with a `/` or `~` to escape, joins the tokens once."""
    tokens = [str(token) for token in path]
    if not tokens:
        return ""
    joined = "/".join(tokens)
    if "~" in joined or joined.count("/") != len(tokens) - 1:
        return "".join(f"/{_escape(token)}" for token in tokens)
    return f"/{joined}"


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


def _issues(errors: Iterable[Any]) -> list[Issue]:
    """Issues from jsonschema's `ValidationError`s of a schema against the meta-schema (only
    `check_schema` validates with jsonschema); their `.message` is never shown."""
    issues: list[Issue] = []
    for error in errors:
        pointer = _pointer(error.absolute_path)
        keyword = error.validator if isinstance(error.validator, str) else "false"
        if keyword == "required" and isinstance(error.instance, dict):
            issues.extend(
                Issue(
                    f"{pointer}/{_escape(name)}",
                    keyword,
                    f"required property {name} is missing",
                    f"缺少必填属性 {name}",
                )
                for name in error.validator_value
                if name not in error.instance
            )
        else:
            issues.append(Issue(pointer, keyword, *_describe(keyword, error.validator_value)))
    return issues


def _sorted(issues: Iterable[Issue]) -> list[Issue]:
    """Without duplicates, by pointer, then keyword and message: stable across runs."""
    return sorted(set(issues), key=lambda issue: (issue.pointer, issue.keyword, issue.en))
