"""Machinery shared by the benchmarks in bench/: scratch database, pinned server, wrk runs with
CPU accounting from /proc, the run's context, and the marked sections of bench/RESULTS.md.

Why the benchmarks are built this way is in the docstring of bench/tokens.py; each script
keeps its own targets, rounds, figures and report.
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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from hub.auth.service import NewClient
from hub.composition import Hub, build_hub
from hub.migrate import upgrade
from hub.permits.identity import CitizenId
from hub.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
CONFIG = ROOT / "config" / "hub.toml"
RESULTS = ROOT / "bench" / "RESULTS.md"
SATURATED = 0.90  # server CPU share below this: the server was not the bottleneck
CLIENT_BUSY = 0.90  # wrk CPU share above this: the load generator may have been the bottleneck
DISTURBED = 0.10  # other processes busy above this share of one CPU: the round is disturbed
MAX_ATTEMPTS_PER_ROUND = 3  # disturbed rounds are measured again, up to rounds x this
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The benchmark could not produce a trustworthy figure; the message says why."""


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


def scratch_hub(database: Database) -> Hub:
    """A hub on the scratch database, migrated, with a master key of its own and no scheduler
    (the environment variables are set for the subprocesses a benchmark starts too)."""
    os.environ.update(
        {
            "HUB_DATABASE_URL": database.url,
            "HUB_SECRET_KEY": secrets.token_urlsafe(48),
            "HUB_SCHEDULER_ENABLED": "false",
        }
    )
    settings = load_settings()
    upgrade(settings.database_url)
    return build_hub(settings)


def register_client(department: str, scopes: list[str]) -> NewClient:
    """Migrate, create the signing key and register a client_secret_basic client, as
    `hub db upgrade` and `hub clients add` do, with the settings the server will read."""
    settings = load_settings()
    upgrade(settings.database_url)
    hub = build_hub(settings)
    try:
        hub.prepare()
        return hub.add_client(department=department, scopes=scopes)
    finally:
        hub.engine.dispose()


def holder_registration(
    hub: Hub,
    number: CitizenId,
    n: int,
    *,
    registration_id: str,
    arrived_on: date,
    now: datetime,
    addresses: tuple[str, str] = ("辽宁省沈阳市和平区某街1号", "内蒙古赤峰市红山区某小区2号楼"),
) -> dict[str, Any]:
    """A registration row, for bulk insertion, of holder number `n` (citizen ID `number`,
    sealed): household in Shenyang Heping, living in Chifeng since `arrived_on`, registered
    then. `addresses`: household and current."""
    household_address, current_address = addresses
    return {
        "id": registration_id,
        "jurisdiction": "chifeng",
        "citizen_id_hash": hub.vault.lookup_hash(number),
        "citizen_id_sealed": hub.vault.seal(number),
        "name": f"持证人{n}",
        "sex": number.sex.value,
        "ethnicity": "汉族",
        "birth_date": number.birth_date,
        "household_address": household_address,
        "household_region": "210102",
        "current_address": current_address,
        "current_region": "150402",
        "reason": "employment",
        "contact": "13800000000",
        "arrived_on": arrived_on,
        "registered_on": arrived_on,
        "declared_late": False,
        "residence_start": arrived_on,
        "imported_from_temporary_permit": False,
        "created_at": now,
    }


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


def server_env(database: Database, **settings: str) -> tuple[int, str, dict[str, str]]:
    """A free port, the server's base URL and the settings of a benchmark's hub server, the
    settings put into this process's environment too so that the set-up here reads the same
    ones. `settings`: more, by variable name.

    The outbox relay is off in every benchmark server: it is on no measured route, and on it
    would need every push department's HUB_WEBHOOK_SECRET_* (bench/delivery.py measures the
    relay in its own process)."""
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    env = {
        "HUB_DATABASE_URL": database.url,
        "HUB_SECRET_KEY": secrets.token_urlsafe(48),
        "HUB_ISSUER": base_url,
        "HUB_CONFIG": str(CONFIG),
        "HUB_RELAY_ENABLED": "false",
        **settings,
    }
    os.environ.update(env)
    return port, base_url, env


