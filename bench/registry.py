"""Residence registrations per second through the API on one worker, as ratios of trivial routes.

    .venv/bin/python bench/registry.py [--duration S] [--rounds N] [--warmup S]
                                       [--concurrency C] [--database-url URL]

Needs wrk (Debian package `wrk`). The machinery is bench/tokens.py's (in bench/common.py): one
uvicorn worker pinned to one CPU, wrk pinned to the other, CPU accounting from /proc, short
alternating rounds, the least disturbed of a bounded number kept, a scratch database
(PostgreSQL: `hub_bench_<pid>`) removed at the end. What is particular to this one:

- Every registration is a different person. The wrk script numbers the requests of a run from
  a first number this script hands it (so runs never repeat a person) and turns number n into
  an 18-character citizen ID: household region 210102, a birth date 1 January 1980 plus n // 1000
  days, sequence n % 1000, and the MOD 11-2 check character computed in Lua. All of them live
  in Chifeng (current region 150402), which the hub serves, arrived three days ago, and are
  adults, so each one is a plain 201.
- Three targets per round, order reversed every other round so each pair neighbours:
  POST /registry/v1/registrations (guarded by registry:write, token obtained once with
  HUB_ACCESS_TOKEN_TTL_SECONDS=3600), POST /bench/registrations (a benchmark-only public route
  of this app: the same distinct bodies, parsed into the same RegistrationBody by FastAPI in a
  sync endpoint like the real one, answered 201 with the body echoed, no database) and
  GET /healthz. The figures are medians of the per-round ratios registrations / parse-only and
  registrations / healthz; the parse-only ratio is the fair one (it pays for HTTP, JSON and
  validation and the threadpool hop like the real route, so what it leaves out is the guard,
  the ID check, the domain rules, the encryption, the database and the audit entry).
- Every answer is checked, not just wrk's >399 count: the script's `response` counts any status
  other than the expected one and the run fails if there is one. Afterwards, with the server
  stopped, the database must hold between "answered 201" and "requests sent" registrations
  (wrk stops with requests in flight), one audit entry each, and as many distinct ID hashes as
  rows, every one of them a number this script can regenerate.
- The database's own processes are not "other work": on PostgreSQL their CPU time (the
  postmaster's children, from /proc) is reported in its own column and left out of the
  disturbance measure, since a registration needs them. They are not pinned, so they may take
  time on the server's core; the per-core rate then counts only the time the worker had.

The results go to bench/RESULTS.md, one section per database, replaced on each run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from hub.app import create_app
from hub.auth.guard import public
from hub.composition import build_hub
from hub.permits.bodies import RegistrationBody
from hub.permits.identity import CitizenId, parse_citizen_id
from hub.settings import load_settings

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
)
from bench.floors import Floor, registration_floor

SCRIPT = "bench/registry.py"
SCOPE = "registry:write"
TOKEN_TTL_SECONDS = 3600
ID_REGION = "210102"  # household: Shenyang Heping
FIRST_BIRTH = date(1980, 1, 1)
PER_DAY = 1000  # sequence numbers 000-999 on each birth date
THREADS = 1  # wrk threads, as bench/common.py runs it
REGISTRATIONS = "/registry/v1/registrations"
PARSE_ONLY = "/bench/registrations"
HEALTHZ = "/healthz"
ID_MARK = "@@CITIZEN_ID@@"
FLOOR_REGISTRATIONS = 2_000

# One script for all three targets. `request` builds each body with the next person's ID;
# `response` counts answers other than BENCH_EXPECT; `done` prints wrk's summary line and the
# script's own counts, summed over wrk's threads.
WRK_SCRIPT = (
    """\
