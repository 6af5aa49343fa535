"""Card taps: hub decisions per second on PostgreSQL, latency at half load, pcscd chain.

The hub's decisions per second on PostgreSQL, their latency at half that load, and one tap
through the whole chain (virtual card, pcscd, window agent, hub).

    .venv/bin/python bench/taps.py [--database-url URL] [--parts both|hub|pcscd]
                                   [--duration S] [--rounds N] [--warmup S] [--concurrency C]
                                   [--latency-seconds S] [--latency-rounds N]
                                   [--photo-bytes B] [--pcsc-taps N] [--reader-port P]

Needs wrk (Debian package `wrk`) and, for the second part, pcscd with vsmartcard-vpcd and the
`window` extra (`make pcscd window`). Both parts measure one real hub server: uvicorn with one
worker, pinned to one CPU, on a scratch PostgreSQL database (`hub_bench_<pid>`, dropped at the
end), relay and scheduler off (neither is on a tap's path). This process (set-up, the open-loop
client, the window agent) is pinned to the other CPU, as wrk is.

Part 1, the hub (targets, issue 7: taps at least 50% of GET /healthz's rate; p99 under 25 ms
at half load). bench/common.py's machinery, as bench/registry.py uses it:

- Every tap is a new card, never seen by the server: the hub's `RecordMemo` (decoded and
  verified records, by their hash) never hits, which is the worst case and, with many more
  holders than a worker remembers, the usual one. Before each round this process makes the
  holders (registration, valid permit, live card with its public key registered, as
  personalisation leaves them: inserted in bulk, sealed IDs), each card's key pair and
  record signed by the hub's active issuing key, with a photo of --photo-bytes (12 KiB: the
  size hub/verification/service.py's docstring reckons with; the layout allows 16 KiB);
  then one challenge per card through `hub.verification.service.issue_challenge` for the
  window's client (a window terminal of education), each signed with its card's key; then
  writes the bodies, one a line. wrk's script reads them at start and sends each once. The
  challenges are created last, seconds before the round; they are good for 60 s.
- A round is POST /verification/v1/taps (service compulsory-education, which education's
  windows grant to a valid permit; the agreement in force discloses the holder record, so the
  whole grant path runs) and GET /healthz, order reversed every other round, then GET
  /verification/v1/issuing-keys, one SELECT in a unit of work (the floor of any route that
  touches the database); the figure is the median of the per-round ratios of per-core rates,
  the rounds the least disturbed ones, as in bench/tokens.py. Every answer is checked in the
  script's `response`: a tap must be a 200 with "decision":"grant", the GETs 200s, or the run
  fails. The deck is sized 1.5x the fastest
  rate seen; a round that runs out of bodies (wrk is then sent to /healthz, told apart by its
  body) is void and measured again with a bigger deck.
- Latency at half load: wrk keeps 32 connections busy, so its latencies are those of a
  saturated server (given in the table, for what they are). Latency at a fixed rate needs an
  open-loop client (wrk2's idea; wrk2 is not packaged): here, an asyncio client in this process
  sends the same kind of pre-signed taps at exactly half the median wall-clock rate of the
  taps, on a schedule that never waits for answers (request i is due at start + i/rate, on
  the least recently used idle keep-alive connection of a pool of 32, or a new one if all are
  busy or the server closed it), and measures
  each latency from when the request was due, so a stall in the server or the client counts
  against the hub (no coordinated omission). The same client at the same rate against
  GET /healthz gives the floor of client and HTTP alone; the client's lag behind its schedule
  is reported. Each run starts after a CHECKPOINT (`checkpoint`), so that the rate rounds'
  writes are not flushed in the middle of one.
- CPU per request: the worker's, and that of the PostgreSQL backends serving the scratch
  database (found by their process titles; the cluster may serve other people's databases).
- Afterwards: as many decisions as audit entries `verification.tap` and challenges used, all
  grants, between the answers counted and the requests sent (wrk stops with some in flight);
  the audit chain verifies.

Part 2, the chain (targets: at most 4 APDUs a tap; the hub's share under 10 ms). One card,
personalised through the real writer (`hub.window.writer.personalise_card`: a blank
`hub card emulate` card in pcscd's vsmartcard-vpcd reader, the personalisation route), then
--pcsc-taps taps as the window does them (hub/window/ui.py): connect (the card is powered up
and answers its ATR), SELECT, `WindowAgent.tap` (a challenge from the hub, READ BINARY,
INTERNAL AUTHENTICATE, the tap to the hub), disconnect (powered down) - the decision is shown
before the disconnect, so a tap's time ends there. Timed from outside the hub's code: a
`CardLink` subclass times each transmit, a `HubClient` subclass each call to the hub. The
reader is taken with the lock the card tests take (tests/card/pcsc.py), so a test run and this
never share it. CPU per tap of every process in the chain comes from /proc over all the taps.

Results go to bench/RESULTS.md, a section per part, replaced on each run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import fcntl
import json
import math
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from hub.auth.domain import ClientKind, Department, Principal
from hub.auth.service import NewClient
from hub.card import issuing, layout, protocol
from hub.card.store import Card
from hub.composition import Hub, build_hub
from hub.db import unit_of_work
from hub.permits.identity import parse_citizen_id
from hub.permits.store import Permit, Registration
from hub.settings import load_settings
from hub.verification.service import issue_challenge, purpose_of

if __package__ in (None, ""):  # run as `python bench/...py`: bench/ is on the path, not the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, floors
from bench.common import BenchError, Database, Load, Round, Target, bounded_option, verdict
from bench.floors import Floor
from bench.registry import citizen_id

SCRIPT = "bench/taps.py"
SCOPE = "verification:tap"
SERVICE = "compulsory-education"  # education's; a valid permit, no minimum residence
TAPS = "/verification/v1/taps"
HEALTHZ = "/healthz"
FLOOR = "/verification/v1/issuing-keys"  # one SELECT in a unit of work: any database route's floor
GRANT = b'"decision":"grant"'
TOKEN_TTL_SECONDS = 3600
TARGET_RATIO = 0.50  # taps / healthz, per core
TARGET_P99_MS = 25.0  # at half the taps' maximum rate
TARGET_APDUS = 4
DRIVER_FLOOR_TAPS = 2_000
TARGET_HUB_MS = 10.0  # challenge + tap round trips, as the window agent sees them
DECK_MARGIN = 1.5  # bodies per round: this many times the fastest rate seen
FIRST_DECK = 1_000  # the warm-up's; a warm-up that runs out is only a warm-up
POOL = 32  # keep-alive connections of the open-loop client, as wrk's
FIRST_VPCD_PORT = 35963  # "Virtual PCD 00 00"; tests/card/pcsc.py names readers the same way
PCSC_WARMUP_TAPS = 10

# wrk's script. With BENCH_BODIES it sends the file's bodies, one each, in order (then, if the
# deck runs out, GET /healthz as a filler the response check tells apart by its body);
# without, the same request each time. `done` prints wrk's summary and the script's counts.
WRK_SCRIPT = (
    """\
