"""Real OS processes for the delivery fault tests, and the entry points they run.

The fault tests need what an in-process test cannot give: a relay or a receiver that dies
with SIGKILL (no `finally`, no flush, leases left behind), a server that stops answering on a
port and another that takes the port over. So every party runs as its own process group on
127.0.0.1, started through `Processes`, which kills every group it started when the test ends
(a leaked receiver would hold its port and its SQLite file for the next test).

Healthy receivers are the shipped `hub department serve` (started by the tests); this
module's `main` runs what the console script cannot: a relay with a fault-test policy
(seconds, not the production minutes of backoff and lease), a receiver that fails or answers
slowly, and a raw socket server that closes connections or never answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
HUB = str(Path(sys.executable).parent / "hub")
HERE = str(Path(__file__).resolve())
RELAY_READY = "fault-test relay ready"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.05
) -> Any:
    """Poll `condition` until it returns something truthy (returned); fail naming `what`.
    Every wait in the fault tests is bounded, so a lost event fails in seconds, not never."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Process:
    """One started process (its own session and process group), with its output in a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._out: IO[bytes] = log.open("ab")
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: the process gets no chance to finish anything."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):  # it may die between the lines
                os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        self._out.close()

    def output(self, last: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-last:]


class Processes:
    """Starts the test's processes and kills every one of them at the end."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.started: list[Process] = []

    def start(self, name: str, *argv: str) -> Process:
        process = Process(name, list(argv), self.env, self.logs / f"{name}.log")
        self.started.append(process)
        return process

    def receiver(
        self,
        department: str,
        port: int,
        store: Path,
        *,
        fail_with: int | None = None,
        answer_after: float = 0.0,
    ) -> Process:
        """The reference receiver with a fault: refusing everything, or answering late."""
        argv = [sys.executable, HERE, "receiver", department, str(port), str(store)]
        if fail_with is not None:
            argv += ["--fail-with", str(fail_with)]
        argv += ["--answer-after", str(answer_after)]
        process = self.start(f"{department}-{port}-faulty", *argv)
        self.wait_healthy(process, port)
        return process

    def misbehaving(self, name: str, port: int) -> Process:
        """A raw socket server that closes every other connection and hangs on the rest."""
        process = self.start(name, sys.executable, HERE, "misbehaving", str(port))

        def listening() -> bool:
            assert process.alive, process.output()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
            return True

        wait_for(listening, f"{name} to listen on {port}", timeout=20)
        return process

    def relay(
        self,
        name: str,
        *,
        lease_seconds: float = 3.0,
        batch_size: int = 20,
        timeout_seconds: float = 2.0,
    ) -> Process:
        argv = [sys.executable, HERE, "relay", "--lease", str(lease_seconds)]
        argv += ["--batch", str(batch_size), "--timeout", str(timeout_seconds)]
        process = self.start(name, *argv)
        wait_for(
            lambda: RELAY_READY in process.output() or not process.alive,
            f"{name} to start",
            timeout=30,
        )
        assert process.alive, process.output()
        return process

    def wait_healthy(self, process: Process, port: int) -> None:
        def healthy() -> bool:
            assert process.alive, f"{process.name} exited:\n{process.output()}"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success
            except httpx.TransportError:
                return False

        wait_for(healthy, f"{process.name} to answer", timeout=30)

    def close(self) -> None:
        for process in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):  # one stuck: kill the rest
                process.kill()


# --- entry points of the processes (python tests/connectors/processes.py ...) ----------------


def _run_relay(args: argparse.Namespace) -> None:
    """A relay with the fault-test policy: short lease, timeout and retry waits, never dead."""
    from hub.composition import build_hub
    from hub.connectors.config import RetrySchedule
    from hub.connectors.relay import Relay, RelayPolicy
    from hub.settings import load_settings

    hub = build_hub(load_settings())
    hub.check_database()
    policy = RelayPolicy(
        batch_size=args.batch,
        lease_seconds=args.lease,
        timeout_seconds=args.timeout,
        # Faults here last seconds: probes within a second, and no dead letter for half an hour.
        retry_schedule=RetrySchedule.model_validate([0.1, 0.2, 0.4, *[0.8] * 2000]),
    )
    relay = Relay(hub.outbound, policy=policy)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"{RELAY_READY}: {relay.worker}", file=sys.stderr, flush=True)
    try:
        relay.run(stop, idle_seconds=0.05)
    finally:
        relay.close()


def _run_receiver(args: argparse.Namespace) -> None:
    """The reference receiver, failing every delivery or answering each `answer_after` late
    (after it has stored the record: a relay killed meanwhile never learns it arrived)."""
    import uvicorn

    from hub.auth.domain import Department
    from hub.connectors.config import load_departments
    from hub.connectors.receiver import create_receiver
    from hub.settings import load_settings

    links = load_departments(load_settings().departments_file)
    secret = links[Department(args.department)].secret()
    app = create_receiver(args.department, secret, Path(args.store), fail_with=args.fail_with)
    delay = args.answer_after

    async def late(scope: Any, receive: Any, send: Any) -> None:
        async def send_late(message: Any) -> None:
            if message["type"] == "http.response.start" and scope["path"].startswith("/webhooks"):
                await asyncio.sleep(delay)
            await send(message)

        await app(scope, receive, send_late if scope["type"] == "http" else send)

    uvicorn.run(late, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


def _run_misbehaving(args: argparse.Namespace) -> None:
    """Accept every connection; close the odd ones at once after reading the request, and keep
    the even ones open without a byte of answer (the relay's timeout must end them)."""
    server = socket.create_server(("127.0.0.1", args.port), reuse_port=False, backlog=128)
    held: list[socket.socket] = []
    accepted = 0
    while True:
        connection, _ = server.accept()
        accepted += 1
        if accepted % 2:
            connection.settimeout(1)
            with contextlib.suppress(OSError):
                connection.recv(65536)
            connection.close()
        else:
            held.append(connection)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog="processes")
    commands = parser.add_subparsers(dest="command", required=True)
    relay = commands.add_parser("relay")
    relay.add_argument("--lease", type=float, required=True)
    relay.add_argument("--batch", type=int, required=True)
    relay.add_argument("--timeout", type=float, required=True)
    receiver = commands.add_parser("receiver")
    receiver.add_argument("department")
    receiver.add_argument("port", type=int)
    receiver.add_argument("store")
    receiver.add_argument("--fail-with", type=int)
    receiver.add_argument("--answer-after", type=float, default=0.0)
    misbehaving = commands.add_parser("misbehaving")
    misbehaving.add_argument("port", type=int)
    args = parser.parse_args()
    {"relay": _run_relay, "receiver": _run_receiver, "misbehaving": _run_misbehaving}[args.command](
        args
    )


if __name__ == "__main__":
    main()
