"""What an acceptance office does under /registry/v1 besides the lifecycle: find a case by
what the person brings, and hand a holder the report of who saw their record.

Both are POSTs, so that a citizen ID never travels in a URL (nor lands in an access log or a
browser's history); a search pages by an opaque cursor sent back in the next body.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from hub import access_report as reports_of_access
from hub import paging
from hub.access_pdf import render
from hub.auth.guard import CurrentActor, GuardedRoute, requires
from hub.composition import Hub
from hub.db import rfc3339
from hub.deps import CurrentHub, DbSession, IsoDate
from hub.permits import reports, search, service
from hub.permits.bodies import citizen_id_at
from hub.permits.identity import (
    CitizenId,
)
from hub.permits.views import (
    AccessReportView,
    CitizenIdText,
    SearchPage,
    WorklistItem,
)
from hub.problems import VALIDATION_FAILED, FieldError, Problem, Text

router = APIRouter(prefix="/registry/v1", tags=["Permit registry"], route_class=GuardedRoute)

PURPOSE = r"^[^\x00-\x1f\x7f]+$"

_ONE_WAY = Text(
    "请给出且只给出一种查找方式：身份证号、受理回执编号、卡号，或姓名加出生日期",
    "Give exactly one way to find the person: citizen_id, receipt_number, card_serial,"
    " or name with birth_date",
)


WAYS: Final = (("citizen_id",), ("receipt_number",), ("card_serial",), ("name", "birth_date"))
"""The ways of finding a person: exactly one, each member given with a value."""


def _exactly_one_way(schema: dict[str, Any]) -> None:
    members = [member for way in WAYS for member in way]
    schema["oneOf"] = [
        {
            "required": list(way),
            "not": {"anyOf": [{"required": [m]} for m in members if m not in way]},
        }
        for way in WAYS
    ]
    schema["examples"] = [
        {"citizen_id": "11010519491231002X", "purpose": "窗口办理：签注"},
        {"name": "王芳", "birth_date": "1949-12-31", "purpose": "群众来电查询进度"},
    ]


Short = Annotated[str, Field(min_length=1, max_length=32, pattern=PURPOSE)]
NotNull = SkipJsonSchema[None]  # absent is fine; null is not, and the check refuses it


class SearchBody(BaseModel):
    model_config = {"extra": "forbid", "json_schema_extra": _exactly_one_way}

    citizen_id: CitizenIdText | NotNull = None
    receipt_number: Short | NotNull = None
    card_serial: Short | NotNull = None
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=PURPOSE)] | NotNull = None
    birth_date: IsoDate | NotNull = None
    purpose: str = Field(
        min_length=2,
        max_length=200,
        pattern=PURPOSE,
        description="Why the office looks (a case, a call, a counter visit): kept in the audit",
    )
    after: str | None = Field(
        default=None, max_length=36, pattern=PURPOSE, description="`next` of the page before"
    )
    limit: int = Field(default=search.PAGE_DEFAULT, ge=1, le=search.PAGE_MAX)

    def check_one_way(self) -> None:
        """Exactly one of WAYS, wholly, with values (a name with its birth date: names
        repeat), as the schema's oneOf says."""
        given = self.model_fields_set
        chosen = [way for way in WAYS if given & set(way)]
        if len(chosen) != 1 or not all(getattr(self, m) is not None for m in chosen[0]):
            raise Problem(VALIDATION_FAILED, _ONE_WAY, errors=[FieldError(_ONE_WAY, pointer="")])


def _citizen_id_hash(hub: Hub, text: str) -> tuple[str, CitizenId]:
    citizen_id = citizen_id_at(text, hub.clock.today(), "/citizen_id")
    return hub.vault.lookup_hash(citizen_id), citizen_id