local method = os.getenv("BENCH_METHOD") or "GET"
local bodies = os.getenv("BENCH_BODIES")
local authorization = os.getenv("BENCH_AUTHORIZATION")
local grant = '"decision":"grant"'
local filler_body = '{"status":"ok"}'

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  sent, answered, grants, unexpected, exhausted = 0, 0, 0, 0, 0
  queued = {}
  static = wrk.format(method, nil, {Authorization = authorization}, nil)
  filler = wrk.format("GET", "/healthz", {Authorization = authorization}, nil)
  if bodies then
    local headers = {Authorization = authorization, ["Content-Type"] = "application/json"}
    for line in io.lines(bodies) do
      queued[#queued + 1] = wrk.format("POST", nil, headers, line)
    end
  end
end

function request()
  sent = sent + 1
  if not bodies then return static end
  local next_request = queued[sent]
  if next_request then
    queued[sent] = nil
    return next_request
  end
  exhausted = exhausted + 1
  return filler
end

function response(status, headers, body)
  answered = answered + 1
  if status == 200 then
    if not bodies then return end
    if body and body:find(grant, 1, true) then
      grants = grants + 1
      return
    end
    if exhausted > 0 and body == filler_body then return end
  end
  unexpected = unexpected + 1
  if unexpected <= 3 then io.stderr:write(status, " ", body or "", "\\n") end
end

"""
    + common.WRK_DONE
    + """\
  local s, a, g, u, x = 0, 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("sent")
    a = a + thread:get("answered")
    g = g + thread:get("grants")
    u = u + thread:get("unexpected")
    x = x + thread:get("exhausted")
  end
  io.write(string.format("BENCH_COUNTS sent=%d answered=%d grants=%d unexpected=%d exhausted=%d\\n",
    s, a, g, u, x))
end
"""
)


# --- cards -------------------------------------------------------------------------------


def photo(size: int) -> bytes:
    """A real PNG of grey noise about `size` bytes long (noise does not compress)."""
    width = 96
    height = max(1, (size - 80) // (width + 1))
    rng = random.Random(20260101)
    rows = b"".join(b"\x00" + rng.randbytes(width) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    image = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )
    if len(image) > layout.MAX_PHOTO_BYTES:
        raise BenchError(f"--photo-bytes gives a {len(image):,}-byte photo; the card holds 16 KiB")
    return image


@dataclass(frozen=True)
class DealtCard:
    permit_id: str
    serial: str
    key: ec.EllipticCurvePrivateKey | None  # None: not personalised (its key is the card's)
    record: bytes


class Deck:
    """Holders with issued permits and personalised cards, made in bulk; every one new."""

    def __init__(self, hub: Hub, image: bytes) -> None:
        self.hub, self.image, self.next = hub, image, 0
        with Session(hub.engine) as session:
            self.kid, self.signer = issuing.active_signer(session, hub.card_key_password)
        self.authority = hub.jurisdictions["chifeng"].permit.issuing_authority.zh
        self.record_bytes = 0  # the last record's

    def cards(self, count: int, *, personalised: bool = True) -> list[DealtCard]:
        """`count` valid permits of new holders, each with a live card; personalised: the
        card's key registered and its record signed, as the personalisation route leaves them."""
        hub, now, today = self.hub, self.hub.clock.now(), self.hub.clock.today()
        registrations, permits, cards, dealt = [], [], [], []
        for n in range(self.next, self.next + count):
            number = parse_citizen_id(citizen_id(n), today=today)
            registration_id, permit_id = str(uuid.uuid4()), str(uuid.uuid4())
            serial = f"CF{today:%y}{n:012X}"
            registration = common.holder_registration(
                hub,
                number,
                n,
                registration_id=registration_id,
                arrived_on=today - timedelta(days=730),
                now=now,
            )
            lookup = registration["citizen_id_hash"]
            valid_from, expires_on = today - timedelta(days=30), today + timedelta(days=335)
            permits.append(
                {
                    "id": permit_id,
                    "registration_id": registration_id,
                    "jurisdiction": "chifeng",
                    "citizen_id_hash": lookup,
                    "state": "valid",
                    "receipt_number": f"T{n}",
                    "accepted_on": today - timedelta(days=60),
                    "issue_due_on": today - timedelta(days=30),
                    "card_serial": serial,
                    "valid_from": valid_from,
                    "expires_on": expires_on,
                    "residence_start": today - timedelta(days=730),
                    "version": 2,
                    "updated_at": now,
                }
            )
            registrations.append(registration)
            key = ec.generate_private_key(ec.SECP256R1()) if personalised else None
            point = layout.point_of(key.public_key()) if key else None
            cards.append(
                {
                    "serial": serial,
                    "permit_id": permit_id,
                    "status": "live",
                    "reason": "first-issuance",
                    "fee": "free",
                    "issued_on": valid_from,
                    "public_key": point,
                    "personalised_at": now if point else None,
                }
            )
            record = b""
            if point is not None:
                record = self._record(registration, number.value, serial, permit_id, point)
            dealt.append(DealtCard(permit_id, serial, key, record))
        with unit_of_work(hub.engine) as session:
            session.execute(sa.insert(Registration), registrations)
            session.execute(sa.insert(Permit), permits)
            session.execute(sa.insert(Card), cards)
        self.next += count
        return dealt

    def _record(
        self, holder: dict[str, Any], number: str, serial: str, permit_id: str, point: bytes
    ) -> bytes:
        """EF.RECORD as `hub.card.issuing.sign_record` makes it (the key decrypted once here,
        not per card)."""
        today = self.hub.clock.today()
        record = layout.CardRecord(
            holder=layout.Holder(
                name=holder["name"],
                sex=holder["sex"],
                ethnicity=holder["ethnicity"],
                birth_date=holder["birth_date"],
                citizen_id=number,
                household_address=holder["household_address"],
                current_address=holder["current_address"],
            ),
            photo=layout.Photo("image/png", self.image),
            card=layout.CardFacts(
                serial=serial,
                permit_id=permit_id,
                jurisdiction="chifeng",
                issuing_authority=self.authority,
                valid_from=today - timedelta(days=30),
                valid_until=today + timedelta(days=335),
            ),
            card_key=point,
        )
        encoded = layout.sign(record, self.kid, self.signer).encode()
        self.record_bytes = len(encoded)
        return encoded

    def tap_bodies(self, count: int, window: Principal) -> list[bytes]:
        """`count` new cards, then a fresh challenge for each (the window's, through the
        service layer), answered by the card: the JSON bodies of taps."""
        dealt = self.cards(count)
        issued = [issue_challenge(self.hub.verification, window) for _ in dealt]
        bodies = []
        for card, challenge in zip(dealt, issued, strict=True):
            assert card.key is not None
            signature = card.key.sign(
                protocol.auth_message(challenge.nonce), ec.ECDSA(hashes.SHA256())
            )
            body = {
                "challenge_id": str(challenge.id),
                "service": SERVICE,
                "record": base64.b64encode(card.record).decode(),
                "card_signature": base64.b64encode(signature).decode(),
            }
            bodies.append(json.dumps(body, separators=(",", ":")).encode())
        return bodies


def window_principal(client: NewClient) -> Principal:
    """The window as the service layer sees it (only the client id binds a challenge)."""
    return Principal(
        client_id=client.client_id,
        department=Department.EDUCATION,
        kind=ClientKind.WINDOW_TERMINAL,
        scopes=frozenset({SCOPE}),
        token_id="bench",
        expires_at=0,
    )


def add_window_terminal(hub: Hub) -> NewClient:
    """A service-window terminal of education with the tap scope (`hub clients add
    --department education --scopes verification:tap --terminal`)."""
    return hub.add_client(department="education", scopes=[SCOPE], kind=ClientKind.WINDOW_TERMINAL)


# --- part 1: rate ------------------------------------------------------------------------


@dataclass
class Tally:
    """Taps of the whole run: answered grants, and requests sent (some in flight at the end)."""

    grants: int = 0
    sent: int = 0


class Runner:
    """Runs wrk rounds of taps (each with a fresh deck), of healthz and of the floor."""

    def __init__(self, load: Load, deck: Deck, window: Principal, bearer: str, workdir: Path):
        self.load, self.deck, self.window, self.workdir = load, deck, window, workdir
        self.bearer = bearer
        self.tally = Tally()
        self.fastest = 0.0  # taps per wall-clock second, the best seen
        self.void = 0  # rounds that ran out of bodies
        self.healthz = Target(f"GET {HEALTHZ}", "GET", HEALTHZ, bearer)
        self.floor = Target(f"GET {FLOOR}", "GET", FLOOR, bearer)

    def deal(self, count: int) -> Target:
        path = self.workdir / "taps.jsonl"
        path.write_bytes(b"\n".join(self.deck.tap_bodies(count, self.window)) + b"\n")
        return Target(
            f"POST {TAPS}", "POST", TAPS, self.bearer, extra_env={"BENCH_BODIES": str(path)}
        )

    def deck_size(self, seconds: int) -> int:
        return math.ceil(DECK_MARGIN * self.fastest * seconds) + 100

    def taps(self, target: Target, seconds: int, *, warmup: bool = False) -> Round | None:
        """One round of taps with `target`'s deck; None if the deck ran out (void)."""
        result = self.load.run(target, seconds)
        counts = result.counts
        grants, sent, exhausted = (int(counts[k]) for k in ("grants", "sent", "exhausted"))
        self.tally.grants += grants
        self.tally.sent += sent - exhausted
        if exhausted:
            if not warmup:
                self.void += 1
            self.fastest = max(self.fastest * 2, 2 * grants / result.seconds)
            return None
        if grants != result.requests:
            raise BenchError(f"taps: {grants} grants counted, {result.requests} answers")
        self.fastest = max(self.fastest, result.rate)
        return result


@dataclass(frozen=True)
class Cycle:
    taps: Round
    healthz: Round
    floor: Round

    @property
    def disturbance(self) -> float:
        """Of the measured pair; the floor's round is not judged by it: under 32 connections
        the pool opens and closes PostgreSQL backends, whose CPU (and the forks) show up as
        other processes' work."""
        return max(self.taps.machine_others, self.healthz.machine_others)

    @property
    def ratio(self) -> float:
        return self.taps.core_rate / self.healthz.core_rate


@dataclass(frozen=True)
class RateResults:
    cycles: list[Cycle]  # the least disturbed
    attempts: int
    void: int

    def column(self, name: str) -> list[Round]:
        return [getattr(cycle, name) for cycle in self.cycles]

    @property
    def ratio(self) -> float:
        return statistics.median(cycle.ratio for cycle in self.cycles)

    @property
    def wall_ratio(self) -> float:
        return statistics.median(c.taps.rate / c.healthz.rate for c in self.cycles)

    @property
    def floor_ratio(self) -> float:
        return statistics.median(c.floor.core_rate / c.healthz.core_rate for c in self.cycles)

    @property
    def taps_per_core(self) -> float:
        return statistics.median(r.core_rate for r in self.column("taps"))

    @property
    def taps_wall(self) -> float:
        return statistics.median(r.rate for r in self.column("taps"))

    def warnings(self) -> list[str]:
        return common.round_warnings(
            [cycle.disturbance for cycle in self.cycles],
            self.attempts,
            [(name, self.column(name)) for name in ("taps", "healthz")],
        )


def measure_rate(runner: Runner, *, rounds: int, seconds: int, warmup: int) -> RateResults:
    if warmup:
        healthz = runner.load.run(runner.healthz, warmup)
        deck = FIRST_DECK
        for _ in range(4):  # until a warm-up shows the rate, within a bound
            if runner.taps(runner.deal(deck), warmup, warmup=True) is not None:
                break
            deck = min(runner.deck_size(warmup), math.ceil(healthz.rate * warmup))
        print(f"  warm-up: taps {runner.fastest:,.0f}/s, healthz {healthz.rate:,.0f}/s", flush=True)
    cycles: list[Cycle] = []
    attempts = 0
    for attempt in range(rounds * common.MAX_ATTEMPTS_PER_ROUND):
        if sum(cycle.disturbance <= common.DISTURBED for cycle in cycles) >= rounds:
            break
        attempts = attempt + 1
        target = runner.deal(runner.deck_size(seconds))  # challenges made now: fresh
        if attempt % 2 == 0:
            taps = runner.taps(target, seconds)
            healthz = runner.load.run(runner.healthz, seconds)
        else:
            healthz = runner.load.run(runner.healthz, seconds)
            taps = runner.taps(target, seconds)
        floor = runner.load.run(runner.floor, seconds)
        if taps is None:
            print(f"  round {attempt + 1}: the deck ran out; void, measured again", flush=True)
            continue
        cycle = Cycle(taps, healthz, floor)
        cycles.append(cycle)
        print(
            f"  round {attempt + 1}, per core: taps {taps.core_rate:,.0f}/s,"
            f" healthz {healthz.core_rate:,.0f}/s ({cycle.ratio:.3f});"
            f" server CPU {taps.server_share:.0%}, database {taps.helper_share:.2f} CPUs;"
            f" other processes {cycle.disturbance:.2f} CPUs"
            + (" (disturbed)" if cycle.disturbance > common.DISTURBED else ""),
            flush=True,
        )
    if not cycles:
        raise BenchError("no round of taps completed")
    least = sorted(range(len(cycles)), key=lambda index: cycles[index].disturbance)[:rounds]
    return RateResults([cycles[index] for index in sorted(least)], attempts, runner.void)


# --- part 1: latency at a fixed rate (open loop) ------------------------------------------


@dataclass(frozen=True)
class OpenLoop:
    """One open-loop run: latencies from each request's due time, in seconds."""

    latencies: list[float]
    lags: list[float]  # how late each request left, against its schedule
    seconds: float
    connections: int  # opened in all (the pool and any opened when all were busy)
    server_cpu: float
    helper_cpu: float

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def http_request(method: str, path: str, authorization: str, body: bytes = b"") -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {common.HOST}", f"Authorization: {authorization}"]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _open_loop(port: int, requests: Sequence[bytes], rate: float, grant: bool) -> OpenLoop:
    """The pool is used in turn (least recently used first), so that at these rates no
    connection sits idle for uvicorn's keep-alive timeout (5 s); one the server has closed
    anyway is replaced, and opening it counts in that request's latency."""
    loop = asyncio.get_running_loop()
    idle = collections.deque(
        [await asyncio.open_connection(common.HOST, port) for _ in range(POOL)]
    )
    everyone = list(idle)
    latencies = [0.0] * len(requests)
    lags = [0.0] * len(requests)
    failures: list[str] = []

    async def one(index: int, request: bytes, due: float) -> None:
        connection = idle.popleft() if idle else None
        if connection is None or connection[0].at_eof():
            connection = await asyncio.open_connection(common.HOST, port)
            everyone.append(connection)
        reader, writer = connection
        lags[index] = loop.time() - due
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        latencies[index] = loop.time() - due
        if head[9:12] != b"200" or (grant and GRANT not in body):
            failures.append((head + body).decode(errors="replace")[:500])
        idle.append(connection)

    start = loop.time() + 0.2
    tasks = []
    for index, request in enumerate(requests):
        due = start + index / rate
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(loop.create_task(one(index, request, due)))
    await asyncio.gather(*tasks)
    seconds = loop.time() - start
    for _, writer in everyone:
        writer.close()
    if failures:
        raise BenchError(f"open loop: {len(failures)} unexpected answers, first: {failures[0]}")
    return OpenLoop(latencies, lags, seconds, len(everyone), 0.0, 0.0)


def open_loop(
    load: Load, port: int, requests: Sequence[bytes], rate: float, *, grant: bool
) -> OpenLoop:
    server_before = common.process_cpu_seconds(load.server_pid)
    helpers_before = load.helpers() if load.helpers else 0.0
    run = asyncio.run(_open_loop(port, requests, rate, grant))
    server_cpu = common.process_cpu_seconds(load.server_pid) - server_before
    helper_cpu = (load.helpers() if load.helpers else 0.0) - helpers_before
    return OpenLoop(run.latencies, run.lags, run.seconds, run.connections, server_cpu, helper_cpu)


@dataclass(frozen=True)
class LatencyResults:
    rate: float
    taps: list[OpenLoop]
    healthz: list[OpenLoop]

    @staticmethod
    def pooled(runs: list[OpenLoop]) -> OpenLoop:
        return OpenLoop(
            [value for run in runs for value in run.latencies],
            [value for run in runs for value in run.lags],
            sum(run.seconds for run in runs),
            max(run.connections for run in runs),
            sum(run.server_cpu for run in runs),
            sum(run.helper_cpu for run in runs),
        )


def measure_latency(
    runner: Runner, port: int, rate: float, *, rounds: int, seconds: int
) -> LatencyResults:
    count = max(1, round(rate * seconds))
    healthz = http_request("GET", HEALTHZ, runner.bearer)
    taps_runs, healthz_runs = [], []
    for attempt in range(rounds):
        bodies = runner.deck.tap_bodies(count, runner.window)
        requests = [http_request("POST", TAPS, runner.bearer, body) for body in bodies]
        checkpoint(runner.deck.hub.engine)

        def taps_run(requests: list[bytes] = requests) -> OpenLoop:
            run = open_loop(runner.load, port, requests, rate, grant=True)
            runner.tally.grants += len(requests)
            runner.tally.sent += len(requests)
            return run

        if attempt % 2 == 0:
            taps_runs.append(taps_run())
            healthz_runs.append(open_loop(runner.load, port, [healthz] * count, rate, grant=False))
        else:
            healthz_runs.append(open_loop(runner.load, port, [healthz] * count, rate, grant=False))
            taps_runs.append(taps_run())
        print(
            f"  at {rate:,.0f}/s: taps p50 {taps_runs[-1].percentile_ms(0.5):.1f} ms,"
            f" p99 {taps_runs[-1].percentile_ms(0.99):.1f} ms; healthz p99"
            f" {healthz_runs[-1].percentile_ms(0.99):.1f} ms",
            flush=True,
        )
    return LatencyResults(rate, taps_runs, healthz_runs)


def checkpoint(engine: Engine) -> None:
    """Flush what the rounds before wrote, as pgbench does before a run: a checkpoint due in
    the middle of a 10-s run stalls commits behind its disk writes for hundreds of
    milliseconds on this machine's disk (seen: p99 per run 79, 12 and 228 ms)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("CHECKPOINT")


# --- part 1: what the database holds ------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    audited: int
    audit_grants: int
    decisions: int
    decision_grants: int
    challenges_used: int
    chain_rows: int
    chain_intact: bool
    verify_seconds: float


def stored(hub: Hub) -> Stored:
    with hub.engine.connect() as connection:

        def count(sql: str) -> int:
            return int(connection.execute(sa.text(sql)).scalar_one())

        audited = count("SELECT count(*) FROM audit_log WHERE action = 'verification.tap'")
        audit_grants = count(
            "SELECT count(*) FROM audit_log WHERE action = 'verification.tap' AND outcome = 'grant'"
        )
        decisions = count("SELECT count(*) FROM verification_decision")
        grants = count("SELECT count(*) FROM verification_decision WHERE decision = 'grant'")
        used = count("SELECT count(*) FROM verification_challenge WHERE used_at IS NOT NULL")
    started = time.perf_counter()
    with Session(hub.engine) as session:
        report = hub.audit.verify(session)
    return Stored(
        audited,
        audit_grants,
        decisions,
        grants,
        used,
        report.rows_checked,
        report.intact,
        time.perf_counter() - started,
    )


def check_stored(kept: Stored, taps_answered: int, taps_sent: int) -> None:
    common.check_kept("decisions", kept.decisions, taps_answered, taps_sent)
    if not kept.decisions == kept.decision_grants == kept.audited == kept.audit_grants:
        raise BenchError(
            f"{kept.decisions} decisions ({kept.decision_grants} grants), {kept.audited} audit"
            f" entries ({kept.audit_grants} grants): they should all be equal"
        )
    if kept.challenges_used != kept.decisions:
        raise BenchError(f"{kept.challenges_used} challenges used, {kept.decisions} decisions")
    if not kept.chain_intact:
        raise BenchError("the audit chain does not verify")


# --- part 2: the chain through pcscd ------------------------------------------------------


@dataclass(frozen=True)
class ChainTap:
    total: float  # connect to decision, seconds
    connect: float
    apdu: float  # inside the transmits
    apdus: int
    challenge: float  # inside POST /challenges
    tap: float  # inside POST /taps
    agent_cpu: float  # this process's CPU time over the tap

    @property
    def hub(self) -> float:
        return self.challenge + self.tap

    @property
    def rest(self) -> float:
        return self.total - self.connect - self.apdu - self.hub


@dataclass(frozen=True)
class ChainResults:
    taps: list[ChainTap]
    reader: str
    record_bytes: int
    cpu: dict[str, float]  # seconds per tap, by process
    audited: int
    healthz: list[float]  # GET /healthz round trips through the agent's client, for scale


def database_cpu(url: str) -> Callable[[], float]:
    """CPU seconds, so far, of the PostgreSQL backends serving the scratch database (by their
    process titles). Other databases of the cluster (other people's test runs) are left out,
    and so are the cluster's shared background processes."""
    title = f" {make_url(url).database} ".encode()

    def serves_scratch(pid: int) -> bool:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        return command.startswith(b"postgres: ") and title in command

    return common.ProcessesCpu(serves_scratch)


def _cpu_of_named(name: str) -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    total += common.process_cpu_seconds(int(entry.name))
    return total


@contextlib.contextmanager
def reader_lock(port: int) -> Iterator[None]:
    """The lock every card test run takes on this virtual reader (tests/card/pcsc.py)."""
    path = Path(tempfile.gettempdir()) / f"hub-vpcd-{port}.lock"
    with path.open("w") as lock:
        deadline = time.monotonic() + 600
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BenchError(f"the reader lock {path} was held for 10 minutes") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def measure_chain(setting: Setting) -> ChainResults:
    hub, deck, args, workdir = setting.hub, setting.deck, setting.args, setting.workdir
    base_url, server_pid, window = setting.base_url, setting.server_pid, setting.window
    try:
        from smartcard import scard
        from smartcard.System import readers

        from hub.window.agent import Cache, WindowAgent
        from hub.window.hubclient import HubClient
        from hub.window.reader import CardLink, connect
        from hub.window.writer import SCOPE as WRITER_SCOPE
        from hub.window.writer import personalise_card
    except ImportError:
        raise BenchError("part 2 needs pyscard, the `window` extra: make pcscd window") from None

    reader_name = f"Virtual PCD 00 {args.reader_port - FIRST_VPCD_PORT:02d}"

    @dataclass
    class TimedLink(CardLink):
        """A `CardLink` that adds up the time spent in its transmits."""

        spent: float = 0.0

        def send(self, apdu: bytes, *, accept: tuple[int, ...] = (protocol.SW.OK,)) -> bytes:
            started = time.perf_counter()
            try:
                return super().send(apdu, accept=accept)
            finally:
                self.spent += time.perf_counter() - started

    class TimedClient(HubClient):
        """A `HubClient` that adds up the time spent in its POSTs, by path."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.spent: dict[str, float] = {}

        def post(self, path: str, body: Any) -> Any:
            started = time.perf_counter()
            try:
                return super().post(path, body)
            finally:
                self.spent[path] = self.spent.get(path, 0.0) + time.perf_counter() - started

    def present(context: int) -> bool:
        result, states = scard.SCardGetStatusChange(
            context, 0, [(reader_name, scard.SCARD_STATE_UNAWARE)]
        )
        if result != scard.SCARD_S_SUCCESS:
            message = scard.SCardGetErrorMessage(result).strip()
            raise BenchError(f"pcscd has no reader {reader_name!r} ({message})")
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)

    def wait(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 15
        while not condition():
            if time.monotonic() > deadline:
                raise BenchError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def audited() -> int:
        with hub.engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text(
                        "SELECT count(*) FROM audit_log"
                        " WHERE action = 'verification.tap' AND actor_client_id = :client"
                    ),
                    {"client": window.client_id},
                ).scalar_one()
            )

    (permit,) = deck.cards(1, personalised=False)  # issued, its card not written yet
    keys = workdir / "issuing.jwks"
    with Session(hub.engine) as session:
        keys.write_text(json.dumps(issuing.issuing_jwks(session)))
    card_file, card_log = workdir / "holder.card", workdir / "card.log"
    emulate = [
        *("taskset", "-c", ",".join(map(str, sorted(setting.all_cpus)))),
        str(Path(sys.executable).parent / "hub"),
        *("card", "emulate", "--card", str(card_file), "--issuer-keys", str(keys)),
        *("--reader-port", str(args.reader_port)),
    ]
    writer = setting.writer
    assert writer.secret is not None and window.secret is not None
    audited_before = audited()
    with reader_lock(args.reader_port):
        result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if result != scard.SCARD_S_SUCCESS:
            raise BenchError(f"pcscd is not running ({scard.SCardGetErrorMessage(result)})")
        emulator: subprocess.Popen[bytes] | None = None
        try:
            if present(context):
                raise BenchError(f"{reader_name} already holds a card that is not this run's")
            with card_log.open("wb") as log:
                card = emulator = subprocess.Popen(emulate, stdout=log, stderr=subprocess.STDOUT)
            wait(lambda: card.poll() is not None or present(context), f"the card in {reader_name}")
            if card.poll() is not None:
                raise BenchError(f"`hub card emulate` exited:\n{card_log.read_text()}")
            writing = HubClient(base_url, writer.client_id, writer.secret, WRITER_SCOPE)
            try:
                link = connect(reader_name)
                personalise_card(writing, link, permit.permit_id, deck.image)
                record_bytes = len(link.read_record())
                link.connection.disconnect()
            finally:
                writing.close()
            client = TimedClient(base_url, window.client_id, window.secret, SCOPE, language="en")
            agent = WindowAgent(client, SERVICE, Cache(workdir / "agent"))
            reader = next(r for r in readers() if str(r) == reader_name)

            def one_tap() -> ChainTap:
                """As hub/window/ui.py's TapObserver.tap, timed."""
                client.spent.clear()
                connection = reader.createConnection()
                started, cpu = time.perf_counter(), time.process_time()
                connection.connect()
                connected = time.perf_counter()
                link = TimedLink(connection)
                link.select()
                decision = agent.tap(link)
                total = time.perf_counter() - started
                agent_cpu = time.process_time() - cpu
                connection.disconnect()
                if not decision.grant or decision.offline:
                    raise BenchError(f"a tap was not granted on line: {decision.render('en')}")
                return ChainTap(
                    total,
                    connected - started,
                    link.spent,
                    link.apdus,
                    client.spent.get("/verification/v1/challenges", 0.0),
                    client.spent.get(TAPS, 0.0),
                    agent_cpu,
                )

            try:
                for _ in range(PCSC_WARMUP_TAPS):
                    one_tap()
                database = database_cpu(setting.database.url)
                before = _chain_cpu(server_pid, card.pid, database)
                taps = [one_tap() for _ in range(args.pcsc_taps)]
                after = _chain_cpu(server_pid, card.pid, database)
                healthz = []
                for _ in range(args.pcsc_taps):
                    started = time.perf_counter()
                    client.get(HEALTHZ)
                    healthz.append(time.perf_counter() - started)
            finally:
                client.close()
        finally:
            if emulator is not None and emulator.poll() is None:
                emulator.terminate()
                emulator.wait(10)
            with contextlib.suppress(BenchError):
                wait(lambda: not present(context), f"{reader_name} to be empty again")
            scard.SCardReleaseContext(context)
    count = audited() - audited_before
    if count != PCSC_WARMUP_TAPS + len(taps):
        raise BenchError(f"{count} audit entries for {PCSC_WARMUP_TAPS + len(taps)} taps")
    cpu = {name: (after[name] - before[name]) / len(taps) for name in after}
    return ChainResults(taps, reader_name, record_bytes, cpu, count, healthz)


def _chain_cpu(
    server_pid: int, emulator_pid: int, database: Callable[[], float]
) -> dict[str, float]:
    return {
        "hub server (uvicorn worker)": common.process_cpu_seconds(server_pid),
        "PostgreSQL (the scratch database's backends)": database(),
        "card emulator": common.process_cpu_seconds(emulator_pid),
        "pcscd": _cpu_of_named("pcscd"),
    }


# --- reporting ---------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def rate_table(results: RateResults) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        (
            "endpoint (wrk, saturating)",
            *common.RATE_COLUMNS,
            "server µs/req",
            "database CPUs",
            "database µs/req",
            *common.OTHERS_COLUMNS,
        )
    ]
    endpoints = (f"POST {TAPS}", "taps"), (f"GET {HEALTHZ}", "healthz"), (f"GET {FLOOR}", "floor")
    for name, key in endpoints:
        rounds = results.column(key)
        rows.append(
            (
                name,
                *common.rate_cells(rounds),
                f"{statistics.median(1e6 * r.server_cpu / r.requests for r in rounds):,.0f}",
                f"{statistics.median(r.helper_share for r in rounds):.2f}",
                f"{statistics.median(1e6 * r.helper_cpu / r.requests for r in rounds):,.0f}",
                *common.others_cells(rounds),
            )
        )
    return rows


