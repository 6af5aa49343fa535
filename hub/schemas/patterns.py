"""Regular expressions of registered schemas (`pattern`, `patternProperties`), run by RE2.

Python's `re` backtracks: `^(a+)+$` against thirty `a`s and a `!` takes exponential time, and
holds the GIL while it does, so one document could stop the whole process. RE2 matches in time
linear in the text, whatever the pattern, and refuses what it cannot match that way
(backreferences, lookaround). So every pattern a schema carries is compiled by RE2 when the
schema is registered (`compile_pattern`: refused there, with the reason, if RE2 cannot run it
within the limits below) and run by RE2 whenever a document is validated, by the compiled
predicate and by jsonschema alike (`KEYWORDS` replaces jsonschema's keywords that call `re`).

The dialect is RE2's, which agrees with ECMA-262 (the one JSON Schema names) on what
schemas use: `\\d` and `\\w` are ASCII, `$` matches only at the very end (Python's also before
a final newline), and `\\uXXXX` is read as ECMA-262 reads it (RE2 itself spells it `\\x{XXXX}`).
Patterns are searched, not anchored, as JSON Schema requires.

Texts are matched as UTF-8 bytes; a lone surrogate (which JSON allows in a string) is encoded
as is, and matches as one character, as in ECMA-262.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

import re2
from jsonschema import ValidationError  # type: ignore[import-untyped]
from jsonschema._utils import extras_msg  # type: ignore[import-untyped]

PATTERN_MAX_LENGTH: Final = 1_000
"""Characters in one pattern: enough for any field rule, small enough to read."""
PATTERN_MAX_MEMORY: Final = 1 << 20
"""Bytes RE2 may use for one pattern, its program and its DFA cache together (RE2's own
default is 8 MiB). A pattern whose program does not fit is refused; a DFA that outgrows the
cache while matching falls back to RE2's NFA, slower but still linear."""

Search = Callable[[str], bool]
"""Whether a pattern matches anywhere in a text."""

_ECMA_UNICODE_ESCAPE: Final = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|(.))", re.DOTALL)


class PatternRefused(ValueError):
    """A pattern RE2 cannot run, or not within the limits; `en` and `zh` say why."""

    def __init__(self, en: str, zh: str) -> None:
        super().__init__(en)
        self.en, self.zh = en, zh


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = PATTERN_MAX_MEMORY
    options.never_capture = True  # only "is there a match" is asked: no groups to record
    options.log_errors = False  # a refused pattern is reported to the caller, not to stderr
    return options


def _as_re2(pattern: str) -> str:
    """`pattern` with each ECMA-262 `\\uXXXX` escape spelled as RE2 spells it (`\\x{XXXX}`).
    Every other escape is kept as it is: a backslash always takes the next character, so
    `\\\\u0041` stays a backslash followed by `u0041`."""

    def spelled(escape: re.Match[str]) -> str:
        code = escape.group(1)
        return f"\\x{{{code}}}" if code is not None else escape.group(0)

    return _ECMA_UNICODE_ESCAPE.sub(spelled, pattern)


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Search:
    """The search for `pattern`, compiled once per process (the cache holds every pattern of
    the registered schemas many times over); PatternRefused if RE2 cannot run it."""
    if len(pattern) > PATTERN_MAX_LENGTH:
        raise PatternRefused(
            f"a pattern may have at most {PATTERN_MAX_LENGTH} characters",
            f"正则表达式不得超过 {PATTERN_MAX_LENGTH} 个字符",
        )
    try:
        regexp = re2.compile(_as_re2(pattern), _options())
    except re2.error as error:
        (reason,) = error.args or ("",)
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        mebibytes = PATTERN_MAX_MEMORY >> 20
        raise PatternRefused(
            f"RE2 cannot run this pattern ({reason}): patterns are matched in linear time"
            f" within {mebibytes} MiB, without backreferences or lookaround",
            f"RE2 无法执行该正则表达式（{reason}）：须能在 {mebibytes} MiB 内以线性时间匹配，"
            "不支持反向引用和环视",
        ) from None
    search = regexp.search

    def found(text: str) -> bool:
        return search(text.encode("utf-8", "surrogatepass")) is not None

    return found


