"""Lists that can grow are read a page at a time: `limit` items after the cursor `after`, and a
`Link: <...>; rel="next"` header (RFC 8288) while there are more. The body stays the list a
client read before paging existed; a client that ignores the header reads the first page.

A cursor is the sort key of the last item of a page, so a page never skips nor repeats an
item whatever is added meanwhile (keyset paging). Composite keys are joined by "~", which
neither a date, an id nor a department code holds.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final

from fastapi import Query, Request

from hub.problems import VALIDATION_FAILED, FieldError, Problem, Text

PAGE_DEFAULT: Final = 100
PAGE_MAX: Final = 1000
SEPARATOR: Final = "~"

DESCRIPTION: Final = (
    'While more items follow, the `Link` header\'s `rel="next"` URL reads the next page;'
    " without it, this page is the last."
)
LINK_HEADER: Final = {
    "Link": {"description": 'rel="next": the next page, if any', "schema": {"type": "string"}}
}
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="At most this many items")]
After = Annotated[
    str | None,
    Query(
        max_length=128,
        pattern=r"^[0-9A-Za-z._~-]+$",
        description='The cursor of the page before: take it from the `Link: rel="next"` URL',
    ),
]


def next_link(request: Request, after: str, limit: int) -> dict[str, str]:
    """The header that points at the page after the one whose last cursor is `after`."""
    following = request.url.include_query_params(after=after, limit=limit)
    return {"Link": f'<{following}>; rel="next"'}


def cursor(*parts: object) -> str:
    return SEPARATOR.join(str(part) for part in parts)


_NOT_A_CURSOR = Text("翻页游标无效，请使用上一页给出的链接", "Not a cursor this list gave")


def _refused() -> Problem:
    return Problem(
        VALIDATION_FAILED, _NOT_A_CURSOR, errors=[FieldError(_NOT_A_CURSOR, parameter="after")]
    )


def parts(after: str, count: int) -> list[str]:
    """The `count` parts of a cursor; a 422 pointing at `after` if it has another shape."""
    pieces = after.split(SEPARATOR)
    if len(pieces) != count or not all(pieces):
        raise _refused()
    return pieces


def date_part(text: str) -> date:
    """A date part of a cursor (ISO 8601); a 422 pointing at `after` if it is none."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _refused() from None


def int_part(text: str) -> int:
    """A sequence-number part of a cursor; a 422 pointing at `after` if it is none."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise _refused()
    return int(text)