def latency_table(latency: LatencyResults) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        (
            f"endpoint (open loop, {latency.rate:,.0f}/s)",
            "requests",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "p99 per run, ms",
            "server CPU",
            "client lag p99 ms",
        )
    ]
    for name, runs in ((f"POST {TAPS}", latency.taps), (f"GET {HEALTHZ}", latency.healthz)):
        pooled = LatencyResults.pooled(runs)
        rows.append(
            (
                name,
                f"{len(pooled.latencies):,}",
                f"{pooled.percentile_ms(0.50):.2f}",
                f"{pooled.percentile_ms(0.90):.2f}",
                f"{pooled.percentile_ms(0.99):.2f}",
                f"{pooled.percentile_ms(0.999):.2f}",
                f"{1000 * max(pooled.latencies):.2f}",
                ", ".join(f"{run.percentile_ms(0.99):.1f}" for run in runs),
                f"{pooled.server_cpu / pooled.seconds:.0%}",
                f"{1000 * _percentile(pooled.lags, 0.99):.2f}",
            )
        )
    return rows


def rate_findings(
    results: RateResults, latency: LatencyResults, tally: Tally, kept: Stored, floor: Floor
) -> list[str]:
    low, high = common.quartiles([cycle.ratio for cycle in results.cycles])
    taps = LatencyResults.pooled(latency.taps)
    p99 = taps.percentile_ms(0.99)
    per_tap = statistics.median(1e6 * r.server_cpu / r.requests for r in results.column("taps"))
    per_get = statistics.median(1e6 * r.server_cpu / r.requests for r in results.column("healthz"))
    database = statistics.median(1e6 * r.helper_cpu / r.requests for r in results.column("taps"))
    healthz_rate = statistics.median(r.core_rate for r in results.column("healthz"))
    worker_us = 1e6 / results.taps_per_core
    return [
        f"Decisions per core (one worker, every one a grant with the holder record disclosed and"
        f" audited): **{results.taps_per_core:,.0f}/s** ({results.taps_wall:,.0f}/s wall clock).",
        f"taps / healthz = **{results.ratio:.3f}** (middle half {low:.3f} to {high:.3f}; wall"
        f" clock {results.wall_ratio:.3f}), the median of {len(results.cycles)} per-round"
        f" ratios: a tap costs {1 / results.ratio:.1f} GET /healthz."
        f" Target >= {TARGET_RATIO:.2f}: {verdict(results.ratio >= TARGET_RATIO)}.",
        f"For scale, GET {FLOOR} (one SELECT in a unit of work, through the DbSession"
        f" dependency every database route uses) / healthz = {results.floor_ratio:.3f}:"
        " opening and committing a transaction with one statement costs a worker"
        f" {1 / results.floor_ratio:.1f} GET /healthz"
        + (
            f", so no route that touches the database, let alone a tap (four statements and a"
            f" commit), can reach {TARGET_RATIO:.2f} on this stack (FastAPI, SQLAlchemy, psycopg)."
            if results.floor_ratio < TARGET_RATIO
            else "."
        ),
        f"CPU per tap: {per_tap:,.0f} µs of the worker (GET /healthz: {per_get:,.0f} µs) and"
        f" {database:,.0f} µs of the scratch database's PostgreSQL backends.",
        floor.finding("taps of new cards", "tap", worker_us),
        f"At half load ({latency.rate:,.0f} taps/s, open loop): p50 {taps.percentile_ms(0.5):.2f}"
        f" ms, **p99 {p99:.2f} ms** over {len(taps.latencies):,} taps in {len(latency.taps)}"
        f" runs. Target p99 < {TARGET_P99_MS:.0f} ms: {verdict(p99 < TARGET_P99_MS)}."
        f" At that rate the worker is busy {taps.server_cpu / taps.seconds:.0%} of the time and"
        f" a tap's own work is most of its latency, so milliseconds scale with the machine's"
        f" speed: GET /healthz ran at {healthz_rate:,.0f}/s per core in this run.",
        f"Checked: every answer was a 200, every tap a grant; {tally.grants:,} taps answered and"
        f" {tally.sent:,} sent (warm-up included; the rest were in flight when wrk stopped);"
        f" the database holds {kept.decisions:,} decisions, all grants, {kept.audited:,} audit"
        f" entries `verification.tap` (one each, all grants) and {kept.challenges_used:,}"
        f" challenges used; the audit chain ({kept.chain_rows:,} rows) verified in"
        f" {kept.verify_seconds:.1f} s.",
    ]


