"""Deliveries per second from the outbox relay to five loopback receivers, as a ratio of a raw
httpx POST loop to the same receivers in the same run.

    .venv/bin/python bench/delivery.py [--holders N] [--rounds R] [--database-url URL]

The relay's price is what it does beyond sending: leasing and recording in the database,
reading the permits and registrations, opening the sealed citizen ID, projecting by each
agreement, validating against the holder-record schema, signing. The raw loop does only the
sending: the same five reference receivers (`hub department serve`, real processes, signature
checks and de-duplication included), the same httpx client settings and the same number of
concurrent senders, bodies signed in advance. So the ratio relay / raw is the share of the
machine's delivery capacity the relay keeps, and both figures include the receivers' cost,
which on a two-core machine competes with the sender for the same CPUs.

Each round: N fresh holders whose permits expired yesterday are suspended by the real sweep
(N suspend events, each subscribed by all five departments: 5N deliveries); the relay runs
until every delivery is delivered; then the raw loop posts 5N pre-signed bodies. Rounds
alternate and the medians are reported. Checks: every delivery delivered, every receiver
holds exactly what it was sent. PostgreSQL scratch database `hub_bench_<pid>`, dropped after.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from hub import jobs
from hub.audit import Actor
from hub.auth.domain import Department
from hub.composition import Hub
from hub.connectors.config import PARTNERS, DeliveryMode, DepartmentLink, load_departments
from hub.connectors.receiver import read_received
from hub.connectors.relay import Relay, RelayPolicy
from hub.connectors.signing import Signer, new_secret
from hub.db import unit_of_work
from hub.permits.identity import parse_citizen_id
from hub.permits.store import Permit, Registration
from hub.schemas import agreements

if __package__ in (None, ""):  # run as `python bench/...py`: bench/ is on the path, not the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import BenchError, _bounded_int, verdict

SCRIPT = "bench/delivery.py"
ROOT = Path(__file__).resolve().parents[1]
TARGET_RATE = 1000.0
TARGET_RATIO = 0.5
SENDERS = RelayPolicy().senders


@dataclass(frozen=True)
class Round:
    relay: float  # deliveries per second
    raw: float

    @property
    def ratio(self) -> float:
        return self.relay / self.raw


def _citizen_id(n: int) -> str:
    first = f"150402{19700101 + (n // 900) % 20 * 10000:08d}{n % 900 + 100:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(digit) * weight for digit, weight in zip(first, weights, strict=True))
    return first + "10X98765432"[total % 11]


@contextmanager
def receivers(workdir: Path, env: dict[str, str]) -> Iterator[dict[str, DepartmentLink]]:
    """The five reference receivers as real processes, and the links pointing at them."""
    processes, links = [], {}
    shipped = load_departments(ROOT / "config" / "departments.toml")
    try:
        for department in sorted(PARTNERS):
            port = common.free_port()
            env_name = shipped[department].secret_env  # what `hub department serve` reads
            env[env_name] = os.environ[env_name] = new_secret()
            command = [
                str(Path(sys.executable).parent / "hub"),
                "department",
                "serve",
                "--department",
                department.value,
                "--port",
                str(port),
                "--store",
                str(workdir / f"{department.value}.db"),
            ]
            processes.append(
                subprocess.Popen(
                    command,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            links[department.value] = DepartmentLink(
                endpoint=f"http://127.0.0.1:{port}/webhooks/holder-records",
                secret_env=env_name,
                agreement=f"{department.value}-holders",
                delivery=DeliveryMode.PUSH,
                events=("suspend",),
            )
        for link in links.values():
            common.wait_for(link.endpoint.rsplit("/webhooks", 1)[0] + "/healthz", 20)
        yield links
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=10)


def expired_holders(hub: Hub, count: int, first: int) -> None:
    """`count` valid permits of real people (sealed IDs), all expired yesterday."""
    today = hub.clock.today()
    registrations, permits = [], []
    for n in range(first, first + count):
        number = parse_citizen_id(_citizen_id(n), today=today)
        registration_id, permit_id = str(uuid.uuid4()), str(uuid.uuid4())
        registrations.append(
            common.holder_registration(
                hub,
                number,
                n,
                registration_id=registration_id,
                arrived_on=today - timedelta(days=800),
                now=hub.clock.now(),
                addresses=("辽宁省沈阳市和平区", "内蒙古赤峰市红山区"),
            )
        )
        permits.append(
            {
                "id": permit_id,
                "registration_id": registration_id,
                "jurisdiction": "chifeng",
                "citizen_id_hash": registrations[-1]["citizen_id_hash"],
                "state": "valid",
                "receipt_number": f"B{n}",
                "accepted_on": today - timedelta(days=400),
                "issue_due_on": today - timedelta(days=370),
                "card_serial": f"CF{n}",
                "valid_from": today - timedelta(days=366),
                "expires_on": today - timedelta(days=1),
                "residence_start": today - timedelta(days=800),
                "version": 1,
                "updated_at": hub.clock.now(),
            }
        )
    with unit_of_work(hub.engine) as session:
        session.execute(sa.insert(Registration), registrations)
        session.execute(sa.insert(Permit), permits)
    jobs.sweep_expired(hub, today)


def relay_round(hub: Hub, links: dict[str, DepartmentLink], expected: int) -> float:
    relay = Relay(hub.outbound, links={Department(name): link for name, link in links.items()})
    try:
        started = time.perf_counter()
        sent = 0
        while sent < expected:
            done = relay.run_once()
            if done == 0:
                raise BenchError(f"the relay stopped after {sent:,} of {expected:,}")
            sent += done
        elapsed = time.perf_counter() - started
    finally:
        relay.close()
    with hub.engine.connect() as connection:
        left = connection.exec_driver_sql(
            "SELECT count(*) FROM delivery WHERE status != 'delivered'"
        ).scalar()
    if left:
        raise BenchError(f"{left} deliveries were not delivered")
    return expected / elapsed


def raw_round(links: dict[str, DepartmentLink], count: int, tag: str) -> float:
    """`count` pre-signed posts spread over the five receivers, with the relay's client
    settings and number of senders."""
    body = json.dumps({"event": {"id": "raw", "type": "suspend"}}).encode()
    now = datetime.now(UTC)
    items = []
    targets = list(links.values())
    for n in range(count):
        link = targets[n % len(targets)]
        signer = Signer(os.environ[link.secret_env])
        items.append((link.endpoint, body, signer.headers(f"raw_{tag}_{n}", body, now)))
    policy = RelayPolicy()
    with (
        httpx.Client(
            timeout=policy.timeout_seconds,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        ) as client,
        ThreadPoolExecutor(max_workers=SENDERS) as pool,
    ):

        def post(item: tuple[str, bytes, dict[str, str]]) -> bool:
            url, content, headers = item
            return client.post(url, content=content, headers=headers).is_success

        started = time.perf_counter()
        answers = list(pool.map(post, items))
        elapsed = time.perf_counter() - started
    if not all(answers):
        raise BenchError(f"{answers.count(False)} raw posts failed")
    return count / elapsed


def run(args: argparse.Namespace, argv: Sequence[str], database: common.Database) -> int:
    if database.key != "postgresql":
        raise BenchError("the delivery benchmark runs on PostgreSQL: pass --database-url")
    hub = common.scratch_hub(database)
    env = dict(os.environ)
    hub.prepare()
    with unit_of_work(hub.engine) as session:
        agreements.seed(
            session,
            hub.schemas,
            hub.audit,
            ROOT / "config" / "agreements",
            actor=Actor("hub", "public-security"),
            now=hub.clock.now(),
        )
    rounds = []
    with (
        tempfile.TemporaryDirectory(prefix="hub-receivers-") as tmp,
        receivers(Path(tmp), env) as links,
    ):
        expected = args.holders * len(links)
        for number in range(args.rounds + 1):  # the first round warms up and is dropped
            expired_holders(hub, args.holders, 1 + number * args.holders)
            relay_rate = relay_round(hub, links, expected)
            raw_rate = raw_round(links, expected, str(number))
            print(f"round {number}: relay {relay_rate:,.0f}/s, raw {raw_rate:,.0f}/s", flush=True)
            if number:
                rounds.append(Round(relay_rate, raw_rate))
        for link in links.values():
            got = read_received(link.endpoint.rsplit("/webhooks", 1)[0])
            relayed = [r for r in got if r["webhook_id"].startswith("evt_")]
            if len(relayed) != args.holders * (args.rounds + 1):
                raise BenchError(f"a receiver holds {len(relayed)} relayed records")
            if any(r["duplicates"] for r in got):
                raise BenchError("a receiver saw a duplicate")
    hub.engine.dispose()
    section = markdown(rounds, args, argv, database)
    print(section)
    if not args.no_record:
        common.record(args.results, SCRIPT, database.key, section)
    return 0


def markdown(
    rounds: list[Round], args: argparse.Namespace, argv: Sequence[str], database: common.Database
) -> str:
    relay = statistics.median(r.relay for r in rounds)
    raw = statistics.median(r.raw for r in rounds)
    ratio = statistics.median(r.ratio for r in rounds)
    per_round = args.holders * 5
    return "\n".join(
        [
            *common.header(
                "Deliveries to five loopback receivers, PostgreSQL", SCRIPT, argv, database
            ),
            f"- Load: {args.rounds} rounds (after one warm-up) of {per_round:,} deliveries"
            f" ({args.holders:,} suspensions x 5 departments), relay then raw; {SENDERS}"
            " concurrent senders each; receivers are `hub department serve` processes on the"
            " same two cores",
            "",
            "| sender | deliveries/s (median) | rounds |",
            "| --- | ---: | --- |",
            f"| outbox relay | {relay:,.0f} | {', '.join(f'{r.relay:,.0f}' for r in rounds)} |",
            f"| raw httpx POST loop | {raw:,.0f} | {', '.join(f'{r.raw:,.0f}' for r in rounds)} |",
            "",
            f"- Relay / raw = **{ratio:.2f}** (median of per-round ratios; target >= "
            f"{TARGET_RATIO:.2f}: {verdict(ratio >= TARGET_RATIO)}); relay **{relay:,.0f}"
            f" deliveries/s** (target >= {TARGET_RATE:,.0f}: {verdict(relay >= TARGET_RATE)}).",
            "- Checked: every delivery recorded delivered; every receiver holds each relayed"
            " record exactly once, no duplicates.",
        ]
    )


def command_line() -> argparse.ArgumentParser:
    parser = common.postgres_parser(SCRIPT, __doc__.splitlines()[0])
    parser.add_argument(
        "--holders", type=_bounded_int(10, 100_000), default=1000, help="per round (1,000)"
    )
    parser.add_argument("--rounds", type=_bounded_int(1, 20), default=3, help="rounds (3)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_on_scratch(SCRIPT, command_line(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
