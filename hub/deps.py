"""FastAPI dependencies shared by every router: the unit of work and the process's hub."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
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