def rate_markdown(
    context: common.Context,
    results: RateResults,
    latency: LatencyResults,
    tally: Tally,
    kept: Stored,
    floor: Floor,
    photo_bytes: int,
    record_bytes: int,
) -> str:
    rows, lat = rate_table(results), latency_table(latency)
    notes = results.warnings()
    if results.void:
        notes.append(f"{results.void} rounds ran out of pre-signed taps and were measured again")
    return "\n".join(
        [
            *common.section_head("Card taps at the hub, PostgreSQL", context),
            f"- Taps: a new holder and card each (never seen by the server), service {SERVICE}"
            f" at an education window terminal; card record {record_bytes:,} bytes (photo"
            f" {photo_bytes:,}); challenges made through the service layer seconds before the"
            " round, signed by each card's key",
            "",
            *common.markdown_table(rows),
            "",
            *common.markdown_table(lat),
            "",
            *(f"- {line}" for line in rate_findings(results, latency, tally, kept, floor)),
            "- Latency at half load: an asyncio client in the benchmark process (on wrk's CPU)"
            " sends on a fixed schedule without waiting for answers, over a pool of"
            f" {POOL} keep-alive connections used in turn (more are opened if all are busy),"
            " and times each"
            " request from when it was due; GET /healthz at the same rate is the floor of that"
            " client and HTTP. wrk's p50/p99 above are at saturation (32 requests always"
            " outstanding), not at half load.",
            *(f"- Warning: {note}." for note in notes),
        ]
    )


