"""Routes of the exchange with the departments under /exchange/v1."""

from __future__ import annotations

from fastapi import APIRouter

from hub.auth.guard import GuardedRoute

router = APIRouter(prefix="/exchange/v1", tags=["Exchange"], route_class=GuardedRoute)
