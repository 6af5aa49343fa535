"""Tokens issued per second, and the cost of the scope guard against the same route unguarded.

    .venv/bin/python bench/tokens.py [--duration S] [--rounds N] [--warmup S]
                                     [--concurrency C] [--database-url URL] [--check]

Needs wrk (Debian package `wrk`). Why it is built this way:

- The server is real: uvicorn with ONE worker, started here as a subprocess on 127.0.0.1 and a
  free port, pinned to one CPU with taskset, so "tokens per second per core" means what it
  says. An in-process test client would measure the test client.
- The load generator is wrk (C, one thread) pinned to the other CPU: a Python client on one
  core is slower than the server and would be the thing measured. wrk runs for a duration,
  not a request count, hence --duration rather than a request count.
- Every figure is also a ratio against a baseline measured in the same run (GET /bench/open),
  because absolute rates move with the machine while ratios mostly do not. Open and guarded
  rounds alternate (AB, BA, ...) and send the same Authorization header, so the only
  difference between them is the guard (and one more route to match before /bench/guarded,
  about 1 µs, which errs against the guard). The figure is the median of the per-round
  ratios; rounds are short and many because on a virtual machine the speed of a core jumps
  by tens of percent for seconds at a time, and short neighbouring rounds share that state.
  The token is obtained once per round and reused, as clients do.
- The machine may be shared. CPU accounting from /proc says how much of the server's core
  other work took; rates are given per second of core the server actually had ("per core"),
  and wall-clock rates beside them. A round during which other processes were busy anywhere
  on the machine is measured again, within a bound; the least disturbed rounds are used and
  the report says how disturbed they were.
- Everything is bounded: a fixed number of attempts of fixed duration, and the server and the
  scratch database (PostgreSQL: `hub_bench_<pid>`) are removed at the end, also on failure.

The results go to bench/RESULTS.md, one section per database, replaced on each run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import platform
import resource
import secrets
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
from fastapi import FastAPI

from hub.app import build_hub, create_app
from hub.auth.guard import public, requires
from hub.auth.service import NewClient, add_client
from hub.db import unit_of_work
from hub.migrate import upgrade
from hub.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
CONFIG = ROOT / "config" / "hub.toml"
RESULTS = ROOT / "bench" / "RESULTS.md"
SCOPE = "registry:read"
TARGET_GUARD_OVERHEAD = 0.15  # guarded requests at most 15% slower than open ones
TARGET_TOKENS_PER_CORE = 1_000.0  # client_secret_basic, one server worker on one core
SATURATED = 0.90  # server CPU share below this: the server was not the bottleneck
CLIENT_BUSY = 0.90  # wrk CPU share above this: the load generator may have been the bottleneck
DISTURBED = 0.10  # other processes busy above this share of one CPU: the round is disturbed
MAX_ATTEMPTS_PER_ROUND = 3  # disturbed rounds are measured again, up to rounds x this
CLOCK_TICK = os.sysconf("SC_CLK_TCK")

# wrk takes its request from this script; the shape comes from the environment so one script
# serves all three endpoints. `done` prints one machine-readable line for the parser below.
WRK_SCRIPT = """\
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then wrk.body = body end
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization then wrk.headers["Authorization"] = authorization end
local content_type = os.getenv("BENCH_CONTENT_TYPE")
if content_type then wrk.headers["Content-Type"] = content_type end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_RESULT %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class BenchError(Exception):
    """The benchmark could not produce a trustworthy figure; the message says why."""


def bench_app() -> FastAPI:
    """The product app plus two benchmark-only routes that differ only by the scope guard.

    They are added here rather than in hub/ so the product never exposes benchmark routes.
    Both return the same small JSON through the same response path.
    """
    app = create_app()

    @app.get("/bench/open", include_in_schema=False)
    @public
    async def bench_open() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/bench/guarded", include_in_schema=False)
    @requires(SCOPE)
    async def bench_guarded() -> dict[str, str]:
        return {"status": "ok"}

    return app


