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
- The peer: node's oidc-provider (the version tests/oidc pins, installed by `make oidc`) issues
  the same tokens in the same rounds (bench/token_peer.mjs): client credentials,
  client_secret_basic, ES256-signed JWT access tokens (RFC 9068) for one audience and scope,
  on the same CPU as the hub's server, measured by the same wrk. Its token rate per core
  against the hub's is the figure the hub is held to.

The results go to bench/RESULTS.md, one section per database, replaced on each run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from joserfc.jwk import ECKey

from hub.app import create_app
from hub.auth.guard import public, requires
from hub.auth.service import NewClient

if __package__ in (None, ""):  # run as `python bench/...py`: bench/ is on the path, not the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import (
    DISTURBED,
    MAX_ATTEMPTS_PER_ROUND,
    BenchError,
    Context,
    Database,
    Load,
    Round,
    Target,
    basic_authorization,
    record,
    running_server,
    verdict,
)

SCRIPT = "bench/tokens.py"
SCOPE = "registry:read"
TARGET_GUARD_OVERHEAD = 0.15  # guarded requests at most 15% slower than open ones
TARGET_TOKENS_PER_CORE = 1_000.0  # client_secret_basic, one server worker on one core
TARGET_OVER_PEER = 1.0  # at least as many tokens per core as oidc-provider
PEER = common.ROOT / "tests" / "oidc" / "node_modules" / "oidc-provider"
PEER_SCRIPT = common.ROOT / "bench" / "token_peer.mjs"
PEER_CLIENT = "bench-peer"

# wrk takes its request from this script; the shape comes from the environment so one script
# serves all three endpoints. `done` prints one machine-readable line for the parser below.
WRK_SCRIPT = (
    """\
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then wrk.body = body end
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization then wrk.headers["Authorization"] = authorization end
local content_type = os.getenv("BENCH_CONTENT_TYPE")
if content_type then wrk.headers["Content-Type"] = content_type end

"""
    + common.WRK_DONE
    + "end\n"
)


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


def register_client() -> NewClient:
    """Migrate, create the signing key and register the acceptance-office client that asks
    for tokens."""
    return common.register_client("public-security", [SCOPE])


# --- load --------------------------------------------------------------------------------


TOKEN_BODY = f"grant_type=client_credentials&scope={quote(SCOPE, safe='')}"


def fetch_token(base_url: str, authorization: str) -> str:
    return common.fetch_token(base_url, authorization, TOKEN_BODY)


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


# --- the peer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    base_url: str
    pid: int
    version: str
    authorization: str


