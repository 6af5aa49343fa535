"""Several hub processes on one PostgreSQL database under a mixed load: nothing lost.

    .venv/bin/python bench/soak.py [--seconds 600] [--outage 120] [--clients 16]

Not a test: a run of the whole system as a site runs it, then checks of what it left.

1. A scratch PostgreSQL database, migrated; the shipped agreements; clients: an acceptance
   office of Chifeng, an education window terminal, an education look-up and feed client.
   Holders with live personalised cards to tap (bench/taps.Deck), and some permits that
   expired yesterday, for the daily jobs to suspend mid-run.
2. The five reference receivers (`hub department serve`), each its own process, and three
   `hub serve` processes on the one database, each running the relay and the scheduler
   (audit checkpoints every minute), as a site would run them behind a load balancer.
3. `--clients` threads for `--seconds`, each request to a process picked at random:
   registrations, applications, issues, taps (a challenge, then the card's answer), look-ups
   by citizen ID and feed pages. After a fifth of the time, one receiver (housing) is
   stopped for `--outage` seconds and started again on its port and its store; at half
   time, `hub jobs run` fires the daily jobs.
4. After the load: wait for the relays to drain, then check: no answer was a server error;
   every delivery delivered, none dead; each receiver got each holder's events in order; one
   decision and one used challenge per tap answered; every audit chain verifies and agrees with
   the checkpoints the receivers kept (`hub audit verify --witness`).

Figures (requests by kind, their rate and latency, deliveries and how long the backlog took
to drain after the load) go to bench/RESULTS.md with the command and commit.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

if __package__ in (None, ""):  # run as `python bench/...py`: bench/ is on the path, not the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import col

from bench import common
from bench.common import BenchError, _bounded_int
from bench.registry import registration_body as registry_body
from bench.taps import Deck, photo
from hub.auth.domain import ClientKind
from hub.card import protocol
from hub.connectors.config import load_departments
from hub.connectors.signing import new_secret
from hub.db import unit_of_work
from hub.permits.identity import with_check_character
from hub.permits.store import Permit

SCRIPT = "bench/soak.py"
HUB = str(Path(sys.executable).parent / "hub")
PROCESSES = 3
OUTAGE = "housing"
MIX = {"registration": 2, "application": 2, "issue": 2, "tap": 6, "lookup": 3, "feed": 1}


@dataclass
class Ledger:
    """What the load did and saw, shared by its threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    errors: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    next_person: int = 0

    def note(self, kind: str, status: int, seconds: float, detail: str) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            self.statuses[kind][status] += 1
            if status >= 500 and len(self.errors) < 20:
                self.errors.append(f"{kind}: {status} {detail[:200]}")

    def person(self) -> int:
        with self.lock:
            self.next_person += 1
            return self.next_person


