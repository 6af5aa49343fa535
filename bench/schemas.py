"""Holder records validated and projected per second on one core, against jsonschema and
jsonschema-rs used bare.

    .venv/bin/python bench/schemas.py [--records N] [--seconds S] [--rounds R] [--naive M]
                                      [--cpu C] [--no-record] [--baseline-tree DIR]

The hub validates every holder record before it publishes it and projects it once per
receiving department, on the worker that handles the permit event, so the figures that matter
are records per second on one core. Why it is built this way:

- One process, pinned to one CPU with `os.sched_setaffinity` (the last CPU it may use, or
  --cpu), so "per core" means what it says. No server: validation and projection are pure
  functions, and a server would measure itself. How much of that CPU other processes took is
  read from /proc/stat around every measurement and reported beside the figures.
- The data are N distinct, realistic holder records generated from a fixed seed: citizen IDs
  with correct GB 11643 check digits whose region and birth date agree with the record,
  GB/T 2260 county codes, real calendar dates, RFC 3339 times, random UUIDs, Chinese names and
  addresses, optional fields sometimes null. Each is checked valid by a plain jsonschema
  validator first, and each of N invalid variants (one defect each, six kinds in turn) must
  give exactly one issue, so the timed code cannot be fast by being wrong.
- The naive baseline is what a caller without the registry would write:
  `jsonschema.validate(record, schema, format_checker=format_checker())`, which checks the
  schema against the meta-schema and builds a validator on every call. It is slow, so it runs
  on the first --naive records only. The best peer in Python is a reused jsonschema
  `Draft202012Validator`. The floor is jsonschema-rs used bare: a `Draft202012Validator` built
  once with the hub's format callbacks and regex options, `is_valid` for valid records and
  `list(iter_errors(record))` for invalid ones. Against them, `Validators.get("holder-record",
  1).errors(record)`, the cache look-up included, as callers use it, over all N records; the
  wrapper's cost is 1 - hub/bare.
- Projection is `Projection.apply` under a realistic agreement: ten holder and permit fields
  plus the three envelope fields (`always`) a holder record cannot be valid without.
- The invalid-record path (`errors` on the N invalid variants: every error, each turned into
  an issue in both languages from the schema side) is measured bare and through the hub too.
- Phases alternate within each of R rounds (naive, compiled, projection, invalid), each for at
  least S seconds of whole passes over its records, because on a virtual machine the speed of
  a core drifts for seconds at a time and neighbouring phases share that state. Figures are
  medians over the rounds; the ratio is the median of the per-round ratios.

Targets: compiled validation >= 30,000 records/s and >= 20x the naive baseline, the hub's
wrapper under 20% of jsonschema-rs bare on valid and on invalid records, projection >= 100,000
records/s, all on one core. The result goes to bench/RESULTS.md, replacing the previous one.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import jsonschema_rs

from hub.schemas import patterns
from hub.schemas.formats import format_callbacks, format_checker
from hub.schemas.projection import Projection, missing_fields
from hub.schemas.validation import Validators

if __package__ in (None, ""):  # run as `python bench/...py`: bench/ is on the path, not the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import RESULTS, BenchError, _bounded_int, verdict
from bench.earlier import EarlierValidators

SCRIPT = "bench/schemas.py"
SUBJECT = "holder-record"
TARGET_RATE = 30_000.0
TARGET_RATIO = 20.0
TARGET_PROJECTION = 100_000.0
TARGET_WRAPPER = 0.20
TARGET_EARLIER_VALID = 2.0
TARGET_EARLIER_INVALID = 10.0
"""Against the compiled closures jsonschema-rs replaced (--baseline-tree of c4e6526)."""
SEED = 20_260_101

ENVELOPE = ("/$schema", "/schema_version", "/event")
"""holder-record's root `required`: every projected record keeps them."""
AGREEMENT = (
    "/holder/name",
    "/holder/sex",
    "/holder/birth_date",
    "/holder/household_region",
    "/holder/current_region",
    "/holder/current_address",
    "/permit/state",
    "/permit/valid_from",
    "/permit/expires_on",
    "/permit/card_serial",
)
"""What, say, the education bureau receives to enrol a holder's child: ten fields."""