local method = os.getenv("BENCH_METHOD") or "GET"
local prefix = os.getenv("BENCH_BODY_PREFIX")
local suffix = os.getenv("BENCH_BODY_SUFFIX")
local first = tonumber(os.getenv("BENCH_FIRST") or "0")
local stride = tonumber(os.getenv("BENCH_THREADS") or "1")
local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
local region = os.getenv("BENCH_ID_REGION") or "210102"
local born_from = tonumber(os.getenv("BENCH_BORN_FROM") or "315532800")
local per_day = tonumber(os.getenv("BENCH_PER_DAY") or "1000")
local headers = {}
headers["Authorization"] = os.getenv("BENCH_AUTHORIZATION")
if prefix then headers["Content-Type"] = "application/json" end

local weights = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
local checks = {"1", "0", "X", "9", "8", "7", "6", "5", "4", "3", "2"}

local function citizen_id(n)
  local born = os.date("!%Y%m%d", born_from + math.floor(n / per_day) * 86400)
  local first17 = region .. born .. string.format("%03d", n % per_day)
  local total = 0
  for i = 1, 17 do total = total + (first17:byte(i) - 48) * weights[i] end
  return first17 .. checks[total % 11 + 1]
end

local threads = {}
function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  sent, unexpected, answered = 0, 0, 0
  static = wrk.format(method, nil, headers, nil)
end

function request()
  if not prefix then
    sent = sent + 1
    return static
  end
  local n = first + index + sent * stride
  sent = sent + 1
  return wrk.format(method, nil, headers, prefix .. citizen_id(n) .. suffix)
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= expect then
    unexpected = unexpected + 1
    if unexpected <= 3 then io.stderr:write(status, " ", body or "", "\\n") end
  end
end

"""
    + common.WRK_DONE
    + """\
  local s, u, a = 0, 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("sent")
    u = u + thread:get("unexpected")
    a = a + thread:get("answered")
  end
  io.write(string.format("BENCH_COUNTS sent=%d unexpected=%d answered=%d\\n", s, u, a))
end
"""
)


def citizen_id(n: int) -> str:
    """Person n's number, as the wrk script makes it; the check character from its definition
    (weight 2**(17-i) mod 11, the full sum 1 mod 11), not from the Lua tables."""
    born = FIRST_BIRTH + timedelta(days=n // PER_DAY)
    first17 = f"{ID_REGION}{born:%Y%m%d}{n % PER_DAY:03d}"
    total = sum(int(digit) * (2 ** (17 - i) % 11) for i, digit in enumerate(first17))
    check = (12 - total % 11) % 11
    return first17 + ("X" if check == 10 else str(check))


def registration_body(citizen: str, today: date) -> dict[str, Any]:
    return {
        "citizen_id": citizen,
        "name": "王芳",
        "ethnicity": "汉族",
        "household_address": "辽宁省沈阳市和平区某街1号",
        "household_region": ID_REGION,
        "current_address": "赤峰市红山区某小区2号楼",
        "current_region": "150402",
        "reason": "employment",
        "workplace": "赤峰某建材有限公司",
        "contact": "13800000000",
        "arrived_on": (today - timedelta(days=3)).isoformat(),
    }


def bench_app() -> FastAPI:
    """The product app plus one benchmark-only route: the registration's body parsed and
    echoed with 201, nothing else. Added here so the product never exposes it."""
    app = create_app()

    @app.post(PARSE_ONLY, status_code=201, include_in_schema=False)
    @public
    def bench_registrations(body: RegistrationBody) -> JSONResponse:
        return JSONResponse(body.model_dump(mode="json"), status_code=201)

    return app


# --- database --------------------------------------------------------------------------


def is_postgres(pid: int) -> bool:
    """A PostgreSQL server process (named postgres)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    name = stat[stat.find("(") + 1 : stat.rfind(")")]
    return name == "postgres" or name.startswith("postgres:")


@dataclass(frozen=True)
class Stored:
    rows: int
    distinct: int
    audited: int
    known: int  # rows whose ID hash is one of the numbers handed out


