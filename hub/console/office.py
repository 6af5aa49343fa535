"""The acceptance office in the console: find a case, the holder's page with the actions the
state machine allows now, the worklist of people reported by third parties, a holder's access
report to print, and the statistics as charts. Every page calls the same use cases as the
registry API (hub.permits.*), so every read is audited the same way and a refusal is the same
problem."""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from hub import access_pdf, access_report
from hub.audit import Actor
from hub.auth.guard import GuardedRoute, actor_of, principal_of, signed_in
from hub.auth.store import jurisdictions_of
from hub.composition import Hub
from hub.console.pages import (
    SECURITY_HEADERS,
    page_context,
    posted_form,
    posted_number,
    render,
)
from hub.db import unit_of_work
from hub.deps import DbSession
from hub.permits import domain, reports, scoring, search, service
from hub.permits.bodies import citizen_id_at
from hub.permits.store import Proof
from hub.problems import VALIDATION_FAILED, Problem
from hub.text import Text

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
PAGE: Final = "/console/office"
SHOWN: Final = 50
ACTIONS: Final = {
    domain.Action.ISSUE: Text("发证", "Issue"),
    domain.Action.ENDORSE: Text("签注（或恢复）", "Endorse (or restore)"),
    domain.Action.REPLACE: Text("补领（遗失）", "Replace (lost)"),
    domain.Action.RENEW: Text("换领（损坏）", "Renew (damaged)"),
    domain.Action.SETTLE: Text("落户收回", "Settle here"),
}
"""The actions a clerk performs from the holder's page (cancellation and address change have
forms of their own in the API)."""


def _criteria(hub: Hub, form: dict[str, str]) -> search.Criteria:
    """The way of finding the clerk filled in: the first given, in the form's order."""
    if form.get("citizen_id"):
        citizen_id = citizen_id_at(form["citizen_id"].strip(), hub.clock.today(), "/citizen_id")
        return search.Criteria(citizen_id_hash=hub.vault.lookup_hash(citizen_id))
    if form.get("receipt_number"):
        return search.Criteria(receipt_number=form["receipt_number"].strip()[:32])
    if form.get("card_serial"):
        return search.Criteria(card_serial=form["card_serial"].strip()[:32])
    if form.get("name") and form.get("birth_date"):
        try:
            born = date.fromisoformat(form["birth_date"])
        except ValueError:
            raise Problem(VALIDATION_FAILED, Text("出生日期无效", "Not a date")) from None
        return search.Criteria(name=form["name"].strip()[:64], birth_date=born)
    raise Problem(
        VALIDATION_FAILED,
        Text(
            "请填写身份证号、受理回执编号、卡号，或姓名加出生日期",
            "Fill in a citizen ID, a receipt number, a card serial, or a name with a birth date",
        ),
    )


def _purpose(form: dict[str, str]) -> str:
    purpose = form.get("purpose", "").strip()
    if not 2 <= len(purpose) <= 200 or not purpose.isprintable():
        raise Problem(
            VALIDATION_FAILED,
            Text("请填写查询事由（2 至 200 字）", "Say why you look (2 to 200 characters)"),
        )
    return purpose


@router.get(PAGE)
@signed_in("registry:read")
def office_page(request: Request, session: DbSession) -> Response:
    principal = principal_of(request)
    return render(
        request,
        "office.html",
        **page_context(request, principal),
        served=sorted(jurisdictions_of(session, principal.client_id)),
        hits=None,
    )


@router.post(PAGE + "/search")
@signed_in("registry:read")
async def office_search(request: Request) -> Response:
    form = await posted_form(request)
    hub: Hub = request.app.state.hub
    criteria, purpose = _criteria(hub, form), _purpose(form)
    actor = actor_of(request)
    hits = await run_in_threadpool(_search, hub, actor, criteria, purpose)
    principal = principal_of(request)
    return render(
        request,
        "office.html",
        **page_context(request, principal),
        served=sorted(hits[1]),
        hits=hits[0],
    )


def _search(
    hub: Hub, actor: Actor, criteria: search.Criteria, purpose: str
) -> tuple[list[dict[str, Any]], frozenset[str]]:
    with unit_of_work(hub.engine) as session:
        found = search.find(
            session,
            hub.audit,
            criteria,
            purpose=purpose,
            after=None,
            limit=SHOWN,
            actor=actor,
            now=hub.clock.now(),
        )
        hits = [
            {
                "registration": service.registration_view(hit.registration, hub.vault),
                "permits": [service.view(permit) for permit in hit.permits],
            }
            for hit in found.hits
        ]
        return hits, jurisdictions_of(session, actor.client_id)


