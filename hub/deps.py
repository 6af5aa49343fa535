"""FastAPI dependencies shared by every router: the unit of work, the process's hub, and the
types of request values every router reads alike."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date
from typing import TYPE_CHECKING, Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError
from sqlmodel import Session

from hub.db import unit_of_work

if TYPE_CHECKING:
    from hub.app import Hub


def current_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def request_session(request: Request) -> Iterator[Session]:
    """One unit of work per request.

    Declared with scope="function" below, so the commit happens after the handler returns and
    *before* the response is sent: a failed commit becomes an error response, never a 200 for
    data that was not stored. Any exception in the handler rolls everything back.
    """
    with unit_of_work(current_hub(request).engine) as session:
        yield session


DbSession = Annotated[Session, Depends(request_session, scope="function")]
CurrentHub = Annotated["Hub", Depends(current_hub)]


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