def chain_markdown(context: common.Context, chain: ChainResults, taps_setting: int) -> str:
    taps = chain.taps
    hub_p50 = statistics.median(t.hub for t in taps) * 1000
    hub_p99 = _percentile([t.hub for t in taps], 0.99) * 1000
    apdus = sorted({t.apdus for t in taps})
    healthz_p50 = statistics.median(chain.healthz) * 1000
    rows: list[tuple[str, ...]] = [("part of a tap", "p50 ms", "p99 ms", "mean ms", "share")]
    total = statistics.mean(t.total for t in taps)
    for name, values in (
        ("tap to decision (connect to answer)", [t.total for t in taps]),
        ("card power-up and connect (SCardConnect)", [t.connect for t in taps]),
        (
            f"APDUs ({apdus[-1]}: SELECT, READ BINARY, INTERNAL AUTHENTICATE)",
            [t.apdu for t in taps],
        ),
        ("hub: POST /verification/v1/challenges", [t.challenge for t in taps]),
        (f"hub: POST {TAPS}", [t.tap for t in taps]),
        ("hub, both calls", [t.hub for t in taps]),
        ("the rest (the agent's own work between)", [t.rest for t in taps]),
        ("for scale: GET /healthz through the agent's client", chain.healthz),
    ):
        rows.append(
            (
                name,
                f"{1000 * statistics.median(values):.2f}",
                f"{1000 * _percentile(values, 0.99):.2f}",
                f"{1000 * statistics.mean(values):.2f}",
                f"{statistics.mean(values) / total:.0%}" if values is not chain.healthz else "",
            )
        )
    cpu_rows: list[tuple[str, ...]] = [("process", "CPU ms per tap")]
    agent = statistics.mean(t.agent_cpu for t in taps)
    cpu_rows.append(
        ("window agent (this process: pyscard, httpx, the agent)", f"{1000 * agent:.2f}")
    )
    cpu_rows += [(name, f"{1000 * seconds:.2f}") for name, seconds in chain.cpu.items()]
    return "\n".join(
        [
            "## Card taps through pcscd (virtual card, window agent, hub)",
            "",
            f"- Date: {context.date}",
            f"- Machine: {context.machine}",
            f"- Code: {context.code}",
            f"- Database: {context.database.description}",
            f"- Command: `{context.command}`",
            f"- Chain: `hub card emulate` (one card, personalised through `personalise_card`;"
            f" record {chain.record_bytes:,} bytes) in pcscd's vsmartcard-vpcd reader"
            f" {chain.reader!r}; `WindowAgent.tap` over pyscard's `CardLink`; the hub a uvicorn"
            " worker on loopback; PostgreSQL",
            f"- Taps: {taps_setting} after {PCSC_WARMUP_TAPS} warm-up taps, one after another,"
            " each as hub/window/ui.py does one: connect (card powered up), SELECT,"
            " `agent.tap`, disconnect (powered down, not timed)",
            f"- Pinning: {context.pinning}",
            "",
            *common.markdown_table(rows),
            "",
            *common.markdown_table(cpu_rows),
            "",
            f"- APDUs per tap: **{', '.join(map(str, apdus))}** (SELECT included)."
            f" Target <= {TARGET_APDUS}: {verdict(apdus[-1] <= TARGET_APDUS)}.",
            f"- The hub's share (inside the two calls, as the agent sees them: HTTP client,"
            f" loopback, server, database): **p50 {hub_p50:.2f} ms**, p99 {hub_p99:.2f} ms."
            f" Target < {TARGET_HUB_MS:.0f} ms: {verdict(hub_p50 < TARGET_HUB_MS)} at the"
            f" median, {verdict(hub_p99 < TARGET_HUB_MS)} at p99. The two calls take"
            f" {hub_p50 / healthz_p50:.1f} times a GET /healthz round trip through the same"
            " client (median): milliseconds scale with the machine's speed, that ratio less.",
            f"- Checked: every tap granted on line; {chain.audited:,} audit entries"
            " `verification.tap` by this window (warm-up included), one per tap.",
        ]
    )


