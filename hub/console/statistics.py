"""The statistics for assessment as a dashboard: a few charts drawn by the hub (pygal) from the
same figures the statistics API answers (hub.statistics), and the CSV to download."""

from __future__ import annotations

from collections import defaultdict
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hub import statistics
from hub.auth.guard import GuardedRoute, actor_of, principal_of, signed_in
from hub.composition import Hub
from hub.console import charts
from hub.console.pages import SECURITY_HEADERS, language_of, page_context, render
from hub.deps import DbSession
from hub.permits.search import served_by
from hub.text import Text

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
PAGE: Final = "/console/statistics"
CHARTS: Final = {
    "registrations": Text("每月居住登记", "Registrations per month"),
    "issuance": Text("每月发证：按期与逾期", "Permits issued per month: on time and late"),
    "taps": Text("每月窗口核验：通过与拒绝", "Window decisions per month: granted and denied"),
}


def _period(hub: Hub) -> statistics.Period:
    """The twelve months up to this one, in China."""
    today = hub.clock.today()
    year, month = (today.year, 1) if today.month == 12 else (today.year - 1, today.month + 1)
    return statistics.Period(f"{year:04d}-{month:02d}", f"{today:%Y-%m}")


def _months(period: statistics.Period) -> list[str]:
    year, month = map(int, period.first.split("-"))
    out = []
    while f"{year:04d}-{month:02d}" <= period.last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _figures(
    request: Request, session: DbSession, only: tuple[str, ...] = tuple(statistics.FIGURES)
) -> statistics.Figures:
    """The figures a page or chart shows (a chart computes its own one alone), the read
    audited like the API's."""
    hub: Hub = request.app.state.hub
    served = served_by(session, principal_of(request).client_id)
    period = _period(hub)
    figures = statistics.compute(session, period, sorted(served), only)
    statistics.record_read(session, hub.audit, actor_of(request), period, hub.clock.now())
    return figures


@router.get(PAGE)
@signed_in("registry:read")
def statistics_page(request: Request, session: DbSession) -> Response:
    figures = _figures(request, session)
    totals = {
        name: sum(int(row.get("count", row.get("issued", 0)) or 0) for row in rows)
        for name, rows in figures.tables.items()
        if name != "issued_late"
    }
    return render(
        request,
        "statistics.html",
        **page_context(request, principal_of(request)),
        period=figures.period,
        served=figures.jurisdictions,
        totals=totals,
        late=figures.tables["issued_late"],
        charts=CHARTS,
    )


@router.get(PAGE + ".csv")
@signed_in("registry:read")
def statistics_csv(request: Request, session: DbSession) -> Response:
    figures = _figures(request, session)
    name = f"statistics-{figures.period.first}-{figures.period.last}.csv"
    return Response(
        statistics.as_csv(figures),
        media_type="text/csv; charset=utf-8",
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(PAGE + "/{chart}.svg")
@signed_in("registry:read")
def statistics_chart(request: Request, chart: str, session: DbSession) -> Response:
    if chart not in CHARTS:
        return Response(status_code=404, headers=SECURITY_HEADERS)
    figures = _figures(request, session, (chart,))
    months = _months(figures.period)
    series: dict[str, list[float]] = {}
    language = language_of(request)
    if chart == "registrations":
        by_place: dict[str, dict[str, int]] = defaultdict(dict)
        for row in figures.tables["registrations"]:
            by_place[row["jurisdiction"]][row["month"]] = row["count"]
        series = {place: [counts.get(m, 0) for m in months] for place, counts in by_place.items()}
    elif chart == "issuance":
        on_time: dict[str, int] = defaultdict(int)
        late: dict[str, int] = defaultdict(int)
        for row in figures.tables["issuance"]:
            on_time[row["month"]] += row["on_time"]
            late[row["month"]] += row["late"]
        series = {
            Text("按期", "On time").in_(language): [on_time[m] for m in months],
            Text("逾期", "Late").in_(language): [late[m] for m in months],
        }
    else:
        decided: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for row in figures.tables["taps"]:
            decided[row["decision"]][row["month"]] += row["count"]
        names = {"grant": Text("通过", "Granted"), "deny": Text("拒绝", "Denied")}
        series = {
            names.get(decision, Text(decision, decision)).in_(language): [counts[m] for m in months]
            for decision, counts in decided.items()
        }
    svg = charts.per_month(
        CHARTS[chart].in_(language), months, series, stacked=chart != "registrations"
    )
    return Response(svg, media_type="image/svg+xml", headers=SECURITY_HEADERS)