@router.get(PAGE + "/permits/{permit_id}")
@signed_in("registry:read")
def holder_page(request: Request, permit_id: str, session: DbSession) -> Response:
    """Registration, proofs on file, the permit and its card, its events, residence on a date
    (`?on=`), and the actions its state allows now: one audited read of each."""
    hub: Hub = request.app.state.hub
    actor, now = actor_of(request), hub.clock.now()
    permit = service.read_permit(session, hub.audit, permit_id, "permit", actor=actor, now=now)
    registration = service.read_registration(
        session, hub.audit, permit.registration_id, actor=actor, now=now
    )
    asked = request.query_params.get("on", "")
    try:
        day = date.fromisoformat(asked) if asked else hub.clock.today()
    except ValueError:
        day = hub.clock.today()
    on_file = select(Proof).where(
        col(Proof.citizen_id_hash) == permit.citizen_id_hash, col(Proof.revoked_at).is_(None)
    )
    proofs = list(session.exec(on_file.order_by(col(Proof.valid_from))).all())
    view = service.view(permit)
    place = hub.jurisdictions[permit.jurisdiction]
    points = (
        scoring.holder_points(session, hub.audit, permit, place, day, actor=actor, now=now)
        if place.points
        else None
    )
    return render(
        request,
        "holder.html",
        **page_context(request, principal_of(request)),
        registration=service.registration_view(registration, hub.vault),
        permit=view,
        proofs=proofs,
        events=service.events_of(session, permit.id),
        residence=service.residence_of(session, permit, day),
        on=day.isoformat(),
        actions=[
            (a, ACTIONS[a])
            for a in domain.Action
            if a in ACTIONS and a.value in view["allowed_actions"]
        ],
        done=request.query_params.get("done"),
        reasons=place.cancellation,
        points=points,
    )


@router.post(PAGE + "/permits/{permit_id}/act")
@signed_in("registry:write")
async def act(request: Request, permit_id: str) -> Response:
    """One lifecycle action, with the version the clerk saw as its If-Match: a page read
    before another clerk's change is refused (412), not applied over it."""
    form = await posted_form(request)
    try:
        action = domain.Action(form.get("action", ""))
    except ValueError:
        raise Problem(VALIDATION_FAILED, Text("未知的办理事项", "Not an action")) from None
    if action not in ACTIONS:
        raise Problem(VALIDATION_FAILED, Text("未知的办理事项", "Not an action"))
    version = posted_number(form.get("version", ""), Text("版本号无效", "Not a version"))
    hub: Hub = request.app.state.hub
    await run_in_threadpool(_perform, hub, actor_of(request), permit_id, action, version)
    return RedirectResponse(
        f"{PAGE}/permits/{permit_id}?done={action.value}", status_code=303, headers=SECURITY_HEADERS
    )


def _perform(hub: Hub, actor: Actor, permit_id: str, action: domain.Action, version: int) -> None:
    with unit_of_work(hub.engine) as session:
        service.perform(
            session,
            hub.lifecycle,
            permit_id,
            action,
            expected_version=version,
            actor=actor,
            now=hub.clock.now(),
            today=hub.clock.today(),
        )


@router.get(PAGE + "/worklist")
@signed_in("registry:read")
def worklist_page(request: Request, session: DbSession) -> Response:
    hub: Hub = request.app.state.hub
    principal = principal_of(request)
    served = search.served_by(session, principal.client_id)
    rows, more = reports.worklist(
        session,
        hub.audit,
        served,
        after=None,
        limit=SHOWN,
        actor=actor_of(request),
        now=hub.clock.now(),
    )
    return render(
        request,
        "worklist.html",
        **page_context(request, principal),
        rows=rows,
        more=more,
        masked=lambda row: hub.vault.open(row.citizen_id_sealed).masked(),
        today=hub.clock.today(),
    )


@router.post(PAGE + "/access-report")
@signed_in("registry:read")
async def access_report_pdf(request: Request) -> Response:
    """The holder's access report as the PDF to print and hand over, audited."""
    form = await posted_form(request)
    hub: Hub = request.app.state.hub
    citizen_id = citizen_id_at(form.get("citizen_id", "").strip(), hub.clock.today(), "/citizen_id")
    try:
        since, until = (
            date.fromisoformat(form.get("since", "")),
            date.fromisoformat(form.get("until", "")),
        )
    except ValueError:
        raise Problem(
            VALIDATION_FAILED, Text("请填写起止日期", "Give the period's dates")
        ) from None
    access_report.check_period(since, until)
    purpose = _purpose(form)
    pdf = await run_in_threadpool(
        _report, hub, actor_of(request), citizen_id, since, until, purpose
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="access-report-{since}-{until}.pdf"',
        },
    )


def _report(
    hub: Hub, actor: Actor, citizen_id: Any, since: date, until: date, purpose: str
) -> bytes:
    with unit_of_work(hub.engine) as session:
        search.served_by(session, actor.client_id)
        holder = hub.vault.lookup_hash(citizen_id)
        now = hub.clock.now()
        report = access_report.holder_report(
            session,
            hub.audit,
            hub.departments,
            holder,
            since,
            until,
            purpose=purpose,
            actor=actor,
            now=now,
        )
        return access_pdf.render(
            report,
            masked_id=citizen_id.masked(),
            office=actor.client_id,
            purpose=purpose,
            issued_at=now,
        )