# --- database ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    url: str
    key: str  # "sqlite" or "postgresql": names the RESULTS.md section
    title: str
    description: str


def _postgres_url(url: str) -> str:
    """psycopg 3 is the only PostgreSQL driver installed; SQLAlchemy's default is psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@contextlib.contextmanager
def scratch_database(url: str | None, workdir: Path) -> Iterator[Database]:
    """A fresh database for one run: a SQLite file in `workdir`, or a PostgreSQL database
    `hub_bench_<pid>` created next to the one named by `url` and dropped afterwards."""
    if url is None:
        yield Database(
            f"sqlite:///{workdir / 'hub.db'}", "sqlite", "SQLite", "SQLite, a fresh file"
        )
        return
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    parsed = make_url(_postgres_url(url))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        yield Database(url, "sqlite", "SQLite", f"SQLite, {parsed.database}")
        return
    if backend != "postgresql":
        raise BenchError(f"--database-url must be sqlite:/// or postgresql://, not {backend}")
    if parsed.host not in (None, "127.0.0.1", "localhost", "::1"):
        raise BenchError("the benchmark loads only this machine: use a 127.0.0.1 database")
    name = f"hub_bench_{os.getpid()}"
    admin = sa.create_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            version = connection.exec_driver_sql("SHOW server_version").scalar()
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        where = f"{parsed.host or 'local socket'}:{parsed.port or 5432}"
        try:
            yield Database(
                parsed.set(database=name).render_as_string(hide_password=False),
                "postgresql",
                "PostgreSQL",
                f"PostgreSQL {str(version).split()[0]} on {where}, scratch database {name}",
            )
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def register_client() -> NewClient:
    """Migrate, create the signing key and register a client_secret_basic client, as
    `hub db upgrade` and `hub clients add` do, with the settings the server will read."""
    settings = load_settings()
    upgrade(settings.database_url)
    hub = build_hub(settings)
    try:
        hub.prepare()
        with unit_of_work(hub.engine) as session:
            return add_client(
                session,
                hub.audit,
                hub.keyring.derive("client-secret"),
                hub.clock.now(),
                department="housing",
                scopes=[SCOPE],
            )
    finally:
        hub.engine.dispose()


# --- server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def pick_cpus() -> tuple[int | None, int | None]:
    """Server on one CPU, wrk on another, when taskset and two CPUs are available."""
    cpus = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None or len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def pinned(command: list[str], cpu: int | None) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


@contextlib.contextmanager
def running_server(
    env: dict[str, str], port: int, cpu: int | None, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """One uvicorn worker serving `bench_app`, as `hub serve` would (access log off)."""
    command = pinned(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.tokens:bench_app",
            "--factory",
            "--host",
            HOST,
            "--port",
            str(port),
            "--app-dir",
            str(ROOT),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cpu,
    )
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_ready(server, f"http://{HOST}:{port}/healthz", log_path)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_ready(server: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"the server exited ({server.returncode}):\n{log_path.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"the server did not answer {url} within 60 s:\n{log_path.read_text()}")


# --- load --------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def children_cpu_seconds() -> float:
    """CPU time of finished children: around one wrk run, that run's CPU time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def busy_seconds() -> dict[str, float]:
    """Non-idle time of each CPU and of all ("cpu"), stolen time included, from /proc/stat."""
    busy = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu"):
            name, *ticks = line.split()
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, ticks[:8])
            busy[name] = (user + nice + system + irq + softirq + steal) / CLOCK_TICK
    return busy


@dataclass(frozen=True)
class Target:
    """One request shape that wrk repeats."""

    name: str
    method: str
    path: str
    authorization: str
    body: str = ""
    content_type: str = ""

    def wrk_env(self) -> dict[str, str]:
        env = {"BENCH_METHOD": self.method, "BENCH_AUTHORIZATION": self.authorization}
        if self.body:
            env["BENCH_BODY"] = self.body
        if self.content_type:
            env["BENCH_CONTENT_TYPE"] = self.content_type
        return env