# --- command line ------------------------------------------------------------------------


def command_line() -> argparse.ArgumentParser:
    parser = common.postgres_parser(SCRIPT, __doc__.splitlines()[0] if __doc__ else SCRIPT)
    parser.add_argument(
        "--parts",
        choices=("both", "hub", "pcscd"),
        default="both",
        help="the hub under wrk, the chain through pcscd, or both (both)",
    )
    common.wrk_options(
        parser, duration=(1, 30, 5), rounds=(1, 31, 7), warmup=(0, 30, 2), concurrency=(1, 256, 32)
    )
    bounded_option(parser, "--latency-seconds", 1, 30, 10, "per open-loop run")
    bounded_option(parser, "--latency-rounds", 1, 9, 3, "open-loop runs")
    max_photo = layout.MAX_PHOTO_BYTES
    bounded_option(parser, "--photo-bytes", 100, max_photo, 12_288, "size of each card's photo")
    bounded_option(parser, "--pcsc-taps", 10, 10_000, 200, "taps through pcscd")
    parser.add_argument(
        "--reader-port",
        type=common._bounded_int(FIRST_VPCD_PORT, FIRST_VPCD_PORT + 9),
        default=FIRST_VPCD_PORT,
        help=f"the vpcd reader's port ({FIRST_VPCD_PORT}: 'Virtual PCD 00 00')",
    )
    return parser


