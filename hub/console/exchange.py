"""Exchange health in the console: each push department's circuit and backlog, the dead
letters, and their replay once the receiver is back. Read and replayed through the same
operations as the exchange API (hub.connectors.operations), within the person's department."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.audit import Actor
from hub.auth.guard import GuardedRoute, actor_of, principal_of, signed_in
from hub.clock import CHINA
from hub.connectors import operations
from hub.connectors.views import DepartmentDeliveries
from hub.console import charts
from hub.console.pages import (
    SECURITY_HEADERS,
    language_of,
    page_context,
    posted_form,
    posted_number,
    render,
)
from hub.db import unit_of_work
from hub.deps import DbSession
from hub.text import Text

if TYPE_CHECKING:
    from hub.composition import Hub

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
PAGE = "/console/exchange"
SHOWN_DEAD_LETTERS = 200
CIRCUIT_STATES = {
    "closed": Text("正常", "Up"),
    "open": Text("故障（等待探测）", "Failing (waiting to probe)"),
    "probing": Text("故障（探测中）", "Failing (probing)"),
}


def china_time(moment: str | None) -> str:
    """An RFC 3339 time as the clock on a Chinese office wall shows it."""
    if moment is None:
        return "—"
    return datetime.fromisoformat(moment).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def shown_state(department: DepartmentDeliveries, now: datetime) -> str:
    """The circuit as staff read it: an open circuit whose probe is due is being probed (the
    relay sends one delivery to see whether the receiver is back)."""
    due = department.next_probe_at
    if department.state == "open" and due is not None and datetime.fromisoformat(due) <= now:
        return "probing"
    return department.state


def age(seconds: int | None) -> Text:
    """How long the oldest delivery has waited, as a person says it."""
    if seconds is None:
        return Text("—", "—")
    if seconds < 120:
        return Text(f"{seconds} 秒", f"{seconds} s")
    if seconds < 7200:
        return Text(f"{seconds // 60} 分钟", f"{seconds // 60} min")
    return Text(f"{seconds // 3600} 小时", f"{seconds // 3600} h")


@router.get(PAGE)
@signed_in("exchange:admin")
def exchange_page(request: Request, session: DbSession) -> Response:
    hub = request.app.state.hub
    scope, now = operations.scope_of(principal_of(request)), hub.clock.now()
    departments = operations.push_departments(hub.departments, scope)
    last_hour = operations.deliveries_per_minute(session, departments, now)
    return render(
        request,
        "exchange.html",
        last_hour={department: sum(counts) for department, counts in last_hour.items()},
        **page_context(request, principal_of(request)),
        departments=operations.department_health(session, hub.departments, scope, now),
        dead=operations.dead_letters(session, scope, None, SHOWN_DEAD_LETTERS),
        states=CIRCUIT_STATES,
        shown_state=lambda department: shown_state(department, now),
        china_time=china_time,
        age=age,
        replayed=request.query_params.get("replayed"),
    )


@router.get(PAGE + "/deliveries.svg")
@signed_in("exchange:admin")
def deliveries_chart(request: Request, session: DbSession) -> Response:
    """Deliveries per minute to each department in the person's scope, the last hour."""
    hub = request.app.state.hub
    departments = operations.push_departments(
        hub.departments, operations.scope_of(principal_of(request))
    )
    now = hub.clock.now()
    title = Text("每分钟投递数（最近 60 分钟）", "Deliveries per minute (last 60 minutes)")
    svg = charts.per_minute(
        title.in_(language_of(request)),
        operations.deliveries_per_minute(session, departments, now),
        now,
    )
    return Response(svg, media_type="image/svg+xml", headers=SECURITY_HEADERS)


@router.post(PAGE + "/replay")
@signed_in("exchange:admin")
async def replay(request: Request) -> Response:
    """One dead letter (`event` and `department`), or every one the person may see (`all`)."""
    form = await posted_form(request)
    scope = operations.scope_of(principal_of(request))
    event = form.get("event")
    keys = (
        None
        if event is None
        else [
            (
                posted_number(event, Text("事件编号无效", "Not an event number")),
                form.get("department", ""),
            )
        ]
    )
    count = await run_in_threadpool(_replay, request.app.state.hub, actor_of(request), scope, keys)
    return RedirectResponse(f"{PAGE}?replayed={count}", status_code=303, headers=SECURITY_HEADERS)


def _replay(hub: Hub, actor: Actor, scope: str | None, keys: list[tuple[int, str]] | None) -> int:
    with unit_of_work(hub.engine) as session:
        chosen = keys if keys is not None else operations.dead_letter_keys(session, scope, None)
        return operations.replay(session, hub.audit, actor, hub.clock.now(), chosen, scope)