@dataclass(frozen=True)
class Round:
    """One wrk run and what the CPUs did meanwhile."""

    requests: int
    seconds: float  # as wrk measured it
    wall: float  # around the wrk process, its start-up and exit included
    p50_ms: float
    p99_ms: float
    server_cpu: float  # CPU seconds of the server process
    client_cpu: float  # CPU seconds of wrk
    core_busy: float  # busy seconds of the server's CPU, whatever ran there (0 if unpinned)
    machine_busy: float  # busy seconds of all CPUs together

    @property
    def rate(self) -> float:
        """Requests per wall-clock second."""
        return self.requests / self.seconds

    @property
    def core_rate(self) -> float:
        """Requests per second of core the server had: its per-core capacity.

        Another process running on the server's core lowers `rate` but not this; on a quiet
        core the two are equal.
        """
        taken = max(0.0, self.core_busy - self.server_cpu)
        return self.requests / max(self.seconds - taken, self.server_cpu, 1e-9)

    @property
    def server_share(self) -> float:
        return self.server_cpu / self.wall

    @property
    def client_share(self) -> float:
        return self.client_cpu / self.wall

    @property
    def core_others(self) -> float:
        """Share of the server's core taken by other processes, the kernel or the hypervisor."""
        return max(0.0, self.core_busy - self.server_cpu) / self.wall

    @property
    def machine_others(self) -> float:
        """CPUs' worth of work that was neither the server nor wrk. On a virtual machine a
        busy neighbouring vCPU slows the server even when its own core looks free."""
        return max(0.0, self.machine_busy - self.server_cpu - self.client_cpu) / self.wall