def citizen_id(n: int) -> str:
    """Person n of the load (born in Ningcheng, 1980-1999): none of the deck's."""
    born = date(1980, 1, 1) + timedelta(days=n // 500)
    return with_check_character(f"150429{born:%Y%m%d}{n % 500 + 100:03d}")


def registration_body(n: int, today: date) -> dict[str, Any]:
    """bench/registry's body, of a person of the load, eligible for a permit at once (a
    temporary permit held for over a year before it)."""
    since = (today - timedelta(days=400)).isoformat()
    return {**registry_body(citizen_id(n), today), "temporary_permit_since": since}


class Load:
    """One load thread's requests."""

    def __init__(self, bases: list[str], tokens: dict[str, str], deck: list[Any], ledger: Ledger):
        self.bases, self.tokens, self.deck, self.ledger = bases, tokens, deck, ledger
        self.http = httpx.Client(timeout=30)
        self.today = datetime.now(UTC).date()

    def _send(self, kind: str, method: str, path: str, who: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kwargs.pop("headers", {})}
        started = time.perf_counter()
        try:
            answer = self.http.request(
                method, random.choice(self.bases) + path, headers=headers, **kwargs
            )
        except httpx.HTTPError as error:
            self.ledger.note(kind, 599, time.perf_counter() - started, repr(error))
            raise
        self.ledger.note(kind, answer.status_code, time.perf_counter() - started, answer.text)
        return answer

    def registration(self) -> None:
        body = registration_body(self.ledger.person(), self.today)
        answer = self._send(
            "registration", "POST", "/registry/v1/registrations", "office", json=body
        )
        if answer.status_code == 201:
            with self.ledger.lock:
                self.ledger.registered.append(answer.json()["id"])

    def application(self) -> None:
        with self.ledger.lock:
            if not self.ledger.registered:
                return
            registration_id = self.ledger.registered.pop()
        claim = {
            "registration_id": registration_id,
            "condition": "residence",
            "form": "rented",
            "materials": ["id-card", "photo", "lease-contract"],
        }
        answer = self._send(
            "application", "POST", "/registry/v1/applications", "office", json=claim
        )
        if answer.status_code == 201:
            with self.ledger.lock:
                self.ledger.accepted.append(answer.json()["permit"]["id"])

    def issue(self) -> None:
        with self.ledger.lock:
            if not self.ledger.accepted:
                return
            permit_id = self.ledger.accepted.pop()
        self._send(
            "issue",
            "POST",
            f"/registry/v1/permits/{permit_id}/issue",
            "office",
            headers={"If-Match": '"1"'},
        )

    def tap(self) -> None:
        card = random.choice(self.deck)
        answer = self._send("challenge", "POST", "/verification/v1/challenges", "window")
        if answer.status_code != 201:
            return
        challenge = answer.json()
        encoded = challenge["challenge"]
        nonce = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        signature = card.key.sign(protocol.auth_message(nonce), ec.ECDSA(hashes.SHA256()))
        body = {
            "challenge_id": challenge["challenge_id"],
            "service": "compulsory-education",
            "record": base64.b64encode(card.record).decode(),
            "card_signature": base64.b64encode(signature).decode(),
        }
        self._send("tap", "POST", "/verification/v1/taps", "window", json=body)

    def lookup(self) -> None:
        body = {"citizen_id": random.choice(self.deck).citizen_id, "purpose": "入学资格核验"}
        self._send("lookup", "POST", "/exchange/v1/lookup", "education", json=body)

    def feed(self) -> None:
        self._send("feed", "GET", "/exchange/v1/feed?limit=100", "education")

    def run(self, until: float) -> None:
        kinds = [kind for kind, weight in MIX.items() for _ in range(weight)]
        while time.monotonic() < until:
            try:
                getattr(self, random.choice(kinds))()
            except httpx.HTTPError:
                time.sleep(0.1)
        self.http.close()


@dataclass(frozen=True)
class Card:
    key: ec.EllipticCurvePrivateKey
    record: bytes
    citizen_id: str


def _cards(hub: Any, count: int) -> list[Card]:
    """Holders with live personalised cards (the deck's numbers are bench/taps.citizen_id)."""
    from bench.registry import citizen_id as deck_citizen_id

    deck = Deck(hub, photo(8_000))
    return [
        Card(card.key, card.record, deck_citizen_id(n))
        for n, card in enumerate(deck.cards(count))
        if card.key is not None
    ]


def _expired(hub: Any, count: int) -> None:
    """Some of the deck's permits expired yesterday: the daily jobs' work mid-run."""
    yesterday = hub.clock.today() - timedelta(days=1)
    with unit_of_work(hub.engine) as session:
        ids = list(
            session.execute(sa.select(col(Permit.id)).order_by(col(Permit.id)).limit(count))
            .scalars()
            .all()
        )
        session.execute(
            sa.update(Permit).where(col(Permit.id).in_(ids)).values(expires_on=yesterday)
        )


@contextmanager
def receivers(workdir: Path, env: dict[str, str]) -> Iterator[dict[str, tuple[int, Any]]]:
    """The five reference receivers, each a process; their ports, and a departments file
    pointing the hub at them (written to `workdir`, named in `env`)."""
    shipped = (common.CONFIG.parent / "departments.toml").read_text()
    departments = load_departments(common.CONFIG.parent / "departments.toml")
    running: dict[str, tuple[int, Any]] = {}
    for department, link in departments.items():
        if not link.pushes:
            continue
        port = common.free_port()
        env[link.secret_env] = new_secret()
        old = re.escape(link.endpoint.split("/webhooks")[0])
        shipped = re.sub(old, f"http://127.0.0.1:{port}", shipped)
        running[department.value] = (port, None)
    (workdir / "departments.toml").write_text(shipped)
    env["HUB_DEPARTMENTS_FILE"] = str(workdir / "departments.toml")
    for name, (port, _) in running.items():
        running[name] = (port, _receiver(name, port, workdir, env))
    try:
        yield running
    finally:
        for _, process in running.values():
            _stop(process)


def _receiver(name: str, port: int, workdir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [HUB, "department", "serve", "--department", name, "--port", str(port)]
    command += ["--store", str(workdir / f"{name}.db")]
    with (workdir / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    common.wait_for(f"http://127.0.0.1:{port}/healthz")
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@contextmanager
def hubs(env: dict[str, str], workdir: Path) -> Iterator[list[str]]:
    """PROCESSES `hub serve` processes on the one database, relay and scheduler in each."""
    ports = [common.free_port() for _ in range(PROCESSES)]
    processes = []
    try:
        for n, port in enumerate(ports):
            with (workdir / f"hub-{n}.log").open("ab") as log:
                processes.append(
                    subprocess.Popen(
                        [HUB, "serve", "--port", str(port)],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base in bases:
            common.wait_for(f"{base}/readyz")
        yield bases
    finally:
        for process in processes:
            _stop(process)


def token(base: str, client: Any) -> str:
    answer = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.secret),
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def _drain(engine: Any, seconds: float) -> float:
    """Wait until nothing is pending or fanned out; returns how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        with engine.connect() as connection:
            waiting = connection.exec_driver_sql(
                "SELECT (SELECT count(*) FROM delivery WHERE status = 'pending')"
                " + (SELECT count(*) FROM outbox WHERE published_at IS NULL)"
            ).scalar()
        if not waiting:
            return time.monotonic() - started
        time.sleep(1)
    raise BenchError(f"deliveries still pending {seconds:.0f} s after the load")


def _in_order(ports: dict[str, tuple[int, Any]]) -> tuple[int, list[str]]:
    """Every record each receiver kept, and any holder whose events came out of order."""
    kept, problems = 0, []
    for name, (port, _) in ports.items():
        url: str | None = f"http://127.0.0.1:{port}/received?limit=1000"
        last: dict[str, int] = {}
        while url:
            page = httpx.get(url, timeout=30)
            for entry in page.json():
                kept += 1
                record, seq = entry["record"], int(entry["webhook_id"].removeprefix("evt_"))
                permit = record["permit"]["id"]
                if seq <= last.get(permit, 0):
                    problems.append(f"{name}: {permit} event {seq} after {last[permit]}")
                last[permit] = seq
            url = page.links.get("next", {}).get("url")
    return kept, problems


def run(
    args: argparse.Namespace, argv: Sequence[str], database: common.Database, workdir: Path
) -> int:
    if database.key != "postgresql":
        raise BenchError("the soak runs on PostgreSQL: pass --database-url")
    hub = common.scratch_hub(database)
    hub.prepare()
    office = hub.add_client(
        department="public-security",
        scopes=["registry:read", "registry:write"],
        jurisdictions=["chifeng"],
    )
    window = hub.add_client(
        department="education", scopes=["verification:tap"], kind=ClientKind.WINDOW_TERMINAL
    )
    education = hub.add_client(department="education", scopes=["exchange:lookup", "exchange:feed"])
    deck = _cards(hub, args.cards)
    _expired(hub, args.cards // 10)
    env = {
        **os.environ,
        "HUB_CONFIG": str(common.CONFIG),
        "HUB_RELAY_ENABLED": "true",
        "HUB_SCHEDULER_ENABLED": "true",
        "HUB_AUDIT_CHECKPOINT_MINUTES": "1",
    }
    ledger = Ledger()
    with ExitStack() as stack:
        ports = stack.enter_context(receivers(workdir, env))
        env["HUB_ISSUER"] = "http://127.0.0.1:1"  # one issuer for the three, as behind a balancer
        bases = stack.enter_context(hubs(env, workdir))
        tokens = {
            who: token(bases[0], client)
            for who, client in (("office", office), ("window", window), ("education", education))
        }
        print(
            f"{PROCESSES} hubs, 5 receivers; {args.clients} clients for {args.seconds} s",
            flush=True,
        )
        started = time.monotonic()
        until = started + args.seconds
        threads = [
            threading.Thread(target=Load(bases, tokens, deck, ledger).run, args=(until,))
            for _ in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        outage_at, jobs_at = started + args.seconds / 5, started + args.seconds / 2
        port, process = ports[OUTAGE]
        time.sleep(max(0.0, outage_at - time.monotonic()))
        print(f"{OUTAGE} receiver down for {args.outage} s", flush=True)
        _stop(process)
        time.sleep(args.outage)
        ports[OUTAGE] = (port, _receiver(OUTAGE, port, workdir, env))
        print(f"{OUTAGE} receiver back", flush=True)
        time.sleep(max(0.0, jobs_at - time.monotonic()))
        daily = subprocess.run([HUB, "jobs", "run"], env=env, capture_output=True, text=True)
        print(f"daily jobs: {daily.stdout.strip()}", flush=True)
        if daily.returncode:
            raise BenchError(f"hub jobs run failed: {daily.stderr[-500:]}")
        for thread in threads:
            thread.join()
        load_seconds = time.monotonic() - started
        drained = _drain(hub.engine, args.outage * 10 + 600)
        checkpoint = subprocess.run([HUB, "audit", "checkpoint"], env=env, capture_output=True)
        if checkpoint.returncode:
            raise BenchError("hub audit checkpoint failed")
        kept, disorder = _in_order(ports)
        witness = [f"--witness=http://127.0.0.1:{port}/checkpoints" for port, _ in ports.values()]
        began = time.monotonic()
        verified = subprocess.run(
            [HUB, "audit", "verify", *witness], env=env, capture_output=True, text=True
        )
        verify_seconds = time.monotonic() - began
    with hub.engine.connect() as connection:
        counts: dict[str, int] = dict(
            connection.exec_driver_sql(
                "SELECT status, count(*) FROM delivery GROUP BY status"
            ).all()
        )
        decisions, used = connection.exec_driver_sql(
            "SELECT (SELECT count(*) FROM verification_decision),"
            " (SELECT count(*) FROM verification_challenge)"
        ).one()
    hub.engine.dispose()
    checks = {
        "no server error": not any(
            status >= 500 for by_status in ledger.statuses.values() for status in by_status
        ),
        "every delivery delivered, none dead": set(counts) == {"delivered"},
        "each holder's events in order at every receiver": not disorder,
        "one decision and one used challenge per tap answered": (
            decisions == used == ledger.statuses["tap"].get(200, 0)
        ),
        "every audit chain verified, agreeing with the receivers' checkpoints": verified.returncode
        == 0,
    }
    section = markdown(
        args,
        argv,
        database,
        ledger,
        load_seconds,
        drained,
        counts,
        kept,
        checks,
        verified.stdout.strip(),
        verify_seconds,
    )
    print(section)
    broken = [line for line in verified.stderr.splitlines() if not line.startswith("audit verify:")]
    for problem in [*ledger.errors, *disorder[:10], *broken[:20]]:
        if problem:
            print(problem, file=sys.stderr)
    if not args.no_record:
        common.record(args.results, SCRIPT, database.key, section)
    return 0 if all(checks.values()) else 1


def markdown(
    args: argparse.Namespace,
    argv: Sequence[str],
    database: common.Database,
    ledger: Ledger,
    load_seconds: float,
    drained: float,
    deliveries: dict[str, int],
    kept: int,
    checks: dict[str, bool],
    verified: str,
    verify_seconds: float,
) -> str:
    rows = [("request", "answered", "per second", "p50 ms", "p99 ms", "statuses")]
    for kind, times in sorted(ledger.latencies.items()):
        ordered = sorted(times)
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(ledger.statuses[kind].items()))
        rows.append(
            (
                kind,
                f"{len(times):,}",
                f"{len(times) / load_seconds:,.1f}",
                f"{statistics.median(ordered) * 1000:.1f}",
                f"{ordered[int(0.99 * (len(ordered) - 1))] * 1000:.1f}",
                statuses,
            )
        )
    return "\n".join(
        [
            *common.header(
                "Soak: three hub processes, one PostgreSQL database", SCRIPT, argv, database
            ),
            f"- Load: {args.clients} client threads for {load_seconds:.0f} s against {PROCESSES}"
            f" `hub serve` processes (each with the relay and the scheduler, checkpoints every"
            f" minute); five receivers, {OUTAGE}'s down for {args.outage} s from a fifth of the"
            " time; `hub jobs run` at half time",
            "",
            *common.markdown_table(rows),
            "",
            f"- Deliveries: {', '.join(f'{s} {n:,}' for s, n in sorted(deliveries.items()))};"
            f" {kept:,} records kept by the receivers; the backlog drained {drained:.0f} s after"
            " the load stopped.",
            f"- Audit: `{verified}` in {verify_seconds:.1f} s.",
            *(f"- {name}: {common.verdict(ok)}" for name, ok in checks.items()),
        ]
    )


def command_line() -> argparse.ArgumentParser:
    parser = common.postgres_parser(SCRIPT, __doc__.splitlines()[0])
    parser.add_argument("--seconds", type=_bounded_int(30, 86_400), default=600, help="load (600)")
    parser.add_argument(
        "--outage", type=_bounded_int(1, 3_600), default=120, help="receiver down (120)"
    )
    parser.add_argument("--clients", type=_bounded_int(1, 256), default=16, help="threads (16)")
    parser.add_argument("--cards", type=_bounded_int(10, 100_000), default=2_000, help="(2,000)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    def on_scratch(args: argparse.Namespace, arguments: Sequence[str], workdir: Path) -> int:
        with common.scratch_database(args.database_url, workdir) as database:
            return run(args, arguments, database, workdir)

    return common._in_workdir(SCRIPT, command_line(), on_scratch, argv)


if __name__ == "__main__":
    sys.exit(main())