def run(args: argparse.Namespace, argv: Sequence[str], database: Database) -> int:
    if database.key != "postgresql":
        raise BenchError("the taps benchmark runs on PostgreSQL: pass --database-url")
    wrk = shutil.which("wrk")
    if wrk is None and args.parts != "pcscd":
        raise BenchError("part 1 needs wrk, the HTTP load generator: apt-get install -y wrk")
    all_cpus = frozenset(os.sched_getaffinity(0))
    server_core, client_core = common.pick_cpus()
    if client_core is not None:
        os.sched_setaffinity(0, {client_core})  # set-up, the open-loop client, the agent
    port, base_url, env = common.server_env(
        database,
        HUB_ACCESS_TOKEN_TTL_SECONDS=str(TOKEN_TTL_SECONDS),
        HUB_SCHEDULER_ENABLED="false",
    )
    writer = common.register_client("public-security", ["registry:read", "registry:write"])
    hub = build_hub(load_settings())
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-taps-"))
    try:
        window = add_window_terminal(hub)
        deck = Deck(hub, photo(args.photo_bytes))
        print(f"{database.description}; server at {base_url}", flush=True)
        pinning = (
            f"server (one uvicorn worker) on CPU {server_core}; wrk, and this process (set-up,"
            f" open-loop client, window agent), on CPU {client_core}; PostgreSQL, pcscd and the"
            " card emulator unpinned"
            if server_core is not None
            else "none (no taskset or a single CPU)"
        )
        sections: list[tuple[str, str]] = []
        with common.running_server(
            "hub.app:create_app", env, port, server_core, workdir / "server.log"
        ) as server:
            setting = Setting(
                args,
                argv,
                database,
                hub,
                deck,
                window,
                writer,
                base_url,
                server.pid,
                server_core,
                client_core,
                all_cpus,
                workdir,
                pinning,
            )
            if args.parts in ("both", "hub"):
                assert wrk is not None
                sections.append(("postgresql", part_hub(setting, wrk)))
            if args.parts in ("both", "pcscd"):
                print("the chain through pcscd", flush=True)
                chain = measure_chain(setting)
                section = chain_markdown(setting.context(""), chain, args.pcsc_taps)
                sections.append(("pcscd", section))
        for key, section in sections:
            print("\n" + section)
            if not args.no_record:
                common.record(args.results, SCRIPT, key, section)
        if not args.no_record:
            print(f"recorded in {args.results}")
        return 0
    finally:
        hub.engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class Setting:
    """What both parts share."""

    args: argparse.Namespace
    argv: Sequence[str]
    database: Database
    hub: Hub
    deck: Deck
    window: NewClient
    writer: NewClient
    base_url: str
    server_pid: int
    server_core: int | None
    client_core: int | None
    all_cpus: frozenset[int]
    workdir: Path
    pinning: str

    def context(self, load: str) -> common.Context:
        return common.context(SCRIPT, self.argv, self.database, load, self.pinning)