def stored(numbers: int) -> Stored:
    """What the database holds, read after the server has stopped."""
    settings = load_settings()
    hub = build_hub(settings)
    try:
        with hub.engine.connect() as connection:
            rows, distinct = connection.execute(
                sa.text("SELECT count(*), count(DISTINCT citizen_id_hash) FROM registration")
            ).one()
            audited = connection.execute(
                sa.text("SELECT count(*) FROM audit_log WHERE action = 'registration.create'")
            ).scalar_one()
            hashes = set(
                connection.execute(sa.text("SELECT citizen_id_hash FROM registration")).scalars()
            )
        vault = hub.vault
        expected = {vault.lookup_hash(CitizenId(citizen_id(n))) for n in range(numbers)}
        return Stored(int(rows), int(distinct), int(audited), len(hashes & expected))
    finally:
        hub.engine.dispose()


# --- the run -----------------------------------------------------------------------------


class People:
    """Hands out person numbers; no two requests of the whole run get the same one."""

    def __init__(self) -> None:
        self.next = 0

    def take(self) -> int:
        self.next += 1
        return self.next - 1


@dataclass(frozen=True)
class Targets:
    registrations: Target
    parse_only: Target
    healthz: Target


def targets(bearer: str, today: date) -> Targets:
    template = json.dumps(registration_body(ID_MARK, today), ensure_ascii=False)
    prefix, suffix = template.split(ID_MARK)
    shape = {
        "BENCH_ID_REGION": ID_REGION,
        "BENCH_BORN_FROM": str(int(datetime(*FIRST_BIRTH.timetuple()[:3], tzinfo=UTC).timestamp())),
        "BENCH_PER_DAY": str(PER_DAY),
        "BENCH_THREADS": str(THREADS),
    }
    body = {"BENCH_BODY_PREFIX": prefix, "BENCH_BODY_SUFFIX": suffix, "BENCH_EXPECT": "201"}
    return Targets(
        Target(f"POST {REGISTRATIONS}", "POST", REGISTRATIONS, bearer, extra_env={**shape, **body}),
        Target(f"POST {PARSE_ONLY}", "POST", PARSE_ONLY, bearer, extra_env={**shape, **body}),
        Target(f"GET {HEALTHZ}", "GET", HEALTHZ, bearer, extra_env={"BENCH_EXPECT": "200"}),
    )


@dataclass
class Tally:
    """Requests of every registration run, warm-up and preflight included."""

    answered: int = 0  # 201s counted by the script (equal to wrk's completed requests)
    sent: int = 0  # requests the script built, in flight at the end included


class Runner:
    def __init__(self, load: Load, people: People, tally: Tally, all_targets: Targets) -> None:
        self.load, self.people, self.tally, self.targets = load, people, tally, all_targets

    def run(self, target: Target, seconds: int) -> Round:
        first = self.people.next
        numbered = replace(target, extra_env={**target.extra_env, "BENCH_FIRST": str(first)})
        result = self.load.run(numbered, seconds)
        sent, answered = int(result.counts["sent"]), int(result.counts["answered"])
        if answered != result.requests:
            raise BenchError(f"{target.name}: script saw {answered}, wrk {result.requests}")
        if "BENCH_BODY_PREFIX" in target.extra_env:
            self.people.next = first + sent * THREADS
        if target is self.targets.registrations:
            self.tally.answered += answered
            self.tally.sent += sent
        return result