@router.post(
    "/search",
    summary="Find registrations and permits in your jurisdictions (audited with its purpose)",
    responses={
        200: {"model": SearchPage},
        403: {"description": "Your account serves no jurisdiction (no-jurisdiction)"},
        422: {"description": "Not exactly one way of finding, or an invalid citizen ID"},
    },
)
@requires("registry:read")
def find(
    actor: CurrentActor, body: SearchBody, session: DbSession, hub: CurrentHub
) -> JSONResponse:
    body.check_one_way()
    id_hash = None
    if body.citizen_id is not None:
        id_hash, _ = _citizen_id_hash(hub, body.citizen_id)
    criteria = search.Criteria(
        id_hash, body.receipt_number, body.card_serial, body.name, body.birth_date
    )
    found = search.find(
        session,
        hub.audit,
        criteria,
        purpose=body.purpose,
        after=body.after,
        limit=body.limit,
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
    return JSONResponse({"hits": hits, "next": found.after}, headers={"Cache-Control": "no-store"})


class AccessReportBody(BaseModel):
    model_config = {
        "extra": "forbid",
        "json_schema_extra": {
            "examples": [
                {
                    "citizen_id": "11010519491231002X",
                    "since": "2026-01-01",
                    "until": "2026-12-31",
                    "purpose": "持证人本人申请查询（受理号 2026-0451）",
                }
            ]
        },
    }

    citizen_id: CitizenIdText
    since: IsoDate
    until: IsoDate
    purpose: str = Field(
        min_length=2,
        max_length=200,
        pattern=PURPOSE,
        description="Why the report is made (the holder's request): kept in the audit",
    )


PDF = "application/pdf"


@router.post(
    "/access-reports",
    summary="A holder's access report: every disclosure of their record (audited)",
    description=(
        "Every push, feed page, look-up, tap, registry read and audit search that disclosed"
        " the holder's record in the period (China dates, both included), with the fields"
        " each let out. With `Accept: application/pdf`, the printable report to hand over."
    ),
    responses={
        200: {
            "model": AccessReportView,
            "content": {PDF: {"schema": {"type": "string", "format": "binary"}}},
        },
        403: {"description": "Your account serves no jurisdiction (no-jurisdiction)"},
        422: {"description": "An invalid citizen ID, or a period backwards or too long"},
    },
)
@requires("registry:read")
def access_report(
    request: Request,
    actor: CurrentActor,
    body: AccessReportBody,
    session: DbSession,
    hub: CurrentHub,
) -> Response:
    reports_of_access.check_period(body.since, body.until)
    search.served_by(session, actor.client_id)
    holder, citizen_id = _citizen_id_hash(hub, body.citizen_id)
    now = hub.clock.now()
    report = reports_of_access.holder_report(
        session,
        hub.audit,
        hub.departments,
        holder,
        body.since,
        body.until,
        purpose=body.purpose,
        actor=actor,
        now=now,
    )
    headers = {"Cache-Control": "no-store"}
    if PDF in request.headers.get("accept", ""):
        pdf = render(
            report,
            masked_id=citizen_id.masked(),
            office=actor.client_id,
            purpose=body.purpose,
            issued_at=now,
        )
        disposition = f'attachment; filename="access-report-{body.since}-{body.until}.pdf"'
        return Response(
            pdf, media_type=PDF, headers={**headers, "Content-Disposition": disposition}
        )
    view = {
        "citizen_id": citizen_id.masked(),
        "since": body.since.isoformat(),
        "until": body.until.isoformat(),
        "issued_at": rfc3339(now),
        "disclosures": [
            {
                "at": rfc3339(item.at),
                "channel": item.channel,
                "department": item.department,
                "client": item.client,
                "purpose": item.purpose,
                "agreement": item.agreement,
                "agreement_version": item.agreement_version,
                "fields": list(item.fields) if item.fields is not None else None,
            }
            for item in report.disclosures
        ],
    }
    return JSONResponse(view, headers=headers)


# --- the worklist of third parties' reports [CF §6-9] ----------------------------------------


@router.get(
    "/worklist",
    summary="People reported by employers or landlords who have not registered (audited)",
    description=(
        "Open reports in your jurisdictions, the earliest declaration due first (so the"
        " overdue lead): who (the ID masked), where, reported by whom and when, and by when"
        " the person must declare [CF §10]. " + paging.DESCRIPTION
    ),
    responses={200: {"model": list[WorklistItem], "headers": paging.LINK_HEADER}},
)
@requires("registry:read")
def read_worklist(
    request: Request,
    actor: CurrentActor,
    session: DbSession,
    hub: CurrentHub,
    after: paging.After = None,
    limit: paging.Limit = paging.PAGE_DEFAULT,
) -> JSONResponse:
    served = search.served_by(session, actor.client_id)
    key = None
    if after is not None:
        due, report_id = paging.parts(after, 2)
        key = (paging.date_part(due), report_id)
    page, more = reports.worklist(
        session, hub.audit, served, after=key, limit=limit, actor=actor, now=hub.clock.now()
    )
    today = hub.clock.today()
    items = [
        {
            "id": row.id,
            "kind": row.kind,
            "jurisdiction": row.jurisdiction,
            "name": row.name,
            "citizen_id": hub.vault.open(row.citizen_id_sealed).masked(),
            "address": row.address,
            "region": row.region,
            "reported_by": row.organisation_name,
            "reporter_role": row.reporter_role,
            "occurred_on": row.occurred_on.isoformat(),
            "received_at": rfc3339(row.received_at),
            "reported_late": row.reported_late,
            "declare_by": row.declare_by.isoformat() if row.declare_by else None,
            "overdue": row.declare_by is not None and row.declare_by < today,
        }
        for row in page
    ]
    headers = {"Cache-Control": "no-store"}
    if more:
        last = page[-1]
        cursor = paging.cursor(last.declare_by or date.max, last.id)
        headers.update(paging.next_link(request, cursor, limit))
    return JSONResponse(items, headers=headers)