def matches_any(patterns: Iterable[str], name: str) -> bool:
    """Whether any of `patterns` matches `name`: what `patternProperties` covers. Each pattern
    on its own, not one alternation of all of them (an inline flag such as `(?i)` in one would
    then apply to the patterns after it)."""
    return any(compile_pattern(pattern)(name) for pattern in patterns)


# --- jsonschema's keywords that search with `re`, searching with RE2 --------------------------
# Each mirrors its namesake in jsonschema/_keywords.py (4.26); only the matching differs.


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not compile_pattern(pattern)(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        search = compile_pattern(pattern)
        for name, value in instance.items():
            if search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> Iterator[str]:
    """jsonschema's `find_additional_properties`: names neither declared nor matched."""
    declared = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    for name in instance:
        if name not in declared and not matches_any(patterns, name):
            yield name


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    extras = set(_additional(instance, schema))
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            error = "Additional properties are not allowed (%s %s unexpected)"
            yield ValidationError(error % extras_msg(sorted(extras, key=str)))


def _valid(errors: Iterator[Any]) -> bool:
    return next(errors, None) is None


def _evaluated_keys(validator: Any, instance: Mapping[str, Any], schema: Any) -> list[str]:
    """jsonschema's `find_evaluated_property_keys_by_schema`: the names some keyword of
    `schema` (or of what it applies in place) evaluates."""
    if validator.is_type(schema, "boolean"):
        return []
    keys: list[str] = []
    for keyword in ("$ref", "$dynamicRef"):
        reference = schema.get(keyword)
        if reference is not None:
            resolved = validator._resolver.lookup(reference)
            keys += _evaluated_keys(
                validator.evolve(schema=resolved.contents, _resolver=resolved.resolver),
                instance,
                resolved.contents,
            )
    properties = schema.get("properties")
    if validator.is_type(properties, "object"):
        keys += properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        subschema = schema.get(keyword)
        if subschema is not None:
            keys += (
                name
                for name, value in instance.items()
                if _valid(validator.descend(value, subschema))
            )
    if "patternProperties" in schema:
        keys += (name for name in instance if matches_any(schema["patternProperties"], name))
    for name, subschema in schema.get("dependentSchemas", {}).items():
        if name in instance:
            keys += _evaluated_keys(validator, instance, subschema)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, []):
            if _valid(validator.descend(instance, subschema)):
                keys += _evaluated_keys(validator, instance, subschema)
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            keys += _evaluated_keys(validator, instance, schema["if"])
            if "then" in schema:
                keys += _evaluated_keys(validator, instance, schema["then"])
        elif "else" in schema:
            keys += _evaluated_keys(validator, instance, schema["else"])
    return keys


def _unevaluated_properties(
    validator: Any, unevaluated: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    evaluated = _evaluated_keys(validator, instance, schema)
    refused = [
        name
        for name in instance
        if name not in evaluated
        for _ in validator.descend(instance[name], unevaluated, path=name, schema_path=name)
    ]
    if not refused:
        return
    if unevaluated is False:
        error = "Unevaluated properties are not allowed (%s %s unexpected)"
        yield ValidationError(error % extras_msg(sorted(refused, key=str)))
    else:
        error = (
            "Unevaluated properties are not valid under the given schema "
            "(%s %s unevaluated and invalid)"
        )
        yield ValidationError(error % extras_msg(refused))


KEYWORDS: Final[Mapping[str, Callable[..., Iterator[Any]]]] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "unevaluatedProperties": _unevaluated_properties,
}
"""For `jsonschema.validators.extend`: every 2020-12 keyword that matches a pattern."""