Record = dict[str, Any]

# --- realistic records -------------------------------------------------------------------------

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"
HOUSEHOLD_REGIONS = {
    "150402": "内蒙古自治区赤峰市红山区",
    "150404": "内蒙古自治区赤峰市松山区",
    "150421": "内蒙古自治区赤峰市阿鲁科尔沁旗",
    "150423": "内蒙古自治区赤峰市巴林右旗",
    "150426": "内蒙古自治区赤峰市翁牛特旗",
    "150430": "内蒙古自治区赤峰市敖汉旗",
    "150102": "内蒙古自治区呼和浩特市新城区",
    "150502": "内蒙古自治区通辽市科尔沁区",
    "152502": "内蒙古自治区锡林郭勒盟锡林浩特市",
    "110105": "北京市朝阳区",
    "130102": "河北省石家庄市长安区",
    "210102": "辽宁省沈阳市和平区",
    "220102": "吉林省长春市南关区",
    "230102": "黑龙江省哈尔滨市道里区",
    "370102": "山东省济南市历下区",
    "410102": "河南省郑州市中原区",
}
CURRENT_REGIONS = {
    "150402": "内蒙古自治区赤峰市红山区",
    "150403": "内蒙古自治区赤峰市元宝山区",
    "150404": "内蒙古自治区赤峰市松山区",
}
STREETS = ("昭乌达路", "新华街", "哈达街", "玉龙大街", "钢铁街", "临潢大街", "天义路", "全宁街")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志宏海波宇浩然欣怡"
MONGOLIAN_NAMES = ("乌云其其格", "巴特尔", "其木格", "额尔敦", "萨仁高娃", "朝鲁", "斯琴", "苏和")
ETHNICITIES = ("汉族", "汉族", "汉族", "蒙古族", "满族", "回族", "达斡尔族")
EMPLOYERS = ("赤峰市红山区草原乳业有限公司", "赤峰宏达建筑工程有限公司", "赤峰市第二中学", None)
EVENT_TYPES = ("issue", "endorse", "suspend", "restore", "replace", "change-address", "renew")
CHINA_TIME = timezone(timedelta(hours=8), "CST")
STATES = ("accepted", "valid", "valid", "valid", "valid", "suspended", "cancelled")


def citizen_id(region: str, born: date, sequence: int) -> str:
    """A GB 11643 number: region, birth date, sequence (odd: male), ISO 7064 check."""
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    total = sum(int(digit) * weight for digit, weight in zip(body, WEIGHTS, strict=True))
    return body + CHECK_CHARACTERS[total % 11]


def holder_record(rng: random.Random, taken: set[str]) -> Record:
    region = rng.choice(sorted(HOUSEHOLD_REGIONS))
    while True:
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(20_000))
        number = citizen_id(region, born, rng.randrange(1, 1000))
        if number not in taken:
            taken.add(number)
            break
    male = int(number[16]) % 2 == 1
    mongolian = rng.random() < 0.2
    name = (
        rng.choice(MONGOLIAN_NAMES)
        if mongolian
        else rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
    )
    current = rng.choice(sorted(CURRENT_REGIONS))
    state = rng.choice(STATES)
    valid_from = date(2023, 1, 1) + timedelta(days=rng.randrange(900))
    residence_start = valid_from - timedelta(days=rng.randrange(183, 1500))
    at = datetime(2025, 1, 1, 8, tzinfo=UTC) + timedelta(seconds=rng.randrange(30_000_000))
    card = None if state == "accepted" else f"CF{rng.getrandbits(56):014X}"
    return {
        "$schema": "urn:permit-hub:schema:holder-record:1",
        "schema_version": 1,
        "event": {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "type": rng.choice(EVENT_TYPES),
            "at": at.astimezone(CHINA_TIME).isoformat(),
            "permit_version": rng.randrange(1, 9),
        },
        "permit": {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "jurisdiction": "chifeng",
            "state": state,
            "card_serial": card,
            "valid_from": None if state == "accepted" else valid_from.isoformat(),
            "expires_on": None
            if state == "accepted"
            else (valid_from + timedelta(days=729)).isoformat(),
            "suspended_on": (valid_from + timedelta(days=730)).isoformat()
            if state == "suspended"
            else None,
            "residence_start": residence_start.isoformat(),
            "cancel_reason": "本人申请注销" if state == "cancelled" else None,
        },
        "holder": {
            "citizen_id": number,
            "name": name,
            "sex": "male" if male else "female",
            "ethnicity": "蒙古族" if mongolian else rng.choice(ETHNICITIES),
            "birth_date": born.isoformat(),
            "household_region": region,
            "household_address": f"{HOUSEHOLD_REGIONS[region]}{rng.choice(STREETS)}"
            f"{rng.randrange(1, 200)}号",
            "current_region": current,
            "current_address": f"{CURRENT_REGIONS[current]}{rng.choice(STREETS)}"
            f"{rng.randrange(1, 200)}号{rng.randrange(1, 6)}单元{rng.randrange(101, 1802)}室",
            "workplace": rng.choice(EMPLOYERS),
            "contact": f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
        },
    }


