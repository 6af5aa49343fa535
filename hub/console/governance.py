"""Data governance in the console: the exchange schemas as the registry holds them. The pages
read through the schema registry's own service and views, as its API does."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hub.auth.guard import GuardedRoute, principal_of, signed_in
from hub.console.pages import page_context, render
from hub.deps import DbSession
from hub.schemas import service, views
from hub.text import Text

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)

STATE_NAMES = {
    "DRAFT": Text("草稿", "Draft"),
    "ACTIVE": Text("使用中", "Active"),
    "DEPRECATED": Text("已弃用", "Deprecated"),
    "RETIRED": Text("已停用", "Retired"),
}


@router.get("/console/governance")
@signed_in("schemas:admin")
def subjects_page(request: Request, session: DbSession) -> Response:
    """Every subject with its compatibility mode and its versions' states."""
    subjects = [
        views.subject_view(
            row, service.compatibility_of(session, row), service.versions_of(session, row.name)
        )
        for row in service.subjects(session)
    ]
    return render(
        request,
        "governance.html",
        **page_context(request, principal_of(request)),
        subjects=subjects,
        states=STATE_NAMES,
    )
