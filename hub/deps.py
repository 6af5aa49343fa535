"""FastAPI dependencies shared by every router: the unit of work, the process's hub, and the
types of request values every router reads alike."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BeforeValidator, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, PydanticKnownError, core_schema
from sqlmodel import Session

from hub.composition import Hub
from hub.db import unit_of_work


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


async def current_hub(request: Request) -> Hub:
    """The hub, as a dependency: async, because FastAPI runs a plain function dependency on the
    thread pool, and that hop cost every route that asks for the hub a few percent of a
    registration (profiled)."""
    return hub_of(request)


def request_session(request: Request) -> Iterator[Session]:
    """One unit of work per request.

    Declared with scope="function" below, so the commit happens after the handler returns and
    *before* the response is sent: a failed commit becomes an error response, never a 200 for
    data that was not stored. Any exception in the handler rolls everything back.
    """
    with unit_of_work(hub_of(request).engine) as session:
        yield session


DbSession = Annotated[Session, Depends(request_session, scope="function")]
CurrentHub = Annotated[Hub, Depends(current_hub)]


Result = TypeVar("Result")


async def in_unit_of_work(hub: Hub, work: Callable[[Session], Result]) -> Result:
    """`work` in one unit of work on one worker thread, committed before it returns; for the
    hot routes of an async endpoint. A sync endpoint with DbSession moves the request between
    the event loop and the thread pool three times (open, handle, commit), and each move
    costs about as much as a trivial request's whole handling."""

    def run() -> Result:
        with unit_of_work(hub.engine) as session:
            return work(session)

    return await run_in_threadpool(run)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: object) -> object:
    """A date is "YYYY-MM-DD" and nothing else: pydantic would also take an integer as seconds
    since 1970 (1556668800 for 2019-05-01) and "2019-05-01T00:00:00" as a date, so a value
    meant for another field would pass unnoticed."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise PydanticCustomError("date_type", "Input should be a date in the format YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A calendar date in a body or query; the JSON Schema stays `"format": "date"`."""


_SYMBOL = "[A-Za-z0-9+/]"
# The last symbol before padding carries unused bits, which RFC 4648 §3.5 sets to zero.
_ONE_BYTE_TAIL = f"{_SYMBOL}[AQgw]=="
_TWO_BYTES_TAIL = f"{_SYMBOL}{{2}}[AEIMQUYcgkosw048]="


def _base64_pattern(size: int | None) -> str:
    """Canonical standard base64 (RFC 4648 §4, padded) of any length, or of `size` bytes."""
    if size is None:
        return f"^(?:{_SYMBOL}{{4}})*(?:{_ONE_BYTE_TAIL}|{_TWO_BYTES_TAIL})?$"
    tail = ("", _ONE_BYTE_TAIL, _TWO_BYTES_TAIL)[size % 3]
    return f"^{_SYMBOL}{{{size // 3 * 4}}}{tail}$"


@cache
def _compiled(size: int | None) -> re.Pattern[str]:
    return re.compile(_base64_pattern(size))


def base64_length(max_bytes: int) -> int:
    """The most base64 characters `max_bytes` bytes take (padded to whole groups of 4)."""
    return -(-max_bytes // 3) * 4


@dataclass(frozen=True)
class StandardBase64:
    """Bytes sent as canonical standard base64: of exactly `size` bytes where one is given, of
    at most `max_bytes` where that is.

    pydantic's Base64Bytes documents only `format: base64` and takes what Python's lenient
    decoder takes (it drops characters outside the alphabet, and `validate=True` still lets
    unused bits be set, so one value has several spellings); this states the encoding as a
    pattern and checks exactly that pattern, and the size it states. What the bytes must be
    beyond it (a P-256 point, a PNG or JPEG) the route's service checks, with its own problem
    types. Annotate a `bytes` field with it.
    """

    description: str | None = None
    size: int | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.max_bytes is not None and self.max_bytes % 3:
            # maxLength counts whole groups of 4 symbols, 3 bytes each: it could not state
            # another limit, and a limit checked must be the one stated.
            raise ValueError("max_bytes must be a multiple of 3")

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self._decode)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema: JsonSchemaValue = {
            "type": "string",
            "contentEncoding": "base64",
            "pattern": _base64_pattern(self.size),
        }
        if self.description is not None:
            json_schema["description"] = self.description
        if self.max_bytes is not None:
            json_schema["maxLength"] = base64_length(self.max_bytes)
        return json_schema

    def _decode(self, value: object) -> bytes:
        if not isinstance(value, str) or not _compiled(self.size).fullmatch(value):
            what = "standard base64" if self.size is None else f"{self.size} bytes in base64"
            raise PydanticCustomError("base64", "Input should be {what}", {"what": what})
        data = base64.b64decode(value)
        if self.max_bytes is not None and len(data) > self.max_bytes:
            raise PydanticKnownError("bytes_too_long", {"max_length": self.max_bytes})
        return data
