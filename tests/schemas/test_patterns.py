"""Schema patterns run by a linear-time engine (jsonschema-rs's, Rust's `regex`): linear time on
any text, refused at registration when it cannot run them, read as ECMA-262 reads them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from hub.schemas.compat import CompatibilityMode, check
from hub.schemas.patterns import PATTERN_MAX_LENGTH, compile_pattern, matches_any
from hub.schemas.validation import Issue, Validators, check_schema
from tests.schemas.reference import reference

Json = Any
EVIL = "^(a+)+$"
"""Exponential for a backtracking engine on a run of `a`s that ends in something else."""


def _no_refs(subject: str, version: int) -> None:
    return None


def pairs(issues: list[Issue]) -> set[tuple[str, str]]:
    return {(issue.pointer, issue.keyword) for issue in issues}


def test_a_catastrophic_pattern_on_a_long_text_finishes_at_once_on_every_path() -> None:
    """Python's `re` needs minutes for 30 characters; this runs 100,000 through validation and
    the issue messages, under additionalProperties and unevaluatedProperties alike.
    In a child process with a deadline: a backtracking engine holds the GIL, so only a kill
    can stop it, and the test then fails instead of hanging."""
    script = textwrap.dedent(
        f"""
        from hub.schemas.validation import Validators
        evil = {EVIL!r}
        text = "a" * 100_000 + "!"
        fast = {{"type": "object", "properties": {{"x": {{"type": "string", "pattern": evil}}}},
                 "patternProperties": {{evil: {{"type": "integer"}}}},
                 "additionalProperties": False}}
        slow = {{**fast, "unevaluatedProperties": False}}
        del slow["additionalProperties"]
        validators = Validators(lambda subject, version: {{"fast": fast, "slow": slow}}[subject])
        for subject, extra in (("fast", "additionalProperties"), ("slow", "unevaluatedProperties")):
            compiled = validators.get(subject, 1)
            assert not compiled.is_valid({{"x": text}})
            assert [issue.keyword for issue in compiled.errors({{"x": text}})] == ["pattern"]
            refused = compiled.errors({{text: 1}})
            assert [issue.keyword for issue in refused] == [extra], refused
            assert compiled.is_valid({{"x": "a" * 100_000, "a" * 100_000: 1}})
        print("done")
        """
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "done"


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"pattern": "(a)\\1"}, {("/pattern", "pattern")}),
        ({"properties": {"a": {"pattern": "(?=a)b"}}}, {("/properties/a/pattern", "pattern")}),
        (
            {"patternProperties": {"(?<!x)y": {}}},
            {("/patternProperties/(?<!x)y", "patternProperties")},
        ),
        ({"patternProperties": {"a/(": {}}}, {("/patternProperties/a~1(", "patternProperties")}),
        ({"pattern": "a" * (PATTERN_MAX_LENGTH + 1)}, {("/pattern", "pattern")}),
        ({"pattern": "[\\p{L}\\p{N}]{1,500}"}, {("/pattern", "pattern")}),  # over the memory limit
        ({"$defs": {"d": {"pattern": "\\Z"}}}, {("/$defs/d/pattern", "pattern")}),
        ({"pattern": EVIL, "patternProperties": {"^[\\u4e00-\\u9fa5]+$": {}}}, set()),
        ({"pattern": "a" * PATTERN_MAX_LENGTH}, set()),
    ],
)
def test_a_pattern_the_engine_cannot_run_is_refused_at_its_pointer(
    schema: dict[str, Json], expected: set[tuple[str, str]]
) -> None:
    issues = check_schema(schema, _no_refs)
    assert pairs(issues) == expected
    assert all("linear time" in issue.en or "1000" in issue.en for issue in issues)
    assert all(issue.zh for issue in issues)


def test_a_stored_version_with_a_pattern_the_engine_refuses_is_not_compiled() -> None:
    """Registered before the registry checked patterns: refused when compiled, never run by a
    backtracking engine."""
    validators = Validators(lambda subject, version: {"pattern": "(a)\\1"})
    with pytest.raises(LookupError, match="/pattern"):
        validators.get("old", 1)


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        ("^[a-z]+$", "ab", True),
        ("^[a-z]+$", "ab\n", False),  # `$` is the end of the text, as in ECMA-262
        ("^\\d+$", "123", True),
        ("^\\d+$", "١٢٣", False),  # ASCII digits only, as in ECMA-262
        ("^[\\u4e00-\\u9fa5]{2,4}$", "王芳", True),  # the ECMA-262 escape
        ("^[\\u4e00-\\u9fa5]{2,4}$", "Wang", False),
        ("^\\\\u0041$", "\\u0041", True),  # an escaped backslash, then the letters
        ("^\\\\u0041$", "A", False),
        ("b", "abc", True),  # searched, not anchored
        ("^.$", "\ud800", True),  # a lone surrogate (JSON allows one): one character
    ],
)
def test_patterns_are_read_as_ecma_262_reads_them(pattern: str, text: str, found: bool) -> None:
    assert compile_pattern(pattern)(text) is found
    schema = {"type": "string", "pattern": pattern}
    compiled = Validators(lambda subject, version: schema).get("s", 1)
    assert compiled.is_valid(text) is found
    assert reference(schema).is_valid(text) is found


def test_pattern_properties_are_each_matched_on_their_own() -> None:
    """Not as one alternation: `(?i)` in the first must not make the second case-blind."""
    named = ["(?i)^x-", "^Y$"]
    assert matches_any(named, "X-1") and matches_any(named, "Y")
    assert not matches_any(named, "y")
    schema = {"patternProperties": {name: {} for name in named}, "additionalProperties": False}
    compiled = Validators(lambda subject, version: schema).get("s", 1)
    assert compiled.is_valid({"X-1": 1, "Y": 2})
    assert [issue.pointer for issue in compiled.errors({"y": 1})] == ["/y"]


def test_compatibility_matches_property_names_with_the_same_engine() -> None:
    """A new property governed by an old `patternProperties` is checked against it, with the
    pattern searched as documents are: `$` does not match before a final newline."""
    old = {"type": "object", "patternProperties": {"^x$": {"type": "integer"}}}
    narrowed = {**old, "properties": {"x\n": {"type": "string"}}}
    assert check(CompatibilityMode.BACKWARD, [(1, old)], narrowed) == []
    clash = {**old, "properties": {"x": {"type": "string"}}}
    assert check(CompatibilityMode.BACKWARD, [(1, old)], clash) != []
