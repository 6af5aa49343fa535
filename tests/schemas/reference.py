"""The reference the hub's validator is held to: jsonschema's Draft 2020-12, with the hub's
format checks and `pattern` searched by the hub's engine (ECMA-262's reading: `$` only at the
very end, ASCII `\\d`), which Python's `re` would not give."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator, ValidationError  # type: ignore[import-untyped]
from jsonschema.validators import extend  # type: ignore[import-untyped]

from hub.schemas.formats import format_checker
from hub.schemas.patterns import compile_pattern


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not compile_pattern(pattern)(instance):
        yield ValidationError("does not match the pattern")


_Reference = extend(Draft202012Validator, {"pattern": _pattern})


def reference(schema: dict[str, Any]) -> Any:
    """A jsonschema validator of `schema` (no `$ref` to other documents)."""
    return _Reference(schema, format_checker=format_checker())
