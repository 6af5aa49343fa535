"""The request types routers share (hub.deps): StandardBase64 takes exactly what the document
says it takes, canonical standard base64 (RFC 4648 §4), and the sizes it states."""

from __future__ import annotations

import base64
import os
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ValidationError

from hub.deps import StandardBase64, base64_length
from hub.schemas.patterns import compile_pattern
from tests.card.helpers import another_spelling


class Body(BaseModel):
    any_: Annotated[bytes, StandardBase64("anything")]
    sized: Annotated[bytes, StandardBase64(size=16)]
    bounded: Annotated[bytes, StandardBase64(max_bytes=81)]


GOOD: dict[str, Any] = {
    "any_": base64.b64encode(b"hub").decode(),
    "sized": base64.b64encode(bytes(16)).decode(),
    "bounded": base64.b64encode(bytes(81)).decode(),
}


def _refusal(field: str, value: object) -> str:
    with pytest.raises(ValidationError) as refused:
        Body(**{**GOOD, field: value})
    errors = refused.value.errors()
    assert [error["loc"] for error in errors] == [(field,)]
    return str(errors[0]["type"])


def test_canonical_base64_is_read_as_its_bytes() -> None:
    data = os.urandom(81)
    body = Body(**{**GOOD, "bounded": base64.b64encode(data).decode()})
    assert body.bounded == data
    assert body.sized == bytes(16) and body.any_ == b"hub"


@pytest.mark.parametrize("size", [1, 2, 16, 65])
def test_another_spelling_of_the_same_bytes_is_refused(size: int) -> None:
    canonical = base64.b64encode(os.urandom(size)).decode()
    other = another_spelling(canonical)
    assert base64.b64decode(other, validate=True) == base64.b64decode(canonical)
    assert _refusal("any_", other) == "base64"


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("any_", "aHVi\n", "base64"),  # a line break
        ("any_", "aHU", "base64"),  # no padding
        ("any_", "aH-_", "base64"),  # base64url
        ("any_", 1234, "base64"),
        ("sized", base64.b64encode(bytes(15)).decode(), "base64"),
        ("bounded", base64.b64encode(bytes(82)).decode(), "bytes_too_long"),
    ],
)
def test_what_is_refused(field: str, value: object, kind: str) -> None:
    assert _refusal(field, value) == kind


def test_the_schema_states_what_is_checked() -> None:
    properties = Body.model_json_schema()["properties"]
    assert properties["any_"]["description"] == "anything"
    assert properties["bounded"]["maxLength"] == base64_length(81) == 108
    samples = [
        base64.b64encode(os.urandom(size)).decode() for size in (0, 1, 2, 15, 16, 17, 80, 81, 82)
    ]
    samples += [another_spelling(text) for text in samples if text.endswith("=")]
    samples += ["aHU", "aHVi\n", "aH-_", "===="]
    for field, schema in properties.items():
        assert schema["type"] == "string" and schema["contentEncoding"] == "base64"
        for text in samples:
            # Read as a JSON Schema reader reads it (ECMA-262: `$` only at the very end).
            stated = compile_pattern(schema["pattern"])(text)
            stated = stated and len(text) <= schema.get("maxLength", len(text))
            try:
                Body(**{**GOOD, field: text})
            except ValidationError:
                taken = False
            else:
                taken = True
            assert taken == stated, (field, text)


def test_a_limit_base64_cannot_state_is_refused() -> None:
    with pytest.raises(ValueError, match="multiple of 3"):
        StandardBase64(max_bytes=80)