def part_hub(setting: Setting, wrk: str) -> str:
    args, deck, window, base_url = setting.args, setting.deck, setting.window, setting.base_url
    assert window.secret is not None
    token = common.fetch_token(
        base_url,
        common.basic_authorization(window),
        f"grant_type=client_credentials&scope={SCOPE}",
    )
    script = setting.workdir / "taps.lua"
    script.write_text(WRK_SCRIPT)
    load = Load(
        wrk,
        script,
        base_url,
        args.concurrency,
        setting.server_pid,
        setting.server_core,
        setting.client_core,
        helpers=database_cpu(setting.database.url),
    )
    runner = Runner(load, deck, window_principal(window), f"Bearer {token}", setting.workdir)
    print("the hub under wrk", flush=True)
    results = measure_rate(runner, rounds=args.rounds, seconds=args.duration, warmup=args.warmup)
    half = results.taps_wall / 2
    print(f"latency at half load, {half:,.0f}/s", flush=True)
    port = int(base_url.rsplit(":", 1)[1])
    latency = measure_latency(
        runner, port, half, rounds=args.latency_rounds, seconds=args.latency_seconds
    )
    kept = stored(setting.hub)
    check_stored(kept, runner.tally.grants, runner.tally.sent)
    print(f"the floor: {DRIVER_FLOOR_TAPS:,} taps through the driver", flush=True)
    floor = driver_floor(setting, window)
    load_text = (
        f"wrk {common.wrk_version(wrk)}, 1 thread, {args.concurrency} keep-alive connections;"
        f" {args.warmup} s warm-up per endpoint, then rounds of {args.duration} s per endpoint,"
        f" medians of the {len(results.cycles)} least disturbed of {results.attempts} rounds;"
        f" then {args.latency_rounds} open-loop runs of {args.latency_seconds} s per endpoint"
        f" at half the taps' wall-clock rate, each after a CHECKPOINT; token TTL"
        f" {TOKEN_TTL_SECONDS} s, scheduler and relay off"
    )
    return rate_markdown(
        setting.context(load_text),
        results,
        latency,
        runner.tally,
        kept,
        floor,
        len(deck.image),
        deck.record_bytes,
    )


def driver_floor(setting: Setting, window: NewClient) -> Floor:
    """The same work as the rounds' taps through psycopg alone (bench/floors.py), on new cards
    and fresh challenges dealt as the rounds' are, after the rounds on the same database."""
    hub, deck = setting.hub, setting.deck
    bodies = deck.tap_bodies(DRIVER_FLOOR_TAPS, window_principal(window))
    keys = floors.Window(
        client_id=window.client_id,
        department=Department.EDUCATION.value,
        service=SERVICE,
        purpose=purpose_of(SERVICE),
        challenge_key=hub.challenge_key,
        issuing_keys={deck.kid: deck.signer.public_key()},
        vault=hub.vault,
        audit_key=hub.audit.key,
    )
    return floors.tap_floor(setting.database.url, keys, bodies)


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_on_scratch(SCRIPT, command_line(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
