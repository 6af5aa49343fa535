"""The outermost ASGI middleware: each HTTP request runs in its trace (hub.ops.trace), is
counted and timed by route template (hub.ops.metrics), and leaves one access-log line.

The access line names the method, the route's template, the status, the time taken and the
caller's address; never the path as sent or the query string, which could carry a value a
caller should not have put there. The answer carries `X-Request-Id` (the trace id), which is
what an operator greps the logs for.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.ops import metrics, trace

access_log = logging.getLogger("hub.access")
UNMATCHED = "unmatched"  # refused at the edge, or no route: one label, not one per path
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method(sent: str) -> str:
    """A method label: a client may send any token as its method, and each would otherwise
    be a series of its own (and an entry in _series) for as long as the process lives."""
    return sent if sent in METHODS else "OTHER"


def route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parent = next((v for k, v in scope["headers"] if k == b"traceparent"), b"")
        status = 500  # unless an answer starts: an exception that escapes is a server error

        with trace.tracing(trace.continued(parent.decode("latin-1"))) as active:
            request_id = active.trace_id.encode()

            async def answering(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [
                        *message.get("headers", ()),
                        (b"x-request-id", request_id),
                    ]
                await send(message)

            started = time.perf_counter()
            try:
                await self.app(scope, receive, answering)
            finally:
                elapsed = time.perf_counter() - started
                method, route = _method(scope["method"]), route_of(scope)
                counted, timed = _series(method, route, status)
                counted.inc()
                timed.observe(elapsed)
                if access_log.isEnabledFor(logging.INFO):  # no fields built for nothing
                    _log_access(scope, method, route, status, elapsed)


@functools.cache
def _series(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request counter and the latency histogram of one (method, route template, status):
    looking a labelled series up costs a lock and a dictionary on every request, and there
    are only as many as the routes and the statuses they answer (paths are not labels)."""
    return metrics.REQUESTS.labels(method, route, str(status)), metrics.LATENCY.labels(
        method, route
    )


def _log_access(scope: Scope, method: str, route: str, status: int, elapsed: float) -> None:
    client = scope.get("client")
    access_log.info(
        "%s %s %s",
        method,
        route,
        status,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 3),
            "client": client[0] if client else None,
        },
    )
