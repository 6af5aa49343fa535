"""The acceptance office's search under /registry/v1: find a case by what the person brings.

A POST, so that a citizen ID never travels in a URL (nor lands in an access log or a
browser's history); the answer pages by an opaque cursor sent back in the next body.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from hub.auth.guard import CurrentActor, GuardedRoute, requires
from hub.deps import CurrentHub, DbSession, IsoDate
from hub.permits import search, service
from hub.permits.identity import InvalidCitizenId, citizen_id_problem, parse_citizen_id
from hub.permits.views import CitizenIdText, SearchPage
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
        try:
            citizen_id = parse_citizen_id(body.citizen_id, today=hub.clock.today())
        except InvalidCitizenId as error:
            raise citizen_id_problem(error, "/citizen_id") from None
        id_hash = hub.vault.lookup_hash(citizen_id)
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
