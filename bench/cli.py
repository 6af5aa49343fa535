"""Wall time of the `hub` command's start-up and of two operator commands, against the floor.

    .venv/bin/python bench/cli.py [--runs N] [--baseline-tree DIR] [--no-record]

An operator types `hub clients add` at an acceptance office, and a deployment script runs
`hub db upgrade` on every start: what they wait for is the whole process, interpreter start-up
and imports included, so each command runs as a fresh process, N times after one warm-up, and
the figures are the median and the spread of wall-clock times. Every command runs against one
SQLite file migrated beforehand, so `hub db upgrade` finds it at head, as it does on a restart,
and each `hub clients add` registers one more client, as at an office.

The floors are the same interpreter doing nothing (`python -c pass`) and importing click, which
any click command line pays. With --baseline-tree (a checkout of an earlier commit, e.g. a `git
worktree`), the same commands are also run from that tree in the same run, alternating, so the
two are measured under the same machine state.

Targets: `hub --help` under 0.3 s, `hub clients add` under 1 s. The result goes to
bench/RESULTS.md, replacing the previous one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/...py`: bench/ is on the path, not the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import ROOT, BenchError, _bounded_int, verdict

SCRIPT = "bench/cli.py"
TARGET_HELP = 0.3
TARGET_ADD = 1.0
SECRET = "bench-cli-" + "0" * 54
HUB = "import sys; from hub.cli import main; sys.argv[0] = 'hub'; main()"
"""The console script's body, run from the tree on PYTHONPATH (the installed `hub` script would
always import this checkout)."""


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(command[3:]) or command}: exit {done.returncode}\n{done.stderr}"
        )
    return elapsed


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="hub-bench-cli-") as workdir:
        env = {key: value for key, value in os.environ.items() if not key.startswith("HUB_")}
        env.update(
            HUB_CONFIG=str(ROOT / "config" / "hub.toml"),
            HUB_DATABASE_URL=f"sqlite:///{workdir}/hub.db",
            HUB_SECRET_KEY=SECRET,
        )
        trees = {"this commit": ROOT}
        if args.baseline_tree is not None:
            trees["baseline"] = args.baseline_tree.resolve()
        python = sys.executable
        commands: dict[str, list[str]] = {
            "`python -c pass` (floor)": [python, "-c", "pass"],
            "`python -c 'import click'` (floor of a click command line)": [
                python,
                "-c",
                "import click",
            ],
        }
        for label in trees:
            commands[f"`hub --help`, {label}"] = [python, "-c", HUB, "--help"]
            commands[f"`hub db upgrade` at head, {label}"] = [python, "-c", HUB, "db", "upgrade"]
            commands[f"`hub clients add`, {label}"] = [
                python,
                "-c",
                HUB,
                "clients",
                "add",
                "--department",
                "housing",
                "--scopes",
                "schemas:read",
            ]

        def env_for(label: str) -> dict[str, str]:
            tree = next((trees[name] for name in trees if label.endswith(name)), ROOT)
            return {**env, "PYTHONPATH": str(tree)}

        subprocess.run([python, "-c", HUB, "db", "upgrade"], env=env_for("this commit"), check=True)
        times: dict[str, list[float]] = {label: [] for label in commands}
        for round_ in range(args.runs + 1):  # the first round warms the page cache
            for label, command in commands.items():
                elapsed = _timed(command, env_for(label))
                if round_:
                    times[label].append(elapsed)
            print(f"round {round_}/{args.runs}", flush=True)
    section = markdown(args, argv, times)
    print(section)
    if not args.no_record:
        common.record(args.results, SCRIPT, "sqlite", section)
    return 0


def markdown(args: argparse.Namespace, argv: Sequence[str], times: dict[str, list[float]]) -> str:
    medians = {label: statistics.median(values) for label, values in times.items()}
    floor = medians["`python -c pass` (floor)"]
    rows = [
        f"| {label} | {medians[label] * 1000:,.0f} | {min(values) * 1000:,.0f}-"
        f"{max(values) * 1000:,.0f} | {medians[label] / floor:.1f}x |"
        for label, values in times.items()
    ]
    help_, add = medians["`hub --help`, this commit"], medians["`hub clients add`, this commit"]
    lines = [
        "## The `hub` command's start-up, SQLite",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {common.machine()}",
        f"- Code: {common.code_version()}",
        f"- Command: `{common.shown_command(SCRIPT, argv)}`",
        f"- Runs: {args.runs} of each command after one warm-up round, commands alternating"
        " within each round; each a fresh process; wall-clock times",
        "",
        "| command | median ms | min-max ms | / python -c pass |",
        "| --- | ---: | ---: | ---: |",
        *rows,
        "",
        f"- `hub --help`: **{help_ * 1000:,.0f} ms** (target < {TARGET_HELP * 1000:,.0f} ms:"
        f" {verdict(help_ < TARGET_HELP)}).",
        f"- `hub clients add`: **{add * 1000:,.0f} ms** (target < {TARGET_ADD * 1000:,.0f} ms:"
        f" {verdict(add < TARGET_ADD)}).",
    ]
    if args.baseline_tree is not None:
        faster = {
            what: medians[f"{what}, baseline"] / medians[f"{what}, this commit"]
            for what in ("`hub --help`", "`hub db upgrade` at head", "`hub clients add`")
        }
        lines.append(
            f"- Against the baseline tree ({args.baseline_tree.name}), times faster: "
            + ", ".join(f"{what} {ratio:.1f}x" for what, ratio in faster.items())
            + "."
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=SCRIPT, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=_bounded_int(3, 200), default=15, help="runs of each command (15)"
    )
    parser.add_argument(
        "--baseline-tree", type=Path, default=None, help="an earlier checkout to run alongside"
    )
    common.record_options(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_plain(SCRIPT, parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
