"""What the metrics and trace middleware (hub.ops.observe.Observe) and route matching cost a
request.

    .venv/bin/python bench/observe.py [--requests 20000] [--rounds 7] [--no-record]

Every request the hub answers passes Observe: a trace continued or started, the answer's
X-Request-Id, a counter and a latency histogram by route template, and (only when the access
log is on) one log line. The hub app is called in this process as an ASGI application, with
no network and no server between, so what is timed is the app's own CPU per request:

1. GET /healthz through the hub's app as it is built (create_app), and through the same app
   with Observe taken out of its middleware (the rest of the stack, the edge included, stays);
2. the floor: the same requests to an ASGI app that answers 200 at once, bare and inside
   Observe, which is Observe's cost with nothing else around it.

3. Route matching: Starlette and FastAPI try the routes one after the other, so a route's
   place in the list is part of its cost. The hot paths of the departments' systems, each
   refused for want of credentials (a short problem answer), and a path no route
   takes (404: every route tried), which is what the last route registered costs.

Variants alternate within each round; the figure is each variant's median over the rounds.
prometheus-client runs in its multiprocess mode (PROMETHEUS_MULTIPROC_DIR set), as under
`hub serve`, where each counter update writes to a memory-mapped file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/...py`: bench/ is on the path, not the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# As `hub serve` does, before prometheus_client is first imported (by the hub's modules).
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hub-bench-metrics-")

from bench import common
from bench.common import _bounded_int
from hub.app import create_app
from hub.ops.observe import Observe
from hub.settings import load_settings

SCRIPT = "bench/observe.py"
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/healthz",
    "raw_path": b"/healthz",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


ROUTED = {
    "POST /oauth/token": 400,  # no grant_type
    "POST /verification/v1/taps": 401,
    "POST /exchange/v1/lookup": 401,
    "POST /registry/v1/registrations": 401,
    "GET /no/such/path": 404,
}
"""Requests of the route-matching rows and the status each must get."""


def _timed(app: App, requests: int, request: str = "GET /healthz", status: int = 200) -> float:
    """Microseconds per request of `requests` sequential calls; checks every answer's status."""
    method, path = request.split(" ")
    scope = {**SCOPE, "method": method, "path": path, "raw_path": path.encode()}
    if method == "POST":
        form = path == "/oauth/token"
        kind = b"application/x-www-form-urlencoded" if form else b"application/json"
        scope["headers"] = [*SCOPE["headers"], (b"content-type", kind)]
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def calls() -> float:
        started = time.perf_counter()
        for _ in range(requests):
            await app(dict(scope), _receive, send)
        return time.perf_counter() - started

    seconds = asyncio.run(calls())
    if set(statuses) != {status} or len(statuses) != requests:
        raise common.BenchError(f"{request}: answers other than {status}: {sorted(set(statuses))}")
    return seconds / requests * 1e6


def _without_observe(settings: Any) -> App:
    app = create_app(settings)
    kept = [entry for entry in app.user_middleware if entry.cls is not Observe]  # type: ignore[comparison-overlap]
    app.user_middleware = kept
    return app


def run(args: argparse.Namespace, argv: Sequence[str], database: common.Database) -> int:
    common.scratch_hub(database).prepare()
    settings = load_settings()
    variants: dict[str, App] = {
        "the hub's app": create_app(settings),
        "the hub's app without Observe": _without_observe(settings),
        "floor: an app that answers at once": _bare,
        "floor: that app inside Observe": Observe(_bare),  # type: ignore[arg-type]
    }
    hub_app = variants["the hub's app"]
    for app in variants.values():  # warm-up: middleware stacks built, code paths taken once
        _timed(app, 200)
    for request, status in ROUTED.items():
        _timed(hub_app, 200, request, status)
    timings: dict[str, list[float]] = {name: [] for name in [*variants, *ROUTED]}
    for _ in range(args.rounds):
        for name, app in variants.items():
            timings[name].append(_timed(app, args.requests))
        for request, status in ROUTED.items():
            timings[request].append(_timed(hub_app, args.requests, request, status))
    median = {name: statistics.median(values) for name, values in timings.items()}
    whole, without = median["the hub's app"], median["the hub's app without Observe"]
    bare, observed = (
        median["floor: an app that answers at once"],
        median["floor: that app inside Observe"],
    )
    rows = [
        ("GET /healthz, in process", "µs per request (median)", "min", "max"),
        *(
            (name, f"{median[name]:.1f}", f"{min(values):.1f}", f"{max(values):.1f}")
            for name, values in timings.items()
            if name in variants
        ),
    ]
    routed = [
        ("through the hub's app, in process", "µs per request (median)", "min", "max"),
        *(
            (name, f"{median[name]:.1f}", f"{min(values):.1f}", f"{max(values):.1f}")
            for name, values in timings.items()
            if name in ROUTED
        ),
    ]
    section = "\n".join(
        [
            *common.header("The metrics and trace middleware", SCRIPT, argv, database),
            f"- {args.rounds} rounds of {args.requests:,} sequential requests per variant,"
            " variants alternating; prometheus-client in multiprocess mode, as under `hub serve`",
            "",
            *common.markdown_table(rows),
            "",
            f"- Observe costs {whole - without:.1f} µs a request in the hub's app"
            f" ({(whole - without) / whole:.0%} of an in-process /healthz), and"
            f" {observed - bare:.1f} µs around an app that does nothing.",
            "",
            *common.markdown_table(routed),
            "",
            f"- A path no route takes costs {median['GET /no/such/path'] - whole:.0f} µs more"
            " than /healthz, the first route: the walk past every route, which is what a"
            " route registered last pays. The hot paths come first (hub/app.py).",
        ]
    )
    print(section)
    if not args.no_record:
        common.record(args.results, SCRIPT, database.key, section)
    return 0


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=SCRIPT, description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    common.record_options(parser)
    parser.add_argument(
        "--requests", type=_bounded_int(100, 10_000_000), default=20_000, help="(20,000)"
    )
    parser.add_argument("--rounds", type=_bounded_int(1, 101), default=7, help="(7)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_on_scratch(SCRIPT, command_line(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