@dataclass(frozen=True)
class Load:
    wrk: str
    script: Path
    base_url: str
    concurrency: int
    server_pid: int
    server_core: int | None
    client_core: int | None

    def run(self, target: Target, seconds: int) -> Round:
        """One wrk run against the live server; any error or non-2xx answer voids the run."""
        command = pinned(
            [
                self.wrk,
                "--threads",
                "1",
                "--connections",
                str(self.concurrency),
                "--duration",
                f"{seconds}s",
                "--timeout",
                "10s",
                "--script",
                str(self.script),
                self.base_url + target.path,
            ],
            self.client_core,
        )
        server_before, client_before = process_cpu_seconds(self.server_pid), children_cpu_seconds()
        busy_before, started = busy_seconds(), time.monotonic()
        done = subprocess.run(
            command,
            env={**os.environ, **target.wrk_env()},
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
        wall, busy = time.monotonic() - started, busy_seconds()
        server_cpu = process_cpu_seconds(self.server_pid) - server_before
        client_cpu = children_cpu_seconds() - client_before
        lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
        if done.returncode != 0 or not lines:
            raise BenchError(f"wrk failed on {target.name}:\n{done.stdout}{done.stderr}")
        values = [float(value) for value in lines[-1].split()[1:]]
        requests, duration_us, connect, read, write, status, timeouts, p50, p99 = values
        errors = {"connect": connect, "read": read, "write": write, "timeout": timeouts}
        if status or any(errors.values()):
            raise BenchError(
                f"{target.name}: {status:.0f} non-2xx answers, socket errors {errors}"
                f" in {requests:.0f} requests:\n{done.stdout}"
            )
        core = f"cpu{self.server_core}"
        return Round(
            requests=int(requests),
            seconds=duration_us / 1e6,
            wall=wall,
            p50_ms=p50 / 1000,
            p99_ms=p99 / 1000,
            server_cpu=server_cpu,
            client_cpu=client_cpu,
            core_busy=busy[core] - busy_before[core] if self.server_core is not None else 0.0,
            machine_busy=busy["cpu"] - busy_before["cpu"],
        )


def basic_authorization(client: NewClient) -> str:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding."""
    assert client.secret is not None
    pair = f"{quote(client.client_id, safe='')}:{quote(client.secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


TOKEN_BODY = f"grant_type=client_credentials&scope={quote(SCOPE, safe='')}"


def fetch_token(base_url: str, authorization: str) -> str:
    answer = httpx.post(
        base_url + "/oauth/token",
        content=TOKEN_BODY,
        headers={
            "Authorization": authorization,
            "Content-Type": "application/x-www-form-urlencoded",
        },
        timeout=10,
    )
    if answer.status_code != 200:
        raise BenchError(f"POST /oauth/token answered {answer.status_code}: {answer.text}")
    token: str = answer.json()["access_token"]
    return token


def preflight(base_url: str, token: str) -> None:
    """Refuse to measure a guard that does not guard, or routes that do not answer alike."""
    bearer = {"Authorization": f"Bearer {token}"}
    expected = {"status": "ok"}
    checks = [
        ("/bench/open", bearer, 200),
        ("/bench/guarded", bearer, 200),
        ("/bench/guarded", {}, 401),
        ("/bench/guarded", {"Authorization": "Bearer not-a-token"}, 401),
    ]
    for path, headers, status in checks:
        answer = httpx.get(base_url + path, headers=headers, timeout=10)
        if answer.status_code != status or (status == 200 and answer.json() != expected):
            raise BenchError(f"preflight: GET {path} answered {answer.status_code}: {answer.text}")


# --- the run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    """One round of each endpoint: open and guarded back to back, then token issuance."""

    open: Round
    guarded: Round
    token: Round

    @property
    def disturbance(self) -> float:
        return max(run.machine_others for run in (self.open, self.guarded, self.token))


@dataclass(frozen=True)
class Results:
    cycles: list[Cycle]  # the rounds used: the least disturbed ones
    attempts: int  # rounds measured in all

    @property
    def open(self) -> list[Round]:
        return [cycle.open for cycle in self.cycles]

    @property
    def guarded(self) -> list[Round]:
        return [cycle.guarded for cycle in self.cycles]

    @property
    def token(self) -> list[Round]:
        return [cycle.token for cycle in self.cycles]

    @staticmethod
    def median_rate(rounds: Sequence[Round]) -> float:
        return statistics.median(run.core_rate for run in rounds)

    @property
    def guarded_ratios(self) -> list[float]:
        """Per round: rounds next to each other share the machine's mood, so their ratio is
        steadier than a ratio of medians."""
        return [cycle.guarded.core_rate / cycle.open.core_rate for cycle in self.cycles]

    @property
    def guarded_over_open(self) -> float:
        return statistics.median(self.guarded_ratios)

    @property
    def guard_overhead(self) -> float:
        return 1 - self.guarded_over_open

    @property
    def guard_cost_us(self) -> float:
        """Server time the guard adds to one request (the server is saturated on one core),
        per round like the ratio, since medians of noisy rates taken apart need not pair."""
        return statistics.median(
            1e6 / cycle.guarded.core_rate - 1e6 / cycle.open.core_rate for cycle in self.cycles
        )

    @property
    def token_over_open(self) -> float:
        return statistics.median(c.token.core_rate / c.open.core_rate for c in self.cycles)

    @property
    def tokens_per_core(self) -> float:
        return self.median_rate(self.token)

    def met(self) -> tuple[bool, bool]:
        return (
            self.guard_overhead <= TARGET_GUARD_OVERHEAD,
            self.tokens_per_core >= TARGET_TOKENS_PER_CORE,
        )

    def warnings(self) -> list[str]:
        notes = []
        disturbed = [cycle for cycle in self.cycles if cycle.disturbance > DISTURBED]
        if disturbed:
            worst = max(cycle.disturbance for cycle in disturbed)
            notes.append(
                f"{len(disturbed)} of the {len(self.cycles)} rounds used ran while other processes"
                f" kept up to {worst:.2f} CPUs busy ({self.attempts} rounds measured to find"
                " quieter ones); the figures are less certain than on a quiet machine"
            )
        for name, rounds in (("open", self.open), ("guarded", self.guarded), ("token", self.token)):
            if any(r.server_share < SATURATED and r.core_others < 0.05 for r in rounds):
                notes.append(
                    f"{name}: the server left over {1 - SATURATED:.0%} of its core idle in some"
                    " round; it was not the bottleneck there"
                )
            if any(r.client_share > CLIENT_BUSY for r in rounds):
                notes.append(f"{name}: wrk used over {CLIENT_BUSY:.0%} of its CPU in some round")
        return notes


def measure(
    load: Load, base_url: str, authorization: str, *, rounds: int, seconds: int, warmup: int
) -> Results:
    """Warm up; then rounds of open and guarded (order alternating) and token issuance,
    until `rounds` undisturbed ones or the attempts allowed; keep the least disturbed."""
    token_target = Target(
        "POST /oauth/token",
        "POST",
        "/oauth/token",
        authorization,
        body=TOKEN_BODY,
        content_type="application/x-www-form-urlencoded",
    )

    def reads(token: str) -> tuple[Target, Target]:
        bearer = f"Bearer {token}"
        return (
            Target("GET /bench/open", "GET", "/bench/open", bearer),
            Target("GET /bench/guarded", "GET", "/bench/guarded", bearer),
        )

    token = fetch_token(base_url, authorization)
    preflight(base_url, token)
    if warmup:
        for target in (*reads(token), token_target):
            load.run(target, warmup)
    cycles: list[Cycle] = []
    for attempt in range(rounds * MAX_ATTEMPTS_PER_ROUND):
        if sum(cycle.disturbance <= DISTURBED for cycle in cycles) >= rounds:
            break
        open_target, guarded_target = reads(fetch_token(base_url, authorization))
        if attempt % 2 == 0:
            open_round = load.run(open_target, seconds)
            guarded_round = load.run(guarded_target, seconds)
        else:
            guarded_round = load.run(guarded_target, seconds)
            open_round = load.run(open_target, seconds)
        cycle = Cycle(open_round, guarded_round, load.run(token_target, seconds))
        cycles.append(cycle)
        print(
            f"  round {attempt + 1}, per core: open {open_round.core_rate:,.0f}/s,"
            f" guarded {guarded_round.core_rate:,.0f}/s"
            f" ({guarded_round.core_rate / open_round.core_rate:.2f}),"
            f" tokens {cycle.token.core_rate:,.0f}/s; other processes"
            f" {cycle.disturbance:.2f} CPUs"
            + (" (disturbed)" if cycle.disturbance > DISTURBED else ""),
            flush=True,
        )
    least = sorted(range(len(cycles)), key=lambda index: cycles[index].disturbance)[:rounds]
    return Results([cycles[index] for index in sorted(least)], len(cycles))


# --- reporting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    date: str
    machine: str
    software: str
    code: str
    database: Database
    command: str
    load: str
    pinning: str


def machine() -> str:
    model, virtual = platform.processor() or "unknown CPU", False
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                virtual = virtual or " hypervisor" in line
    kind = ", virtual machine" if virtual else ""
    return f"{model}, nproc {os.cpu_count()}, Linux {platform.release()}{kind}"


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    words = (done.stdout or done.stderr).split()
    return words[1] if len(words) > 1 else "unknown"


def software() -> str:
    from importlib.metadata import version
    from importlib.util import find_spec

    event_loop = "uvloop" if find_spec("uvloop") else "asyncio"
    parser = "httptools" if find_spec("httptools") else "h11"
    return (
        f"Python {platform.python_version()}, uvicorn {version('uvicorn')} ({event_loop},"
        f" {parser}), FastAPI {version('fastapi')}, Starlette {version('starlette')},"
        f" Authlib {version('authlib')}, joserfc {version('joserfc')}"
    )


def code_version() -> str:
    """The commit measured; read-only git (no optional locks, so the index is not rewritten)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(ROOT), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--", "hub")
    return f"commit {commit}" + (" with uncommitted changes in hub/" if dirty else "")


def shown_command(argv: Sequence[str]) -> str:
    """The command as typed from the repository root, with any database password hidden."""
    from sqlalchemy.engine import make_url

    def hide(url: str) -> str:
        with contextlib.suppress(Exception):
            if "@" in url:
                return make_url(url).render_as_string(hide_password=True)
        return url

    shown: list[str] = []
    for index, arg in enumerate(argv):
        if arg.startswith("--database-url="):
            arg = "--database-url=" + hide(arg.split("=", 1)[1])
        elif index and argv[index - 1] == "--database-url":
            arg = hide(arg)
        shown.append(arg)
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    return shlex.join([str(python), "bench/tokens.py", *shown])


def verdict(met: bool) -> str:
    return "met" if met else "**MISSED**"


def table(results: Results) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        (
            "endpoint",
            "req/s per core",
            "min-max",
            "req/s wall clock",
            "p50 ms",
            "p99 ms",
            "server CPU",
            "others on its core",
            "others, machine (CPUs)",
        )
    ]
    for name, rounds in (
        ("GET /bench/open", results.open),
        ("GET /bench/guarded", results.guarded),
        ("POST /oauth/token", results.token),
    ):
        rates = [r.core_rate for r in rounds]
        rows.append(
            (
                name,
                f"{statistics.median(rates):,.0f}",
                f"{min(rates):,.0f}-{max(rates):,.0f}",
                f"{statistics.median(r.rate for r in rounds):,.0f}",
                f"{statistics.median(r.p50_ms for r in rounds):.2f}",
                f"{statistics.median(r.p99_ms for r in rounds):.2f}",
                f"{statistics.median(r.server_share for r in rounds):.0%}",
                f"{statistics.median(r.core_others for r in rounds):.0%}",
                f"{statistics.median(r.machine_others for r in rounds):.2f}",
            )
        )
    return rows


