"""The audit log in the console, for auditors (scope audit:read): search by holder, actor,
department, action and period, page by page, export a search as CSV, and verify the chain.

A citizen ID typed in is posted, never put in a URL (browser history, proxy logs), parsed and
turned into its keyed hash at once; the pages and links carry only the hash."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub import audit_search
from hub.audit import Actor, AuditEntry
from hub.audit_search import AuditQuery
from hub.auth.domain import Department
from hub.auth.guard import GuardedRoute, actor_of, principal_of, signed_in
from hub.console.pages import SECURITY_HEADERS, page_context, posted_form, render
from hub.db import INT_MAX, unit_of_work
from hub.permits.identity import InvalidCitizenId, parse_citizen_id
from hub.problems import VALIDATION_FAILED, FieldError, Problem
from hub.publishing.disclosures import Disclosure, disclosures
from hub.text import Text

if TYPE_CHECKING:
    from hub.composition import Hub

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
PAGE: Final = "/console/audit"
PAGE_SIZE: Final = 50
CSV_LIMIT: Final = 10_000
HASH = r"^[0-9a-f]{64}$"
Name = Annotated[str | None, Query(max_length=128, pattern=r"^[\x21-\x7e]*$")]


def _query(
    subject: Annotated[str | None, Query(pattern=HASH)] = None,
    actor: Name = None,
    department: Department | None = None,
    action: Name = None,
    since: Annotated[date | None, Query(alias="from")] = None,
    until: Annotated[date | None, Query(alias="to")] = None,
) -> AuditQuery:
    return AuditQuery(subject, actor, department and department.value, action, since, until)


Cursor = Annotated[int | None, Query(ge=1, le=INT_MAX)]


Criteria = Annotated[AuditQuery, Depends(_query)]


@router.get(PAGE)
@signed_in("audit:read")
async def audit_page(request: Request, query: Criteria, before: Cursor = None) -> Response:
    hub: Hub = request.app.state.hub
    entries, next_cursor, verified, disclosed = await run_in_threadpool(
        _search, hub, actor_of(request), query, before, PAGE_SIZE
    )
    criteria = {k: v for k, v in request.query_params.items() if k not in ("before", "lang")}
    next_page = f"{PAGE}?{urlencode({**criteria, 'before': next_cursor})}" if next_cursor else None
    return render(
        request,
        "audit.html",
        **page_context(request, principal_of(request)),
        query=query,
        entries=entries,
        disclosed=disclosed,
        next_page=next_page,
        csv_link=f"{PAGE}.csv?{urlencode(criteria)}",
        verified=verified,
        departments=[d.value for d in Department],
    )


def _search(
    hub: Hub, actor: Actor, query: AuditQuery, before: int | None, limit: int
) -> tuple[list[AuditEntry], int | None, AuditEntry | None, dict[int, Disclosure]]:
    with unit_of_work(hub.engine) as session:
        entries, cursor = audit_search.search(session, query, before=before, limit=limit)
        audit_search.record_search(session, hub.audit, actor, query, len(entries), hub.clock.now())
        verified = audit_search.last_verification(session)
        disclosed = disclosures(session, hub.departments, entries)
        session.expunge_all()
    return list(entries), cursor, verified, disclosed


@router.post(PAGE + "/search")
@signed_in("audit:read")
async def search_form(request: Request) -> Response:
    """The search form, posted: the citizen ID becomes its hash before anything else."""
    form = await posted_form(request)
    criteria = {
        name: form[name].strip()
        for name in ("actor", "department", "action", "from", "to")
        if form.get(name, "").strip()
    }
    typed = form.get("holder", "").strip()
    if typed:
        hub: Hub = request.app.state.hub
        try:
            number = parse_citizen_id(typed, today=hub.clock.today())
        except InvalidCitizenId:
            raise Problem(
                VALIDATION_FAILED,
                Text("居民身份证号码无效", "Not a valid citizen ID number"),
                errors=[FieldError(Text("请检查号码", "Check the number"), pointer="/holder")],
            ) from None
        criteria["subject"] = hub.vault.lookup_hash(number)
    return RedirectResponse(
        f"{PAGE}?{urlencode(criteria)}", status_code=303, headers=SECURITY_HEADERS
    )


@router.get(PAGE + ".csv")
@signed_in("audit:read")
async def audit_csv(request: Request, query: Criteria) -> Response:
    """The search's entries (up to 10,000, newest first) as CSV; the export is audited."""
    hub: Hub = request.app.state.hub
    entries, _, _, disclosed = await run_in_threadpool(
        _search, hub, actor_of(request), query, None, CSV_LIMIT
    )
    body = audit_search.as_csv(entries, disclosed)
    headers = {**SECURITY_HEADERS, "Content-Disposition": 'attachment; filename="audit.csv"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.post(PAGE + "/verify")
@signed_in("audit:read")
async def verify(request: Request) -> Response:
    """Verify the whole chain now; the page then shows the outcome and when."""
    hub: Hub = request.app.state.hub
    actor = actor_of(request)

    def run() -> str:
        with unit_of_work(hub.engine) as session:
            return audit_search.verify_chain(session, hub.audit, actor, hub.clock.now())

    await run_in_threadpool(run)
    return RedirectResponse(PAGE, status_code=303, headers=SECURITY_HEADERS)