@contextlib.contextmanager
def running_server(
    app: str, env: dict[str, str], port: int, cpu: int | None, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """One uvicorn worker serving the app factory `app` ("module:function"), as `hub serve`
    would (access log off)."""
    command = pinned(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
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


class ProcessesCpu:
    """CPU seconds so far of the processes `picks` chooses (by pid), as a counter that never
    goes back. Summing the processes alive at each reading went negative when they come and
    go (a connection pool opening and closing PostgreSQL backends under load): here a process
    that exits keeps what it was counted (its last moments are lost: an undercount), and one
    seen for the first time is counted whole (it started since the last reading)."""

    def __init__(self, picks: Callable[[int], bool]) -> None:
        self._picks = picks
        self._seen: dict[int, float] = {}
        self._total = 0.0

    def __call__(self) -> float:
        current: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                pid = int(entry.name)
                with contextlib.suppress(OSError):
                    if self._picks(pid):
                        current[pid] = process_cpu_seconds(pid)
        for pid, seconds in current.items():
            self._total += seconds - self._seen.get(pid, 0.0)
        self._seen = current
        return self._total


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


# The start of a wrk script's `done`: wrk's summary, one line, as Load.run reads it. A script
# ends with this, then its own counts (a "BENCH_COUNTS name=value ..." line), then `end`.
WRK_DONE = """\
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_RESULT %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
"""


@dataclass(frozen=True)
class Target:
    """One request shape that wrk repeats."""

    name: str
    method: str
    path: str
    authorization: str
    body: str = ""
    content_type: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)  # for a script's own settings

    def wrk_env(self) -> dict[str, str]:
        env = {"BENCH_METHOD": self.method, "BENCH_AUTHORIZATION": self.authorization}
        if self.body:
            env["BENCH_BODY"] = self.body
        if self.content_type:
            env["BENCH_CONTENT_TYPE"] = self.content_type
        return {**env, **self.extra_env}


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
    # what a script's `done` counted itself, from its "BENCH_COUNTS name=value ..." line
    counts: dict[str, float] = field(default_factory=dict)
    helper_cpu: float = 0.0  # CPU seconds of processes the server needs (a database server)

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
    def helper_share(self) -> float:
        """CPUs' worth of the helpers' work (the database's, where it has processes)."""
        return self.helper_cpu / self.wall

    @property
    def core_others(self) -> float:
        """Share of the server's core taken by other processes, the kernel or the hypervisor."""
        return max(0.0, self.core_busy - self.server_cpu) / self.wall

    @property
    def machine_others(self) -> float:
        """CPUs' worth of work that was neither the server nor wrk. On a virtual machine a
        busy neighbouring vCPU slows the server even when its own core looks free."""
        others = self.machine_busy - self.server_cpu - self.client_cpu - self.helper_cpu
        return max(0.0, others) / self.wall


@dataclass(frozen=True)
class Load:
    wrk: str
    script: Path
    base_url: str
    concurrency: int
    server_pid: int
    server_core: int | None
    client_core: int | None
    # CPU seconds of the server's helpers so far, counted apart from other work (None: no helpers)
    helpers: Callable[[], float] | None = None

    def run(self, target: Target, seconds: int) -> Round:
        """One wrk run against the live server; any error or non-2xx answer voids the run, and
        so does a positive `unexpected` count from a script that checks answers itself."""
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
        helpers_before = self.helpers() if self.helpers else 0.0
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
        helper_cpu = self.helpers() - helpers_before if self.helpers else 0.0
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
        counts = {
            name: float(value)
            for line in done.stdout.splitlines()
            if line.startswith("BENCH_COUNTS ")
            for name, value in (pair.split("=", 1) for pair in line.split()[1:])
        }
        if counts.get("unexpected"):
            raise BenchError(
                f"{target.name}: {counts['unexpected']:.0f} unexpected answers"
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
            counts=counts,
            helper_cpu=helper_cpu,
        )


def basic_authorization(client: NewClient) -> str:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding."""
    assert client.secret is not None
    pair = f"{quote(client.client_id, safe='')}:{quote(client.secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def fetch_token(base_url: str, authorization: str, body: str) -> str:
    answer = httpx.post(
        base_url + "/oauth/token",
        content=body,
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


def context(
    script: str, argv: Sequence[str], database: Database, load: str, pinning: str
) -> Context:
    """The run's context, dated now."""
    return Context(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine(),
        software=software(),
        code=code_version(),
        database=database,
        command=shown_command(script, argv),
        load=load,
        pinning=pinning,
    )


def section_head(title: str, context: Context) -> list[str]:
    """A RESULTS.md section's title and its context, one item a line."""
    return [
        f"## {title}",
        "",
        f"- Date: {context.date}",
        f"- Machine: {context.machine}",
        f"- Software: {context.software}",
        f"- Code: {context.code}",
        f"- Database: {context.database.description}",
        f"- Command: `{context.command}`",
        f"- Load: {context.load}",
        f"- Pinning: {context.pinning}",
    ]


def header(title: str, script: str, argv: Sequence[str], database: Database) -> list[str]:
    """A RESULTS.md section's title, then the run's date, machine, code, database and
    command, one item a line (for benchmarks without a load context)."""
    return [
        f"## {title}",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Code: {code_version()}",
        f"- Database: {database.description}",
        f"- Command: `{shown_command(script, argv)}`",
    ]


def wait_for(url: str, seconds: float = 30) -> None:
    """Until `url` answers with a success (a server or receiver just started)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).is_success:
                return
        time.sleep(0.1)
    raise BenchError(f"{url} did not answer within {seconds:.0f} s")


def markdown_table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """A header row, then right-aligned figures after the first column."""
    return [
        "| " + " | ".join(rows[0]) + " |",
        "| --- | " + " | ".join("---:" for _ in rows[0][1:]) + " |",
        *("| " + " | ".join(row) + " |" for row in rows[1:]),
    ]


RATE_COLUMNS = ("req/s per core", "min-max", "req/s wall clock", "p50 ms", "p99 ms", "server CPU")
OTHERS_COLUMNS = ("others on its core", "others, machine (CPUs)")


def rate_cells(rounds: Sequence[Round]) -> tuple[str, ...]:
    """The RATE_COLUMNS of an endpoint's rounds: medians, and the range of per-core rates."""
    rates = [r.core_rate for r in rounds]
    return (
        f"{statistics.median(rates):,.0f}",
        f"{min(rates):,.0f}-{max(rates):,.0f}",
        f"{statistics.median(r.rate for r in rounds):,.0f}",
        f"{statistics.median(r.p50_ms for r in rounds):.2f}",
        f"{statistics.median(r.p99_ms for r in rounds):.2f}",
        f"{statistics.median(r.server_share for r in rounds):.0%}",
    )


def others_cells(rounds: Sequence[Round]) -> tuple[str, ...]:
    """The OTHERS_COLUMNS of an endpoint's rounds, medians."""
    return (
        f"{statistics.median(r.core_others for r in rounds):.0%}",
        f"{statistics.median(r.machine_others for r in rounds):.2f}",
    )


def quartiles(values: list[float]) -> tuple[float, float]:
    """The first and third quartiles; a single value's are itself."""
    if len(values) < 2:
        return values[0], values[0]
    low, _, high = statistics.quantiles(values, n=4)
    return low, high


def check_kept(what: str, kept: int, answered: int, sent: int) -> None:
    """The database must hold between the successes answered and the requests sent: wrk stops
    with requests in flight."""
    if not answered <= kept <= sent:
        raise BenchError(
            f"the database holds {kept} {what}; {answered} were answered and {sent} sent"
        )


def round_warnings(
    disturbances: Sequence[float],
    attempts: int,
    columns: Sequence[tuple[str, Sequence[Round]]],
    idle: str = "it was not only its CPU that limited the rate there",
) -> list[str]:
    """What makes the rounds used less certain: disturbed rounds (`disturbances`, one per
    round used, in CPUs), an idle server (`idle` says what that means) or a busy wrk, per
    endpoint (`columns`: name and rounds)."""
    notes = []
    disturbed = [value for value in disturbances if value > DISTURBED]
    if disturbed:
        notes.append(
            f"{len(disturbed)} of the {len(disturbances)} rounds used ran while other processes"
            f" kept up to {max(disturbed):.2f} CPUs busy ({attempts} rounds measured to find"
            " quieter ones); the figures are less certain than on a quiet machine"
        )
    for name, rounds in columns:
        if any(r.server_share < SATURATED and r.core_others < 0.05 for r in rounds):
            notes.append(
                f"{name}: the server left over {1 - SATURATED:.0%} of its core idle in some"
                f" round; {idle}"
            )
        if any(r.client_share > CLIENT_BUSY for r in rounds):
            notes.append(f"{name}: wrk used over {CLIENT_BUSY:.0%} of its CPU in some round")
    return notes


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


def shown_command(script: str, argv: Sequence[str]) -> str:
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
    return shlex.join([str(python), script, *shown])


def verdict(met: bool) -> str:
    return "met" if met else "**MISSED**"


RESULTS_HEADER = """\
# Benchmark results

Each section is written by the benchmark it names and replaced when it runs again on the same
database. How and why each one measures as it does is in the docstring of its script.
"""


def record(path: Path, script: str, key: str, section: str) -> None:
    """Replace this benchmark's section for this database, or append it."""
    begin, end = f"<!-- {script} {key} -->", f"<!-- /{script} {key} -->"
    text = path.read_text() if path.exists() else RESULTS_HEADER
    block = f"{begin}\n{section.rstrip()}\n{end}"
    start, stop = text.find(begin), text.find(end)
    if start >= 0 and stop > start:
        text = text[:start] + block + text[stop + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


# --- command line ------------------------------------------------------------------------


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def bounded_option(
    parser: argparse.ArgumentParser, flag: str, low: int, high: int, default: int, help: str
) -> None:
    """An integer option from `low` to `high`; `help` ends with the default, shown as "(N)"."""
    parser.add_argument(
        flag, type=_bounded_int(low, high), default=default, help=f"{help} ({default:,})"
    )


def record_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where to record (bench/RESULTS.md)"
    )
    parser.add_argument("--no-record", action="store_true", help="print only")


# --- the wrk benchmarks (tokens, registry, taps): rounds of wrk runs --------------------------


def wrk_options(
    parser: argparse.ArgumentParser,
    *,
    duration: tuple[int, int, int] = (1, 120, 1),
    rounds: tuple[int, int, int] = (1, 99, 31),
    warmup: tuple[int, int, int] = (0, 60, 2),
    concurrency: tuple[int, int, int] = (1, 1000, 32),
) -> None:
    """--duration, --rounds, --warmup and --concurrency, each (lowest, highest, default)."""
    bounded_option(parser, "--duration", *duration, "seconds per wrk run")
    bounded_option(parser, "--rounds", *rounds, "rounds used for the medians")
    bounded_option(parser, "--warmup", *warmup, "warm-up seconds per endpoint")
    bounded_option(parser, "--concurrency", *concurrency, "wrk connections")


def wrk_parser(script: str, description: str) -> argparse.ArgumentParser:
    """The options of a wrk benchmark on SQLite or PostgreSQL; each script adds its own."""
    parser = argparse.ArgumentParser(prog=script, description=description)
    wrk_options(parser)
    parser.add_argument(
        "--database-url",
        help="sqlite:///... or postgresql://127.0.0.1:5432/test (a scratch database is created"
        " beside it and dropped); default: a fresh SQLite file in a temporary directory",
    )
    record_options(parser)
    return parser


# --- the scripts that measure on a scratch PostgreSQL database (sweep, delivery, taps) ----


def postgres_parser(script: str, description: str) -> argparse.ArgumentParser:
    """The options every such script has; each adds its own."""
    parser = argparse.ArgumentParser(prog=script, description=description)
    parser.add_argument(
        "--database-url",
        default="postgresql://127.0.0.1:5432/test",
        help="a PostgreSQL database on this machine; a scratch database is created beside it",
    )
    record_options(parser)
    return parser


def run_on_scratch(
    script: str,
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace, Sequence[str], Database], int],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse, run on a scratch database dropped afterwards; a BenchError is one line, exit 2."""

    def on_scratch(args: argparse.Namespace, arguments: Sequence[str], workdir: Path) -> int:
        with scratch_database(args.database_url, workdir) as database:
            return run(args, arguments, database)

    return _in_workdir(script, parser, on_scratch, argv)


def run_with_wrk(
    script: str,
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace, Sequence[str], str, Path, Database], int],
    argv: Sequence[str] | None = None,
    check: Callable[[argparse.Namespace], None] = lambda args: None,
) -> int:
    """As run_on_scratch, for a wrk benchmark: wrk is found and `check` (which raises a
    BenchError) passed before the scratch database is made; `run` gets wrk and a work folder."""

    def with_wrk(args: argparse.Namespace, arguments: Sequence[str], workdir: Path) -> int:
        wrk = shutil.which("wrk")
        if wrk is None:
            raise BenchError("needs wrk, the HTTP load generator: apt-get install -y wrk")
        check(args)
        with scratch_database(args.database_url, workdir) as database:
            return run(args, arguments, wrk, workdir, database)

    return _in_workdir(script, parser, with_wrk, argv)


def _in_workdir(
    script: str,
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace, Sequence[str], Path], int],
    argv: Sequence[str] | None,
) -> int:
    def in_tmp(args: argparse.Namespace, arguments: Sequence[str]) -> int:
        with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
            return body(args, arguments, Path(tmp))

    return run_plain(script, parser.parse_args, in_tmp, argv)


def run_plain(
    script: str,
    parse: Callable[[Sequence[str]], argparse.Namespace],
    run: Callable[[argparse.Namespace, Sequence[str]], int],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse the command line (sys.argv's when `argv` is None) and run; a BenchError is one
    line on stderr and exit 2. For every benchmark, with or without a database."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse(arguments)
    try:
        return run(args, arguments)
    except BenchError as exc:
        print(f"{script}: {exc}", file=sys.stderr)
        return 2