def findings(results: Results) -> list[str]:
    overhead_met, tokens_met = results.met()
    ratios = results.guarded_ratios
    low, high = statistics.quantiles(ratios, n=4)[::2] if len(ratios) > 1 else (ratios[0],) * 2
    fastest = max(r.core_rate for r in results.guarded) / max(r.core_rate for r in results.open)
    return [
        f"Guard overhead, 1 - guarded/open: **{results.guard_overhead:.1%}**; guarded/open ="
        f" {results.guarded_over_open:.3f}, the median of {len(ratios)} per-round ratios"
        f" (middle half {low:.3f} to {high:.3f}); the guard adds about"
        f" {results.guard_cost_us:.0f} µs of server time per request."
        f" Target <= {TARGET_GUARD_OVERHEAD:.0%}: {verdict(overhead_met)}.",
        f"Cross-check against noise, fastest round of each: guarded/open = {fastest:.3f}"
        f" (overhead {1 - fastest:.1%}).",
        f"Tokens issued per core (client_secret_basic): **{results.tokens_per_core:,.0f}/s**;"
        f" token/open = {results.token_over_open:.3f}, so a token costs"
        f" {1 / results.token_over_open:.1f} open requests."
        f" Target >= {TARGET_TOKENS_PER_CORE:,.0f}/s per core: {verdict(tokens_met)}.",
    ]


