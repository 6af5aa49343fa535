"""Data governance in the console: the exchange schemas as the registry holds them. The pages
read through the schema registry's own service and views, as its API does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from hub.auth.guard import GuardedRoute, principal_of, signed_in
from hub.console.jsonview import json_lines, marked
from hub.console.pages import page_context, render
from hub.db import INT_MAX
from hub.deps import DbSession
from hub.schemas import domain, service, views
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


Subject = Annotated[
    str, Path(pattern=domain.SUBJECT_NAME.pattern, max_length=domain.SUBJECT_NAME_MAX)
]


@router.get("/console/governance/subjects/{subject}")
@signed_in("schemas:admin")
def subject_page(
    request: Request,
    subject: Subject,
    session: DbSession,
    older: Annotated[int | None, Query(alias="from", ge=1, le=INT_MAX)] = None,
    newer: Annotated[int | None, Query(alias="to", ge=1, le=INT_MAX)] = None,
) -> Response:
    """A subject's versions, and two of them side by side (by default the latest and the one
    before): each change that breaks a reader marked at its pointer, in the schema it is in,
    and explained in both languages."""
    row = service.subject_row(session, subject)
    versions = service.versions_of(session, subject)
    latest = versions[-1].version if versions else 1
    newer = newer or latest
    older = older or max(1, newer - 1)
    first, second, changes = service.difference(session, subject, older, newer)
    backward, forward = changes["backward"], changes["forward"]
    return render(
        request,
        "subject.html",
        **page_context(request, principal_of(request)),
        subject=views.subject_view(row, service.compatibility_of(session, row), versions),
        states=STATE_NAMES,
        first=first,
        second=second,
        left=marked(json_lines(first.definition), {c.pointer for c in forward}),
        right=marked(json_lines(second.definition), {c.pointer for c in backward}),
        backward=backward,
        forward=forward,
    )
