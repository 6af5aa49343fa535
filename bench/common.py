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
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from hub.app import build_hub
from hub.auth.service import NewClient, add_client
from hub.db import unit_of_work
from hub.migrate import upgrade
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


def register_client(department: str, scopes: list[str]) -> NewClient:
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
                department=department,
                scopes=scopes,
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


# --- the scripts that measure on a scratch PostgreSQL database (sweep, delivery) ---------


def postgres_parser(script: str, description: str) -> argparse.ArgumentParser:
    """The options every such script has; each adds its own."""
    parser = argparse.ArgumentParser(prog=script, description=description)
    parser.add_argument(
        "--database-url",
        default="postgresql://127.0.0.1:5432/test",
        help="a PostgreSQL database on this machine; a scratch database is created beside it",
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where to record (bench/RESULTS.md)"
    )
    parser.add_argument("--no-record", action="store_true", help="print only")
    return parser


def run_on_scratch(
    script: str,
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace, Sequence[str], Database], int],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse, run on a scratch database dropped afterwards; a BenchError is one line, exit 2."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp,
            scratch_database(args.database_url, Path(tmp)) as database,
        ):
            return run(args, arguments, database)
    except BenchError as exc:
        print(f"{script}: {exc}", file=sys.stderr)
        return 2