def markdown(context: Context, results: Results) -> str:
    rows = table(results)
    lines = [
        f"## {context.database.title}",
        "",
        f"- Date: {context.date}",
        f"- Machine: {context.machine}",
        f"- Software: {context.software}",
        f"- Code: {context.code}",
        f"- Database: {context.database.description}",
        f"- Command: `{context.command}`",
        f"- Load: {context.load}",
        f"- Pinning: {context.pinning}",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "| --- | " + " | ".join("---:" for _ in rows[0][1:]) + " |",
        *("| " + " | ".join(row) + " |" for row in rows[1:]),
        "",
        *(f"- {line}" for line in findings(results)),
        *(f"- Warning: {note}." for note in results.warnings()),
    ]
    return "\n".join(lines)


RESULTS_HEADER = """\
# Benchmark results

Each section is written by the benchmark it names and replaced when it runs again on the same
database. How and why each one measures as it does is in the docstring of its script.
"""


def record(path: Path, key: str, section: str) -> None:
    """Replace this benchmark's section for this database, or append it."""
    begin, end = f"<!-- bench/tokens.py {key} -->", f"<!-- /bench/tokens.py {key} -->"
    text = path.read_text() if path.exists() else RESULTS_HEADER
    block = f"{begin}\n{section.rstrip()}\n{end}"
    start, stop = text.find(begin), text.find(end)
    if start >= 0 and stop > start:
        text = text[:start] + block + text[stop + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def print_report(context: Context, results: Results) -> None:
    rows = table(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n{context.database.description}; {context.code}\n{context.load}\n{context.pinning}")
    for row in rows:
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells))
    for line in findings(results):
        print(line.replace("**", ""))
    for note in results.warnings():
        print(f"warning: {note}")