@contextlib.contextmanager
def peer_server(workdir: Path, cpu: int | None) -> Iterator[Peer]:
    """node's oidc-provider on a free port, pinned like the hub's server, until the block ends."""
    node = shutil.which("node")
    if node is None or not (PEER / "package.json").exists():
        raise BenchError("the peer needs node and oidc-provider: run `make oidc`")
    version = json.loads((PEER / "package.json").read_text())["version"]
    port = common.free_port()
    secret = secrets.token_urlsafe(32)
    key = ECKey.generate_key("P-256", private=True).as_dict(private=True)
    config = workdir / "peer.json"
    config.write_text(
        json.dumps(
            {
                "provider": str(PEER / "lib" / "index.js"),
                "issuer": f"http://{common.HOST}:{port}",
                "client_id": PEER_CLIENT,
                "client_secret": secret,
                "scope": SCOPE,
                "audience": "urn:permit-hub",
                "jwk": {**key, "kid": "peer-1", "alg": "ES256", "use": "sig"},
            }
        )
    )
    log_path = workdir / "peer.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            common.pinned([node, str(PEER_SCRIPT), str(port), str(config)], cpu),
            env={**os.environ, "NODE_ENV": "production"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://{common.HOST}:{port}"
    try:
        common.wait_for(base_url + "/.well-known/openid-configuration")
        authorization = "Basic " + base64.b64encode(f"{PEER_CLIENT}:{secret}".encode()).decode()
        yield Peer(base_url, server.pid, version, authorization)
    finally:
        server.terminate()
        server.wait(timeout=15)


def peer_preflight(peer: Peer) -> None:
    """The peer's token is what the hub's is: an ES256 JWT access token with the scope."""
    answer = httpx.post(
        peer.base_url + "/token",
        content=TOKEN_BODY,
        headers={
            "Authorization": peer.authorization,
            "Content-Type": "application/x-www-form-urlencoded",
        },
        timeout=10,
    )
    body = answer.json() if answer.status_code == 200 else {}
    token = str(body.get("access_token", ""))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")) if token else {}
    if (header.get("alg"), header.get("typ"), body.get("scope")) != ("ES256", "at+jwt", SCOPE):
        raise BenchError(f"preflight: the peer answered {answer.status_code}: {answer.text}")


# --- the run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    """One round of each endpoint: open and guarded back to back, then token issuance."""

    open: Round
    guarded: Round
    token: Round
    peer: Round

    @property
    def disturbance(self) -> float:
        rounds = (self.open, self.guarded, self.token, self.peer)
        return max(run.machine_others for run in rounds)


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

    @property
    def peer(self) -> list[Round]:
        return [cycle.peer for cycle in self.cycles]

    @property
    def over_peer(self) -> float:
        """The hub's tokens per core over the peer's, per round, the median."""
        return statistics.median(c.token.core_rate / c.peer.core_rate for c in self.cycles)

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

    def met(self) -> tuple[bool, bool, bool]:
        return (
            self.guard_overhead <= TARGET_GUARD_OVERHEAD,
            self.tokens_per_core >= TARGET_TOKENS_PER_CORE,
            self.over_peer >= TARGET_OVER_PEER,
        )

    def warnings(self) -> list[str]:
        return common.round_warnings(
            [cycle.disturbance for cycle in self.cycles],
            self.attempts,
            [
                ("open", self.open),
                ("guarded", self.guarded),
                ("token", self.token),
                ("peer", self.peer),
            ],
            idle="it was not the bottleneck there",
        )


def measure(
    load: Load,
    peer_load: Load,
    peer: Peer,
    base_url: str,
    authorization: str,
    *,
    rounds: int,
    seconds: int,
    warmup: int,
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

    peer_target = Target(
        f"POST /token (oidc-provider {peer.version})",
        "POST",
        "/token",
        peer.authorization,
        body=TOKEN_BODY,
        content_type="application/x-www-form-urlencoded",
    )
    token = fetch_token(base_url, authorization)
    preflight(base_url, token)
    peer_preflight(peer)
    if warmup:
        for target in (*reads(token), token_target):
            load.run(target, warmup)
        peer_load.run(peer_target, warmup)
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
        if attempt % 2 == 0:
            token_round = load.run(token_target, seconds)
            peer_round = peer_load.run(peer_target, seconds)
        else:
            peer_round = peer_load.run(peer_target, seconds)
            token_round = load.run(token_target, seconds)
        cycle = Cycle(open_round, guarded_round, token_round, peer_round)
        cycles.append(cycle)
        print(
            f"  round {attempt + 1}, per core: open {open_round.core_rate:,.0f}/s,"
            f" guarded {guarded_round.core_rate:,.0f}/s"
            f" ({guarded_round.core_rate / open_round.core_rate:.2f}),"
            f" tokens {cycle.token.core_rate:,.0f}/s, the peer's {peer_round.core_rate:,.0f}/s;"
            " other processes"
            f" {cycle.disturbance:.2f} CPUs"
            + (" (disturbed)" if cycle.disturbance > DISTURBED else ""),
            flush=True,
        )
    least = sorted(range(len(cycles)), key=lambda index: cycles[index].disturbance)[:rounds]
    return Results([cycles[index] for index in sorted(least)], len(cycles))


# --- reporting ---------------------------------------------------------------------------


def table(results: Results) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("endpoint", *common.RATE_COLUMNS, *common.OTHERS_COLUMNS)]
    for name, rounds in (
        ("GET /bench/open", results.open),
        ("GET /bench/guarded", results.guarded),
        ("POST /oauth/token", results.token),
        ("peer: oidc-provider POST /token", results.peer),
    ):
        rows.append((name, *common.rate_cells(rounds), *common.others_cells(rounds)))
    return rows


def findings(results: Results) -> list[str]:
    overhead_met, tokens_met, peer_met = results.met()
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
        f"Against node's oidc-provider issuing the same ES256 JWT access tokens in the same"
        f" rounds on the same CPU: hub/peer = **{results.over_peer:.2f}** tokens per core"
        f" (the median of per-round ratios; the peer"
        f" {results.median_rate(results.peer):,.0f}/s). Target >= {TARGET_OVER_PEER:.2f}:"
        f" {verdict(peer_met)}.",
    ]


def markdown(context: Context, results: Results) -> str:
    lines = [
        *common.section_head(context.database.title, context),
        "",
        *common.markdown_table(table(results)),
        "",
        *(f"- {line}" for line in findings(results)),
        *(f"- Warning: {note}." for note in results.warnings()),
    ]
    return "\n".join(lines)


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


def command_line() -> argparse.ArgumentParser:
    parser = common.wrk_parser(
        SCRIPT, "Tokens issued per second and guard overhead against a real hub server."
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_with_wrk(SCRIPT, command_line(), run, argv)


def run(
    args: argparse.Namespace, argv: Sequence[str], wrk: str, workdir: Path, database: Database
) -> int:
    server_core, client_core = common.pick_cpus()
    port, base_url, env = common.server_env(database)
    client = register_client()
    script = workdir / "request.lua"
    script.write_text(WRK_SCRIPT)
    print(f"{database.description}; server at {base_url}", flush=True)
    with (
        running_server(
            "bench.tokens:bench_app", env, port, server_core, workdir / "server.log"
        ) as server,
        peer_server(workdir, server_core) as peer,
    ):
        load = Load(wrk, script, base_url, args.concurrency, server.pid, server_core, client_core)
        peer_load = Load(
            wrk, script, peer.base_url, args.concurrency, peer.pid, server_core, client_core
        )
        results = measure(
            load,
            peer_load,
            peer,
            base_url,
            basic_authorization(client),
            rounds=args.rounds,
            seconds=args.duration,
            warmup=args.warmup,
        )
    context = common.context(
        SCRIPT,
        argv,
        database,
        load=(
            f"wrk {common.wrk_version(wrk)}, 1 thread, {args.concurrency} keep-alive connections;"
            f" {args.warmup} s warm-up per endpoint, then rounds of {args.duration} s per"
            f" endpoint, medians of the {len(results.cycles)} least disturbed of"
            f" {results.attempts} rounds"
        ),
        pinning=(
            f"server (one uvicorn worker; the peer, one node process) on CPU {server_core},"
            f" wrk on CPU {client_core}"
            if server_core is not None
            else "none (no taskset or a single CPU): server and wrk share the CPUs"
        ),
    )
    print_report(context, results)
    if not args.no_record:
        record(args.results, SCRIPT, database.key, markdown(context, results))
        print(f"recorded in {args.results}")
    return 1 if args.check and not all(results.met()) else 0


if __name__ == "__main__":
    sys.exit(main())