def broken(record: Record, kind: int) -> tuple[Record, tuple[str, str]]:
    """The record with one defect of the given kind, and the issue it must give."""
    copy_ = copy.deepcopy(record)
    holder, event, permit = copy_["holder"], copy_["event"], copy_["permit"]
    match kind % 6:
        case 0:
            number = holder["citizen_id"]
            wrong = CHECK_CHARACTERS[(CHECK_CHARACTERS.index(number[17]) + 1) % 11]
            holder["citizen_id"] = number[:17] + wrong
            return copy_, ("/holder/citizen_id", "format")
        case 1:
            holder["nickname"] = "小王"
            return copy_, ("/holder/nickname", "additionalProperties")
        case 2:
            del event["id"]
            return copy_, ("/event/id", "required")
        case 3:
            permit["state"] = "revoked"
            return copy_, ("/permit/state", "enum")
        case 4:
            event["at"] = event["at"][:19]
            return copy_, ("/event/at", "format")
        case _:
            holder["contact"] = "1" * 33
            return copy_, ("/holder/contact", "maxLength")


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    label: str
    items: list[Any]
    run: Callable[[list[Any]], int]
    rates: list[float] = field(default_factory=list)  # per wall-clock second
    cpu_rates: list[float] = field(default_factory=list)  # per second of this process's CPU
    others: list[float] = field(default_factory=list)  # share of the core others took

    def measure(self, seconds: float, cpu: int) -> float:
        """Whole passes over the items until `seconds` have passed; the rate."""
        busy_before = common.busy_seconds()
        done, elapsed, used = self.timed(seconds)
        return self.note(cpu, busy_before, done, elapsed, used)

    def timed(self, seconds: float) -> tuple[int, float, float]:
        """Records done, wall seconds and CPU seconds of the timing process."""
        done, cpu_before, started = 0, time.process_time(), time.perf_counter()
        while True:
            done += self.run(self.items)
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                break
        return done, elapsed, time.process_time() - cpu_before

    def note(
        self, cpu: int, busy_before: dict[str, float], done: int, elapsed: float, used: float
    ) -> float:
        """Keep one measurement: the rate, the rate per CPU-second and how much of the core
        other processes took meanwhile; the rate."""
        core = f"cpu{cpu}"
        taken = max(0.0, common.busy_seconds()[core] - busy_before[core] - used)
        self.rates.append(done / elapsed)
        self.cpu_rates.append(done / max(used, 1e-9))
        self.others.append(min(1.0, taken / elapsed))
        return done / elapsed

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)


@dataclass
class EarlierPhase(Phase):
    """A phase timed in the earlier tree's child process (bench/earlier.py) on one core."""

    earlier: EarlierValidators | None = None

    def timed(self, seconds: float) -> tuple[int, float, float]:
        assert self.earlier is not None
        return self.earlier.measure(self.name.removeprefix("earlier-"), seconds)


