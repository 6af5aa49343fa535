"""A JSON document pretty-printed line by line, each line with the JSON pointer (RFC 6901) of
the value it opens, so a page can mark the lines a change is about."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Line:
    pointer: str
    text: str


def _escaped(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def json_lines(document: Any) -> list[Line]:
    """The lines of `json.dumps(document, indent=2, ensure_ascii=False)`, with pointers."""
    return _lines(document, "", 0, "", "")


def _lines(value: Any, pointer: str, depth: int, label: str, comma: str) -> list[Line]:
    pad = "  " * depth
    if isinstance(value, dict) and value:
        members = [
            (f"{pointer}/{_escaped(k)}", json.dumps(k, ensure_ascii=False) + ": ", v)
            for k, v in value.items()
        ]
        opening, closing = "{", "}"
    elif isinstance(value, list) and value:
        members = [(f"{pointer}/{index}", "", item) for index, item in enumerate(value)]
        opening, closing = "[", "]"
    else:
        return [Line(pointer, f"{pad}{label}{json.dumps(value, ensure_ascii=False)}{comma}")]
    lines = [Line(pointer, f"{pad}{label}{opening}")]
    for index, (child, child_label, item) in enumerate(members):
        last = index == len(members) - 1
        lines += _lines(item, child, depth + 1, child_label, "" if last else ",")
    lines.append(Line(pointer, f"{pad}{closing}{comma}"))
    return lines


def marked(lines: list[Line], pointers: set[str]) -> list[tuple[Line, bool, bool]]:
    """Each line; whether it lies at or under one of `pointers`; and whether it is the first
    line of its pointer (the one a link to the pointer lands on)."""
    seen: set[str] = set()
    result = []
    for line in lines:
        hit = any(line.pointer == p or line.pointer.startswith(p + "/") for p in pointers)
        result.append((line, hit, line.pointer not in seen))
        seen.add(line.pointer)
    return result