# --- command line ------------------------------------------------------------------------


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/tokens.py",
        description="Tokens issued per second and guard overhead against a real hub server.",
    )
    parser.add_argument(
        "--duration", type=_bounded_int(1, 120), default=1, help="seconds per wrk run (1)"
    )
    parser.add_argument(
        "--rounds", type=_bounded_int(1, 99), default=31, help="rounds used for the medians (31)"
    )
    parser.add_argument(
        "--warmup", type=_bounded_int(0, 60), default=2, help="warm-up seconds per endpoint (2)"
    )
    parser.add_argument(
        "--concurrency", type=_bounded_int(1, 1000), default=32, help="connections (32)"
    )
    parser.add_argument(
        "--database-url",
        help="sqlite:///... or postgresql://127.0.0.1:5432/test (a scratch database is created"
        " beside it and dropped); default: a fresh SQLite file in a temporary directory",
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where to record (bench/RESULTS.md)"
    )
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print(
            "bench/tokens.py needs wrk, the HTTP load generator: apt-get install -y wrk",
            file=sys.stderr,
        )
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
            workdir = Path(tmp)
            with scratch_database(args.database_url, workdir) as database:
                return run(args, argv, wrk, workdir, database)
    except BenchError as exc:
        print(f"bench/tokens.py: {exc}", file=sys.stderr)
        return 2


def run(
    args: argparse.Namespace, argv: Sequence[str], wrk: str, workdir: Path, database: Database
) -> int:
    server_core, client_core = pick_cpus()
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    env = {
        "HUB_DATABASE_URL": database.url,
        "HUB_SECRET_KEY": secrets.token_urlsafe(48),
        "HUB_ISSUER": base_url,
        "HUB_CONFIG": str(CONFIG),
    }
    os.environ.update(env)  # the set-up below reads the same settings as the server
    client = register_client()
    script = workdir / "request.lua"
    script.write_text(WRK_SCRIPT)
    print(f"{database.description}; server at {base_url}", flush=True)
    with running_server(env, port, server_core, workdir / "server.log") as server:
        load = Load(wrk, script, base_url, args.concurrency, server.pid, server_core, client_core)
        results = measure(
            load,
            base_url,
            basic_authorization(client),
            rounds=args.rounds,
            seconds=args.duration,
            warmup=args.warmup,
        )
    context = Context(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine(),
        software=software(),
        code=code_version(),
        database=database,
        command=shown_command(argv),
        load=(
            f"wrk {wrk_version(wrk)}, 1 thread, {args.concurrency} keep-alive connections;"
            f" {args.warmup} s warm-up per endpoint, then rounds of {args.duration} s per"
            f" endpoint, medians of the {len(results.cycles)} least disturbed of"
            f" {results.attempts} rounds"
        ),
        pinning=(
            f"server (one uvicorn worker) on CPU {server_core}, wrk on CPU {client_core}"
            if server_core is not None
            else "none (no taskset or a single CPU): server and wrk share the CPUs"
        ),
    )
    print_report(context, results)
    if not args.no_record:
        record(args.results, database.key, markdown(context, results))
        print(f"recorded in {args.results}")
    return 1 if args.check and not all(results.met()) else 0


if __name__ == "__main__":
    sys.exit(main())