def preflight(base_url: str, bearer: str, today: date, people: People, tally: Tally) -> None:
    """One of each by hand: the real route registers, the parse-only route echoes, both
    refuse what they should; and the Lua numbering's first IDs are valid numbers."""
    for n in (0, 1, 999, 1000, 123_456):
        parse_citizen_id(citizen_id(n), today=today)
    auth = {"Authorization": bearer}
    body = registration_body(citizen_id(people.take()), today)
    answer = httpx.post(base_url + REGISTRATIONS, json=body, headers=auth, timeout=10)
    if answer.status_code != 201 or answer.json().get("jurisdiction") != "chifeng":
        raise BenchError(
            f"preflight: POST {REGISTRATIONS} answered {answer.status_code}: {answer.text}"
        )
    tally.answered += 1
    tally.sent += 1
    body = registration_body(citizen_id(people.take()), today)
    echo = httpx.post(base_url + PARSE_ONLY, json=body, headers=auth, timeout=10)
    if echo.status_code != 201 or echo.json() != {
        **RegistrationBody(**body).model_dump(mode="json")
    }:
        raise BenchError(f"preflight: POST {PARSE_ONLY} answered {echo.status_code}: {echo.text}")
    refused = [
        (REGISTRATIONS, {}, body, 401),
        (REGISTRATIONS, auth, {**body, "current_region": "440305"}, 422),
        (PARSE_ONLY, auth, {**body, "reason": "tourism"}, 422),
    ]
    for path, headers, payload, status in refused:
        answer = httpx.post(base_url + path, json=payload, headers=headers, timeout=10)
        if answer.status_code != status:
            raise BenchError(f"preflight: POST {path} answered {answer.status_code}, not {status}")


@dataclass(frozen=True)
class Cycle:
    registrations: Round
    parse_only: Round
    healthz: Round

    @property
    def rounds(self) -> tuple[Round, Round, Round]:
        return (self.registrations, self.parse_only, self.healthz)

    @property
    def disturbance(self) -> float:
        return max(run.machine_others for run in self.rounds)


@dataclass(frozen=True)
class Results:
    cycles: list[Cycle]  # the least disturbed
    attempts: int

    def column(self, name: str) -> list[Round]:
        return [getattr(cycle, name) for cycle in self.cycles]

    def ratios(self, baseline: str) -> list[float]:
        return [
            cycle.registrations.core_rate / getattr(cycle, baseline).core_rate
            for cycle in self.cycles
        ]

    def ratio(self, baseline: str) -> float:
        return statistics.median(self.ratios(baseline))

    def wall_ratio(self, baseline: str) -> float:
        rates = zip(self.column("registrations"), self.column(baseline), strict=True)
        return statistics.median(mine.rate / theirs.rate for mine, theirs in rates)

    @property
    def registrations_per_core(self) -> float:
        return statistics.median(r.core_rate for r in self.column("registrations"))

    @property
    def registrations_wall(self) -> float:
        return statistics.median(r.rate for r in self.column("registrations"))

    @property
    def extra_us(self) -> float:
        """Worker time a registration costs beyond parsing its body, per round."""
        return statistics.median(
            1e6 / c.registrations.core_rate - 1e6 / c.parse_only.core_rate for c in self.cycles
        )

    def warnings(self) -> list[str]:
        return common.round_warnings(
            [cycle.disturbance for cycle in self.cycles],
            self.attempts,
            [(name, self.column(name)) for name in ("registrations", "parse_only", "healthz")],
        )


def measure(runner: Runner, *, rounds: int, seconds: int, warmup: int) -> Results:
    order = (runner.targets.registrations, runner.targets.parse_only, runner.targets.healthz)
    if warmup:
        for target in order:
            runner.run(target, warmup)
    cycles: list[Cycle] = []
    for attempt in range(rounds * MAX_ATTEMPTS_PER_ROUND):
        if sum(cycle.disturbance <= DISTURBED for cycle in cycles) >= rounds:
            break
        results = {
            target.name: runner.run(target, seconds)
            for target in (order if attempt % 2 == 0 else order[::-1])
        }
        cycle = Cycle(*(results[target.name] for target in order))
        cycles.append(cycle)
        reg, parsed, health = cycle.rounds
        print(
            f"  round {attempt + 1}, per core: registrations {reg.core_rate:,.0f}/s,"
            f" parse-only {parsed.core_rate:,.0f}/s ({reg.core_rate / parsed.core_rate:.3f}),"
            f" healthz {health.core_rate:,.0f}/s ({reg.core_rate / health.core_rate:.3f});"
            f" server CPU {reg.server_share:.0%}, database {reg.helper_share:.2f} CPUs;"
            f" other processes {cycle.disturbance:.2f} CPUs"
            + (" (disturbed)" if cycle.disturbance > DISTURBED else ""),
            flush=True,
        )
    least = sorted(range(len(cycles)), key=lambda index: cycles[index].disturbance)[:rounds]
    return Results([cycles[index] for index in sorted(least)], len(cycles))