def pin(cpu: int | None) -> int:
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if cpu is None else cpu
    if chosen not in allowed:
        raise BenchError(f"CPU {chosen} is not one this process may use ({allowed})")
    os.sched_setaffinity(0, {chosen})
    return chosen


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    cpu = pin(args.cpu)
    print(f"pinned to CPU {cpu} (os.sched_setaffinity)", flush=True)
    schema = json.loads((files("hub.schemas") / "builtin" / f"{SUBJECT}.json").read_text("utf-8"))
    fetches: list[tuple[str, int]] = []

    def fetch(subject: str, version_: int) -> dict[str, Any] | None:
        fetches.append((subject, version_))
        return schema if (subject, version_) == (SUBJECT, 1) else None

    validators = Validators(fetch)
    compiled = validators.get(SUBJECT, 1)
    bare = jsonschema_rs.Draft202012Validator(
        {**schema, "$id": compiled.uri},
        formats=format_callbacks(),
        validate_formats=True,
        pattern_options=patterns.OPTIONS,
    )

    rng, taken = random.Random(SEED), set[str]()
    records = [holder_record(rng, taken) for _ in range(args.records)]
    defects = [broken(record, index) for index, record in enumerate(records)]
    invalid = [record for record, _ in defects]
    naive_records = records[: args.naive]
    projection = Projection(AGREEMENT, always=ENVELOPE)

    # what the timed code must get right, checked before anything is timed
    reference = jsonschema.Draft202012Validator(schema, format_checker=format_checker())
    if missing_fields(schema, [*ENVELOPE, *AGREEMENT]):
        raise BenchError("the agreement names fields holder-record does not declare")
    for index, record in enumerate(records):
        if not reference.is_valid(record) or compiled.errors(record) or not bare.is_valid(record):
            raise BenchError(f"generated record {index} is not valid")
        if compiled.errors(projection.apply(record)):
            raise BenchError(f"the projection of record {index} is not valid")
    for index, (record, expected) in enumerate(defects):
        found = [(issue.pointer, issue.keyword) for issue in compiled.errors(record)]
        if found != [expected] or reference.is_valid(record) or bare.is_valid(record):
            raise BenchError(f"invalid record {index}: {found}, expected {[expected]}")
    print(f"{len(records):,} records valid, {len(invalid):,} invalid variants refused", flush=True)

    checker = format_checker()

    def naive(items: list[Record]) -> int:
        for record in items:
            jsonschema.validate(record, schema, format_checker=checker)
        return len(items)

    def reused(items: list[Record]) -> int:
        is_valid = reference.is_valid
        for record in items:
            if not is_valid(record):
                raise BenchError("a valid record refused")
        return len(items)

    def bare_valid(items: list[Record]) -> int:
        is_valid = bare.is_valid
        for record in items:
            if not is_valid(record):
                raise BenchError("a valid record refused")
        return len(items)

    def bare_errors(items: list[Record]) -> int:
        iter_errors = bare.iter_errors
        for record in items:
            if not list(iter_errors(record)):
                raise BenchError("an invalid record passed")
        return len(items)

    def validated(items: list[Record]) -> int:
        failed = 0
        for record in items:
            if validators.get(SUBJECT, 1).errors(record):
                failed += 1
        if failed:
            raise BenchError(f"{failed} valid records refused")
        return len(items)

    def projected(items: list[Record]) -> int:
        apply = projection.apply
        for record in items:
            apply(record)
        return len(items)

    def refused(items: list[Record]) -> int:
        for record in items:
            if not validators.get(SUBJECT, 1).errors(record):
                raise BenchError("an invalid record passed")
        return len(items)

    phases = [
        Phase(
            "naive",
            f"`jsonschema.validate(record, schema, format_checker=...)`, first"
            f" {len(naive_records):,} records",
            naive_records,
            naive,
        ),
        Phase(
            "reused",
            f"jsonschema `Draft202012Validator(schema, ...).is_valid(record)` reused,"
            f" {len(records):,} valid records",
            records,
            reused,
        ),
        Phase(
            "bare",
            f"jsonschema-rs bare, `validator.is_valid(record)`, {len(records):,} valid records",
            records,
            bare_valid,
        ),
        Phase(
            "compiled",
            f'`Validators.get("{SUBJECT}", 1).errors(record)`, {len(records):,} valid records',
            records,
            validated,
        ),
        Phase(
            "projection",
            f"`Projection.apply(record)`, {len(AGREEMENT)} agreed fields + {len(ENVELOPE)}"
            " envelope fields",
            records,
            projected,
        ),
        Phase(
            "bare-invalid",
            f"jsonschema-rs bare, `list(validator.iter_errors(record))`, {len(invalid):,}"
            " invalid records, one defect each",
            invalid,
            bare_errors,
        ),
        Phase(
            "invalid",
            f"`.errors(record)`, {len(invalid):,} invalid records, one defect each",
            invalid,
            refused,
        ),
    ]
    for phase in phases:  # warm-up: caches, the allocator, the CPU's frequency
        phase.run(phase.items[: max(1, len(phase.items) // 10)])
    earlier = None
    if args.baseline_tree is not None:
        earlier = EarlierValidators(args.baseline_tree, cpu, SUBJECT, schema, records, invalid)
        name = args.baseline_tree.name
        phases += [
            EarlierPhase(
                "earlier-valid",
                f"`.errors(record)` of {name}, {len(records):,} valid records",
                records,
                validated,
                earlier=earlier,
            ),
            EarlierPhase(
                "earlier-invalid",
                f"`.errors(record)` of {name}, {len(invalid):,} invalid records",
                invalid,
                refused,
                earlier=earlier,
            ),
        ]
        for phase in phases[-2:]:  # the child's warm-up: its compilation, its caches
            phase.measure(args.seconds / 4, cpu)
            for warm_up in (phase.rates, phase.cpu_rates, phase.others):
                warm_up.clear()
    try:
        for round_ in range(args.rounds):
            figures = [
                f"{phase.name} {phase.measure(args.seconds, cpu):,.0f}/s" for phase in phases
            ]
            print(f"round {round_ + 1}/{args.rounds}: " + ", ".join(figures), flush=True)
    finally:
        if earlier is not None:
            earlier.close()
    if set(fetches) != {(SUBJECT, 1)} or len(fetches) != 1:
        raise BenchError(f"the schema was fetched {len(fetches)} times, not once")

    section = markdown(args, argv, cpu, phases)
    print(section)
    if not args.no_record:
        common.record(args.results, SCRIPT, "cpu", section)
    return 0


def markdown(args: argparse.Namespace, argv: Sequence[str], cpu: int, phases: list[Phase]) -> str:
    naive, reused, bare, compiled, projection, bare_invalid, invalid = phases[:7]

    def ratio_of(mine: Phase, theirs: Phase) -> float:
        return statistics.median(
            one / other for one, other in zip(mine.rates, theirs.rates, strict=True)
        )

    ratio = ratio_of(compiled, naive)
    wrapper, wrapper_invalid = 1 - ratio_of(compiled, bare), 1 - ratio_of(invalid, bare_invalid)
    rows = [
        f"| {phase.label} | {phase.rate:,.0f} | {min(phase.rates):,.0f}-{max(phase.rates):,.0f}"
        f" | {statistics.median(phase.cpu_rates):,.0f} | {1e6 / phase.rate:,.1f}"
        f" | {statistics.median(phase.others):.0%} |"
        for phase in phases
    ]
    return "\n".join(
        [
            "## Schema validation and projection, one core",
            "",
            f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- Machine: {common.machine()}",
            f"- Software: Python {platform.python_version()}, jsonschema-rs"
            f" {version('jsonschema-rs')}, jsonschema {version('jsonschema')}, referencing"
            f" {version('referencing')}",
            f"- Code: {common.code_version()}",
            f"- Command: `{common.shown_command(SCRIPT, argv)}`",
            f"- Pinning: this process on CPU {cpu} (`os.sched_setaffinity`); no server, no"
            " database",
            f"- Data: {args.records:,} distinct holder records (seed {SEED}; valid GB 11643"
            " check digits agreeing with region and birth date, county codes, dates, UUIDs),"
            f" each valid per jsonschema; {args.records:,} invalid variants, one defect each"
            " (check digit, unknown property, missing required, enum, time zone, length),"
            " each giving exactly its one issue",
            f"- Rounds: {args.rounds}, phases alternating, each phase at least"
            f" {args.seconds:g} s of whole passes; figures are medians over the rounds",
            "",
            "| what | records/s | min-max | records per CPU-second | µs per record"
            " | others on the core |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            f"- Compiled / naive: **{ratio:,.0f}x**, the median of {len(naive.rates)} per-round"
            f" ratios (target >= {TARGET_RATIO:.0f}x: {verdict(ratio >= TARGET_RATIO)});"
            f" compiled / jsonschema reused: {ratio_of(compiled, reused):,.1f}x.",
            f"- The hub's wrapper over jsonschema-rs bare costs **{wrapper:.0%}** on valid"
            f" records and **{wrapper_invalid:.0%}** on invalid ones, issues in two languages"
            f" included (target < {TARGET_WRAPPER:.0%}:"
            f" {verdict(max(wrapper, wrapper_invalid) < TARGET_WRAPPER)}).",
            f"- Compiled validation: **{compiled.rate:,.0f} records/s** on one core (target >="
            f" {TARGET_RATE:,.0f}: {verdict(compiled.rate >= TARGET_RATE)}).",
            f"- Projection: **{projection.rate:,.0f} records/s** on one core (target >="
            f" {TARGET_PROJECTION:,.0f}: {verdict(projection.rate >= TARGET_PROJECTION)}).",
            "- Compiled once: the schema was fetched once in the whole run; every call above"
            " includes the `Validators.get` cache look-up.",
            *_against_earlier(args, phases[7:], compiled, invalid, ratio_of),
        ]
    )


def _against_earlier(
    args: argparse.Namespace,
    earlier: list[Phase],
    compiled: Phase,
    invalid: Phase,
    ratio_of: Callable[[Phase, Phase], float],
) -> list[str]:
    if not earlier:
        return []
    valid_ratio, invalid_ratio = ratio_of(compiled, earlier[0]), ratio_of(invalid, earlier[1])
    return [
        f"- Against {args.baseline_tree.name} (`--baseline-tree`, its own `Validators` in a"
        " child process on the same core, same records, phases alternating with these):"
        f" **{valid_ratio:,.1f}x** on valid records (target >= {TARGET_EARLIER_VALID:.0f}x:"
        f" {verdict(valid_ratio >= TARGET_EARLIER_VALID)}) and **{invalid_ratio:,.1f}x** on"
        f" invalid ones (target >= {TARGET_EARLIER_INVALID:.0f}x:"
        f" {verdict(invalid_ratio >= TARGET_EARLIER_INVALID)}), medians of per-round ratios."
    ]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=SCRIPT, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records",
        type=_bounded_int(10, 1_000_000),
        default=10_000,
        help="distinct holder records (10,000)",
    )
    parser.add_argument(
        "--naive",
        type=_bounded_int(1, 100_000),
        default=200,
        help="records for the jsonschema.validate baseline, which is slow (200)",
    )
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="least time per phase and round (1.0)"
    )
    parser.add_argument(
        "--rounds", type=_bounded_int(1, 99), default=5, help="rounds for the medians (5)"
    )
    parser.add_argument("--cpu", type=int, default=None, help="the CPU to pin to (the last)")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where to record (bench/RESULTS.md)"
    )
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="an earlier checkout whose validators to time alongside (bench/earlier.py)",
    )
    args = parser.parse_args(argv)
    if not 0.05 <= args.seconds <= 60:
        parser.error("--seconds must be between 0.05 and 60")
    args.naive = min(args.naive, args.records)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_plain(SCRIPT, parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
