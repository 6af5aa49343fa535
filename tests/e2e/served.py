"""The hub served on its own loopback port for a browser: its issuer that address (the console's
redirect URI is made from it), speaking Chinese unless the browser asks otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine

from hub.app import create_app
from hub.clock import FixedClock
from hub.composition import Hub
from hub.settings import Settings
from tests.servers import LoopbackServer, free_port


@contextmanager
def served(
    settings: Settings, engine: Engine, clock: FixedClock, port: int | None = None, **update: Any
) -> Iterator[tuple[Hub, str]]:
    """The hub and its address; `update` changes settings besides the issuer and language."""
    port = port or free_port()
    changed = {"issuer": f"http://127.0.0.1:{port}", "default_language": "zh-CN", **update}
    app = create_app(settings.model_copy(update=changed), engine=engine, clock=clock)
    server = LoopbackServer(app, port)
    try:
        yield app.state.hub, server.url
    finally:
        server.stop()