def measure_floor(database: Database, people: People, today: date) -> Floor:
    """The floor on the scratch database once the server has stopped and its rows are
    checked, for people no round used."""
    hub = build_hub(load_settings())
    try:
        numbers = [citizen_id(people.take()) for _ in range(FLOOR_REGISTRATIONS)]
        return registration_floor(database.url, hub.vault, hub.audit.key, numbers, today)
    finally:
        hub.engine.dispose()


# --- reporting ---------------------------------------------------------------------------


def table(results: Results) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        ("endpoint", *common.RATE_COLUMNS, "database CPUs", *common.OTHERS_COLUMNS)
    ]
    for name, key in (
        (f"POST {REGISTRATIONS}", "registrations"),
        (f"POST {PARSE_ONLY} (parse only)", "parse_only"),
        (f"GET {HEALTHZ}", "healthz"),
    ):
        rounds = results.column(key)
        database = f"{statistics.median(r.helper_share for r in rounds):.2f}"
        rows.append((name, *common.rate_cells(rounds), database, *common.others_cells(rounds)))
    return rows


def findings(results: Results, tally: Tally, kept: Stored, floor: Floor) -> list[str]:
    parse_low, parse_high = common.quartiles(results.ratios("parse_only"))
    worker_us = 1e6 / results.registrations_per_core
    health_low, health_high = common.quartiles(results.ratios("healthz"))
    return [
        f"Registrations per core (one worker): **{results.registrations_per_core:,.0f}/s**"
        f" ({results.registrations_wall:,.0f}/s wall clock).",
        f"registrations / parse-only = **{results.ratio('parse_only'):.3f}** (middle half"
        f" {parse_low:.3f} to {parse_high:.3f}; wall clock {results.wall_ratio('parse_only'):.3f}),"
        f" the median of {len(results.cycles)} per-round ratios: a registration costs"
        f" {1 / results.ratio('parse_only'):.1f} parse-only requests, about"
        f" {results.extra_us:,.0f} µs of worker time beyond parsing its body.",
        f"registrations / healthz = **{results.ratio('healthz'):.3f}** (middle half"
        f" {health_low:.3f} to {health_high:.3f}; wall clock {results.wall_ratio('healthz'):.3f}):"
        f" a registration costs {1 / results.ratio('healthz'):.1f} GET /healthz.",
        floor.finding("registrations", "registration", worker_us),
        f"Checked: every answer was the expected status; {tally.answered:,} registrations"
        f" answered 201 and {tally.sent:,} sent (warm-up and preflight included; the rest were"
        f" in flight when wrk stopped); the database holds {kept.rows:,}, one audit entry each"
        f" ({kept.audited:,}), {kept.distinct:,} distinct people, {kept.known:,} of them"
        " regenerated from the script's numbering.",
    ]


def markdown(context: Context, results: Results, tally: Tally, kept: Stored, floor: Floor) -> str:
    lines = [
        *common.section_head(f"Registrations, {context.database.title}", context),
        "",
        *common.markdown_table(table(results)),
        "",
        *(f"- {line}" for line in findings(results, tally, kept, floor)),
        *(f"- Warning: {note}." for note in results.warnings()),
    ]
    return "\n".join(lines)


