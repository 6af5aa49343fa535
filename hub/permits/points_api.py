"""The points scheme under /registry/v1: a holder's indicators with their evidence (and score,
where the city's published table is configured), and the ranking for a rationed service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from hub.auth.guard import CurrentActor, GuardedRoute, requires
from hub.auth.store import jurisdictions_of
from hub.deps import CurrentHub, DbSession, IsoDate
from hub.permits import scoring, service
from hub.permits.jurisdictions import Jurisdiction
from hub.permits.store import Permit
from hub.permits.views import PointsView, RankedView

router = APIRouter(prefix="/registry/v1", tags=["Permit registry"], route_class=GuardedRoute)

_UNPUBLISHED = {
    "zh": "本地积分分值表尚未公布（或未配置），只列出积分指标，不计分值",
    "en": "The city's points table is not published (or not configured): indicators only, no score",
}


def _points_view(permit: Permit, place: Jurisdiction, found: scoring.HolderPoints) -> JSONResponse:
    table, score = found.table, found.score
    scheme = place.points
    assert scheme is not None
    view = {
        "permit_id": permit.id,
        "jurisdiction": permit.jurisdiction,
        "on": found.on.isoformat(),
        "scheme_cite": scheme.cite,
        "indicators": [
            {
                "indicator": measure.indicator,
                "months": measure.months,
                "whole_years": measure.whole_years,
                "evidence": [
                    {
                        "source": item.source,
                        "id": item.id,
                        "kind": item.kind,
                        "department": item.department,
                        "valid_from": item.valid_from.isoformat(),
                        "valid_to": item.valid_to.isoformat() if item.valid_to else None,
                        "months": item.months,
                    }
                    for item in measure.evidence
                ],
            }
            for measure in found.measures
        ],
        "table_published": table is not None,
        "table": None
        if table is None
        else {
            "cite": table.cite,
            "weights": [
                {"indicator": w.indicator, "per_year": w.per_year, "max_points": w.max_points}
                for w in table.weights
            ],
            "services": [service.code for service in table.services],
        },
        "score": None
        if score is None
        else {"total": score.total, "by_indicator": score.by_indicator},
        "note": None if table else _UNPUBLISHED,
    }
    return JSONResponse(view)


@router.get(
    "/permits/{permit_id}/points",
    summary="The holder's points indicators, with their evidence (audited)",
    description=(
        "Years of residence, employment and social insurance [NB 三(三)], computed from the"
        " registry and the proofs on file on the date asked (default today). A score only where"
        " the city's published points table is configured; otherwise `table_published` is false"
        " and `note` says so: no number is invented."
    ),
    responses={
        200: {"model": PointsView},
        404: {"description": "No such permit, or no points scheme in its jurisdiction"},
    },
)
@requires("registry:read")
def permit_points(
    actor: CurrentActor,
    permit_id: str,
    session: DbSession,
    hub: CurrentHub,
    on: Annotated[IsoDate | None, Query(description="The date asked about; default today")] = None,
) -> JSONResponse:
    permit = service.permit_of(session, permit_id)
    place = hub.jurisdictions[permit.jurisdiction]
    day = on or hub.clock.today()
    found = scoring.holder_points(
        session, hub.audit, permit, place, day, actor=actor, now=hub.clock.now()
    )
    return _points_view(permit, place, found)


@router.get(
    "/points-rankings/{jurisdiction}/{service_code}",
    summary="Valid permits ranked for a service rationed by score (audited)",
    description=(
        "Highest score first, ties by longer continuous residence, then by the earlier start."
        " Only in a jurisdiction you serve, and only where its published table names the"
        " service."
    ),
    responses={
        200: {"model": list[RankedView]},
        404: {"description": "Not a jurisdiction you serve, no table, or not a rationed service"},
    },
)
@requires("registry:read")
def points_ranking(
    actor: CurrentActor,
    jurisdiction: Annotated[str, Path(max_length=64, pattern=r"^[a-z][a-z0-9-]*$")],
    service_code: Annotated[str, Path(max_length=64, pattern=r"^[a-z][a-z0-9-]*$")],
    session: DbSession,
    hub: CurrentHub,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    place = hub.jurisdictions.get(jurisdiction)
    if place is None or jurisdiction not in jurisdictions_of(session, actor.client_id):
        raise scoring.PointsUnavailable(
            "您未受理该辖区的业务", "You serve no jurisdiction by this code"
        )
    ranked = scoring.ranking(
        session,
        hub.audit,
        place,
        service_code,
        hub.clock.today(),
        limit,
        actor=actor,
        now=hub.clock.now(),
    )
    return JSONResponse(
        [
            {
                "rank": index,
                "permit_id": entry.permit.id,
                "receipt_number": entry.permit.receipt_number,
                "score": entry.score.total,
                "residence_months": entry.residence_months,
            }
            for index, entry in enumerate(ranked, start=1)
        ]
    )
