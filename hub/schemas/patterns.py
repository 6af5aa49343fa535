"""Regular expressions of registered schemas (`pattern`, `patternProperties`): one engine,
linear in time, for registration, validation and the compatibility analysis.

Python's `re` backtracks: `^(a+)+$` against thirty `a`s and a `!` takes exponential time, and
holds the GIL while it does, so one document could stop the whole process. jsonschema-rs, which
validates documents (`hub.schemas.validation`), matches with Rust's `regex` crate when given
`RegexOptions` (`OPTIONS`): finite automata, time linear in the text whatever the pattern, and a
pattern it cannot run that way (backreferences, lookaround) or within the size limits below is
refused when it is compiled. So every pattern a schema carries is compiled by that engine when
the schema is registered (`compile_pattern`: refused there, with the reason) and matched by it
whenever a document is validated and whenever compatibility asks what a pattern covers.

The dialect is ECMA-262's, the one JSON Schema names, as jsonschema-rs translates it: `\\d` and
`\\w` are ASCII, `$` matches only at the very end (Python's also before a final newline), and
`\\uXXXX` is a code point. Patterns are searched, not anchored, as JSON Schema requires.

Texts are UTF-8; a lone surrogate (which JSON allows in a string, and Rust's strings cannot
hold) is matched as U+FFFD, one character, as ECMA-262 counts it (`without_surrogates`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

import jsonschema_rs

from hub.text import Text

PATTERN_MAX_LENGTH: Final = 1_000
"""Characters in one pattern: enough for any field rule, small enough to read."""
PATTERN_MAX_MEMORY: Final = 1 << 20
"""Bytes one compiled pattern may take, and its lazy DFA's cache (the engine's defaults are
10 MiB and 2 MiB). A pattern whose program does not fit is refused; a DFA that outgrows its
cache while matching falls back to a slower automaton, still linear."""

OPTIONS: Final = jsonschema_rs.RegexOptions(
    size_limit=PATTERN_MAX_MEMORY, dfa_size_limit=PATTERN_MAX_MEMORY
)
"""The engine every validator of registered schemas is built with."""

_SURROGATE: Final = re.compile("[\ud800-\udfff]")

Search = Callable[[str], bool]
"""Whether a pattern matches anywhere in a text."""


class PatternRefused(ValueError):
    """A pattern the engine cannot run, or not within the limits; `text` says why."""

    def __init__(self, text: Text) -> None:
        super().__init__(text.en)
        self.text = text


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Search:
    """The search for `pattern`, compiled once per process (the cache holds every pattern of
    the registered schemas many times over); PatternRefused if the engine cannot run it."""
    if len(pattern) > PATTERN_MAX_LENGTH:
        raise PatternRefused(
            Text(
                f"正则表达式不得超过 {PATTERN_MAX_LENGTH} 个字符",
                f"a pattern may have at most {PATTERN_MAX_LENGTH} characters",
            ),
        )
    try:
        validator = jsonschema_rs.Draft202012Validator(
            {"pattern": without_surrogates(pattern)}, pattern_options=OPTIONS
        )
    except jsonschema_rs.ValidationError:
        mebibytes = PATTERN_MAX_MEMORY >> 20
        raise PatternRefused(
            Text(
                f"该正则表达式无法在 {mebibytes} MiB 内以线性时间匹配：不支持反向引用和环视，"
                "重复次数不得过大",
                "this pattern cannot be matched in linear time within"
                f" {mebibytes} MiB: no backreferences or lookaround, no runaway repetition",
            ),
        ) from None
    is_valid = validator.is_valid

    def found(text: str) -> bool:
        return is_valid(without_surrogates(text))

    return found


def matches_any(patterns: Iterable[str], name: str) -> bool:
    """Whether any of `patterns` matches `name`: what `patternProperties` covers. Each pattern
    on its own, not one alternation of all of them (an inline flag such as `(?i)` in one would
    then apply to the patterns after it)."""
    return any(compile_pattern(pattern)(name) for pattern in patterns)


def without_surrogates(value: Any) -> Any:
    """`value` with each lone surrogate in its strings (keys included) as U+FFFD. A Python
    string holds a surrogate only unpaired (json pairs escapes into one code point), and the
    edge refuses those in what arrives over HTTP, so this is for what the hub holds already.
    One character for one keeps every length and position: lengths and patterns judge the
    text as ECMA-262 counts it."""
    if isinstance(value, str):
        return value if value.isascii() else _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {without_surrogates(key): without_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_surrogates(item) for item in value]
    return value