def print_report(
    context: Context, results: Results, tally: Tally, kept: Stored, floor: Floor
) -> None:
    rows = table(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n{context.database.description}; {context.code}\n{context.load}\n{context.pinning}")
    for row in rows:
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells))
    for line in findings(results, tally, kept, floor):
        print(line.replace("**", ""))
    for note in results.warnings():
        print(f"warning: {note}")


# --- command line ------------------------------------------------------------------------


def command_line() -> argparse.ArgumentParser:
    return common.wrk_parser(
        SCRIPT, "Registrations per second on one worker, as ratios of trivial routes."
    )


def check_token_lasts(args: argparse.Namespace) -> None:
    """Rounds of three runs, each with up to a minute of slack, must end before the token does."""
    worst = (args.rounds * MAX_ATTEMPTS_PER_ROUND + 1) * 3 * (args.duration + 2) + 3 * args.warmup
    if worst > TOKEN_TTL_SECONDS - 60:
        raise BenchError("rounds x duration too long for one token")


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_with_wrk(SCRIPT, command_line(), run, argv, check_token_lasts)


def run(
    args: argparse.Namespace, argv: Sequence[str], wrk: str, workdir: Path, database: Database
) -> int:
    server_core, client_core = common.pick_cpus()
    port, base_url, env = common.server_env(
        database,
        HUB_ACCESS_TOKEN_TTL_SECONDS=str(TOKEN_TTL_SECONDS),
        HUB_SCHEDULER_ENABLED="false",
    )
    client = common.register_client("public-security", [SCOPE])
    script = workdir / "request.lua"
    script.write_text(WRK_SCRIPT)
    helpers: Callable[[], float] | None = (
        common.ProcessesCpu(is_postgres) if database.key == "postgresql" else None
    )
    people, tally = People(), Tally()
    print(f"{database.description}; server at {base_url}", flush=True)
    with running_server(
        "bench.registry:bench_app", env, port, server_core, workdir / "server.log"
    ) as server:
        token = common.fetch_token(
            base_url, basic_authorization(client), f"grant_type=client_credentials&scope={SCOPE}"
        )
        bearer = f"Bearer {token}"
        today = datetime.now(UTC).date()  # the hub's clock is the system clock
        preflight(base_url, bearer, today, people, tally)
        load = Load(
            wrk,
            script,
            base_url,
            args.concurrency,
            server.pid,
            server_core,
            client_core,
            helpers=helpers,
        )
        runner = Runner(load, people, tally, targets(bearer, today))
        results = measure(runner, rounds=args.rounds, seconds=args.duration, warmup=args.warmup)
    kept = stored(people.next)
    common.check_kept("registrations", kept.rows, tally.answered, tally.sent)
    if not kept.rows == kept.distinct == kept.audited == kept.known:
        raise BenchError(
            f"{kept.rows} registrations, {kept.distinct} distinct people, {kept.audited} audit"
            f" entries, {kept.known} of the numbers handed out: they should all be equal"
        )
    floor = measure_floor(database, people, today)
    context = common.context(
        SCRIPT,
        argv,
        database,
        load=(
            f"wrk {common.wrk_version(wrk)}, 1 thread, {args.concurrency} keep-alive connections;"
            f" {args.warmup} s warm-up per endpoint, then rounds of {args.duration} s per"
            f" endpoint, medians of the {len(results.cycles)} least disturbed of"
            f" {results.attempts} rounds; token TTL {TOKEN_TTL_SECONDS} s, scheduler off"
        ),
        pinning=(
            f"server (one uvicorn worker) on CPU {server_core}, wrk on CPU {client_core}"
            + (", PostgreSQL unpinned" if helpers else "")
            if server_core is not None
            else "none (no taskset or a single CPU): server and wrk share the CPUs"
        ),
    )
    print_report(context, results, tally, kept, floor)
    if not args.no_record:
        record(args.results, SCRIPT, database.key, markdown(context, results, tally, kept, floor))
        print(f"recorded in {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
