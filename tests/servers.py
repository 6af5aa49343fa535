"""Real servers on loopback for tests: a free port, and an ASGI app served by uvicorn in a
thread of the test process (a department's receiver, the hub itself for a window agent)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackServer:
    """`app` on 127.0.0.1 at its own port until `stop`; `start` again serves it anew."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.start(may_move=port is None)

    def start(self, *, may_move: bool = False) -> None:
        """Serve, and wait for the app's start (30 s: the whole suite runs beside it, in
        another worker). A port of our own choosing that another process took between
        free_port and the bind (parallel workers pick ports at once) is chosen again."""
        for attempt in range(3):
            config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
            self.server = uvicorn.Server(config)
            self.thread = threading.Thread(target=self.server.run, daemon=True)
            self.thread.start()
            deadline = time.monotonic() + 30
            while not self.server.started and self.thread.is_alive():
                assert time.monotonic() < deadline, "the server did not start in 30 s"
                time.sleep(0.02)
            if self.server.started:
                return
            assert may_move and attempt < 2, f"the server could not serve on port {self.port}"
            self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
