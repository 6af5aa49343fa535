"""Statistics for assessment under /registry/v1 [NB 四(二)][NN 五(三)]: JSON, or CSV with
`Accept: text/csv`, for the jurisdictions the caller serves (hub.statistics)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from hub import statistics
from hub.auth.guard import CurrentActor, GuardedRoute, requires
from hub.auth.store import jurisdictions_of
from hub.deps import CurrentHub, DbSession
from hub.permits.search import NoJurisdiction
from hub.permits.views import StatisticsView
from hub.problems import VALIDATION_FAILED, FieldError, Problem, Text

router = APIRouter(prefix="/registry/v1", tags=["Permit registry"], route_class=GuardedRoute)

MONTH: Final = r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$"
MAX_MONTHS: Final = 36
CSV: Final = "text/csv"


def _period(first: str, last: str) -> statistics.Period:
    span = (int(last[:4]) - int(first[:4])) * 12 + int(last[5:]) - int(first[5:])
    if span < 0 or span >= MAX_MONTHS:
        wording = Text(
            f"统计期间须从早到晚，且不超过 {MAX_MONTHS} 个月",
            f"The period runs forward and spans at most {MAX_MONTHS} months",
        )
        raise Problem(VALIDATION_FAILED, wording, errors=[FieldError(wording, parameter="to")])
    return statistics.Period(first, last)


@router.get(
    "/statistics",
    summary="Statistics for assessment, by jurisdiction and month (JSON or CSV)",
    description=(
        "Registrations; applications accepted and refused by reason; permits by state;"
        " issuance within the deadline (share, and the late ones by receipt number);"
        " endorsements, restorations, suspensions, cancellations; window decisions by"
        " department, service and decision; holder records pushed, looked up and read from the"
        " feed, by department. Only the jurisdictions you serve (look-ups and feed reads are"
        " hub-wide counts). `Accept: text/csv` for one long table."
    ),
    responses={
        200: {
            "model": StatisticsView,
            "content": {CSV: {"schema": {"type": "string"}}},
        },
        403: {"description": "Your account serves no jurisdiction (no-jurisdiction)"},
        422: {"description": "A period backwards or longer than three years"},
    },
)
@requires("registry:read")
def read_statistics(
    request: Request,
    actor: CurrentActor,
    session: DbSession,
    hub: CurrentHub,
    first: Annotated[str, Query(alias="from", pattern=MONTH, description="First month, YYYY-MM")],
    last: Annotated[str, Query(alias="to", pattern=MONTH, description="Last month, YYYY-MM")],
    jurisdiction: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9-]*$")] = None,
) -> Response:
    period = _period(first, last)
    served = jurisdictions_of(session, actor.client_id)
    if jurisdiction is not None:
        served = served & {jurisdiction}
    if not served:
        raise NoJurisdiction()
    figures = statistics.compute(session, period, sorted(served))
    statistics.record_read(session, hub.audit, actor, period, hub.clock.now())
    if CSV in request.headers.get("accept", ""):
        filename = f"statistics-{period.first}-{period.last}.csv"
        return Response(
            statistics.as_csv(figures),
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return JSONResponse(
        {
            "from": period.first,
            "to": period.last,
            "jurisdictions": list(figures.jurisdictions),
            "figures": figures.tables,
        }
    )
