"""The FastAPI application factory: the routers, error handling, the edge and the background
work (relay, scheduler, revocation refresh) around a `Hub` (hub.composition)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine

from hub import docs, openapi, problems, readiness
from hub.auth import api as auth_api
from hub.auth.delegation import Delegation
from hub.auth.guard import (
    GuardedRoute,
    check_route_guards,
    public,
)
from hub.auth.shortcut import TokenShortcut
from hub.card import api as card_api
from hub.clock import Clock
from hub.composition import Hub, build_hub
from hub.connectors import api as connectors_api
from hub.connectors import deadletters
from hub.connectors.relay import Relay, start_relay, stop_relay
from hub.console import agreements as console_agreements
from hub.console import api as console_api
from hub.console import audit as console_audit
from hub.console import casework as console_casework
from hub.console import changes as console_changes
from hub.console import delegated as console_delegated
from hub.console import exchange as console_exchange
from hub.console import governance as console_governance
from hub.console import office as console_office
from hub.console import signin as console_signin
from hub.console import statistics as console_statistics
from hub.console.pages import STATIC_DIR, problem_page
from hub.console.session import KEY_PURPOSE, ConsoleSessions
from hub.edge import Edge
from hub.jobs import build_scheduler
from hub.ops import metrics, scrape
from hub.ops.observe import Observe
from hub.permits import api as permits_api
from hub.permits import office_api as permits_office_api
from hub.permits import points_api as permits_points_api
from hub.permits import statistics_api as permits_statistics_api
from hub.schemas import api as schemas_api
from hub.settings import ConfigError, Settings, load_settings
from hub.verification import api as verification_api


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None, clock: Clock | None = None
) -> FastAPI:
    settings = settings or load_settings()
    hub = build_hub(settings, engine=engine, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        check_route_guards(app.routes)
        await asyncio.to_thread(hub.prepare)
        froze = keep_for_life()
        refresher = asyncio.create_task(
            hub.auth_state.keep_fresh(settings.revocation_refresh_seconds)
        )
        scheduler = build_scheduler(hub) if settings.scheduler_enabled else None
        if scheduler is not None:
            scheduler.start()
        app.state.scheduler = scheduler
        relay = _start_relay(hub) if settings.relay_enabled else None
        try:
            yield
        finally:
            if froze:
                gc.unfreeze()  # collectable again: an app stopped in a process that goes on
            if relay is not None:
                await asyncio.to_thread(stop_relay, *relay)
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    app = FastAPI(
        title="Permit hub",
        summary="Inter-departmental data-sharing hub for residence permits (居住证)",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # hub.docs serves them, with their assets
        redoc_url=None,
    )
    app.router.route_class = GuardedRoute
    app.state.hub = hub
    app.state.default_language = settings.default_language
    app.state.auth_state = hub.auth_state
    app.state.token_verifier = hub.verifier
    app.state.authorization_server = hub.authorization_server
    app.state.staff_sessions = ConsoleSessions(
        hub.sign_in, hub.keyring.derive(KEY_PURPOSE), settings.staff_idle_seconds
    )
    app.state.delegation = None if settings.staff_oidc is None else Delegation(settings.staff_oidc)
    app.state.problem_page = problem_page
    problems.install(app)
    app.add_middleware(TokenShortcut, server=hub.authorization_server)
    app.add_middleware(
        Edge, limit=settings.max_body_bytes, default_language=settings.default_language
    )
    app.add_middleware(Observe)  # outermost: edge refusals are counted and logged too

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    @public
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    probe = readiness.Probe(hub.engine, hub.keyring.check_value(), settings)

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: database at head, master key, relay lag, scheduler",
        responses={503: {"description": "Not ready: `failed` names the checks that failed"}},
    )
    @public
    async def readyz() -> JSONResponse:
        scheduler = getattr(app.state, "scheduler", None)
        running = scheduler.running if scheduler is not None else None
        found = await asyncio.to_thread(readiness.check, probe, hub.clock.now(), running)
        failed = [c.name for c in found if not c.ok]
        body = {
            "status": "not-ready" if failed else "ready",
            "failed": failed,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in found},
        }
        headers = {"Cache-Control": "no-store"}
        return JSONResponse(body, status_code=503 if failed else 200, headers=headers)

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics: requests, tokens, taps, deliveries, backlog, jobs, audit",
        response_class=Response,
        responses={200: {"content": {metrics.CONTENT_TYPE: {}}}},
    )
    @public
    async def metrics_page() -> Response:
        document = await asyncio.to_thread(scrape.exposition, hub.engine, hub.clock.now())
        return Response(document, media_type=metrics.CONTENT_TYPE)

    @app.get("/problems/{slug}", tags=["operations"], summary="What a problem type means")
    @public
    async def problem_type_page(slug: str) -> dict[str, Any]:
        kind = problems.PROBLEM_TYPES.get(slug)
        if kind is None:
            raise problems.Problem(problems.NOT_FOUND)
        return {
            "type": kind.uri,
            "status": kind.status,
            "title": {"zh-CN": kind.title.zh, "en": kind.title.en},
        }

    # Routes are matched in order, one after the other (a late one costs the walk past every
    # earlier one, 300 µs for the last: bench/observe.py): the probes and the hot paths of
    # the departments' systems first, then the registry, the console last (a person's pace).
    app.include_router(auth_api.router)
    app.include_router(verification_api.router)
    app.include_router(connectors_api.router)
    app.include_router(permits_api.router)
    app.include_router(card_api.router)
    app.include_router(permits_office_api.router)
    app.include_router(permits_points_api.router)
    app.include_router(permits_statistics_api.router)
    app.include_router(schemas_api.router)
    app.include_router(deadletters.router)
    app.include_router(console_signin.router)
    app.include_router(console_delegated.router)
    app.include_router(console_api.router)
    app.include_router(console_governance.router)
    app.include_router(console_changes.router)
    app.include_router(console_agreements.router)
    app.include_router(console_exchange.router)
    app.include_router(console_audit.router)
    app.include_router(console_office.router)
    app.include_router(console_casework.router)
    app.include_router(console_statistics.router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    openapi.install(app, settings.issuer)
    docs.install(app, app.title)

    return app


def keep_for_life() -> bool:
    """Move what the process made to start (modules, routes, models, schemas, the snapshot:
    some 270,000 objects) out of the collector's sight for good. Every full collection walked
    them all, 115-180 ms on a 2-core VM, inside whichever request happened to trigger it:
    the stalls of the taps benchmark at half load (bench/RESULTS.md). Objects made later
    are collected as before; the app's end puts them all back (gc.unfreeze).

    A process whose heap is frozen already is left as its owner froze it, and told so (False):
    one that starts app after app (the tests) froze what it made once, and a full collection
    on every start would cost more than the app it starts."""
    if gc.get_freeze_count():
        return False
    gc.collect()
    gc.freeze()
    return True


def _start_relay(hub: Hub) -> tuple[Relay, threading.Event, threading.Thread]:
    try:
        return start_relay(hub.outbound)
    except ValueError as error:  # a department's secret is missing from the environment
        raise ConfigError(f"the relay cannot start: {error}") from None
