"""An earlier tree's schema validators, timed in a child process beside this run's.

bench/schemas.py --baseline-tree DIR measures `Validators.get(...).errors(record)` of the code
in DIR (a `git worktree` of an earlier commit) on the same records, in the same run: a child
process with DIR first on its path, pinned to the same CPU, compiles the same schema once and
times the same loop when asked, so its phases alternate with this run's under the same machine
state. The child checks every verdict (valid records none refused, invalid ones all refused),
so the earlier code cannot be fast by being wrong. Whatever that tree imports must be
importable; PYTHONPATH is passed on, for a dependency it had that this environment lacks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import BenchError

CHILD = """
import json, os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
with open(sys.argv[2], encoding="utf-8") as data_file:
    data = json.load(data_file)
from hub.schemas.validation import Validators
schema, subject = data["schema"], data["subject"]
validators = Validators(lambda name, number: schema if (name, number) == (subject, 1) else None)
sets = {"valid": (data["valid"], False), "invalid": (data["invalid"], True)}
for line in sys.stdin:
    which, seconds = line.split()
    items, refused = sets[which]
    done, used, started = 0, time.process_time(), time.perf_counter()
    while True:
        for record in items:
            if bool(validators.get(subject, 1).errors(record)) is not refused:
                sys.exit(f"the earlier tree disagrees on a {which} record")
        done += len(items)
        elapsed = time.perf_counter() - started
        if elapsed >= float(seconds):
            break
    print(done, elapsed, time.process_time() - used, flush=True)
"""


class EarlierValidators:
    """The child process; `measure` times one set there and returns (records, wall seconds,
    the child's CPU seconds)."""

    def __init__(
        self,
        tree: Path,
        cpu: int,
        subject: str,
        schema: dict[str, Any],
        valid: list[Any],
        invalid: list[Any],
    ) -> None:
        if not (tree / "hub" / "schemas" / "validation.py").is_file():
            raise BenchError(f"{tree} holds no hub/schemas/validation.py")
        self.tree = tree
        data = {"subject": subject, "schema": schema, "valid": valid, "invalid": invalid}
        with tempfile.NamedTemporaryFile(
            "w", suffix=".json", delete=False, encoding="utf-8"
        ) as data_file:
            json.dump(data, data_file, ensure_ascii=False)
        self._data = Path(data_file.name)
        path = os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH", "")]))
        self._child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(cpu), str(self._data)],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": path},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def measure(self, which: str, seconds: float) -> tuple[int, float, float]:
        assert self._child.stdin is not None and self._child.stdout is not None
        self._child.stdin.write(f"{which} {seconds}\n")
        self._child.stdin.flush()
        answer = self._child.stdout.readline().split()
        if len(answer) != 3:
            self.close()
            raise BenchError(f"the earlier tree's validators stopped (exit {self._child.wait()})")
        return int(answer[0]), float(answer[1]), float(answer[2])

    def close(self) -> None:
        if self._child.stdin is not None:
            self._child.stdin.close()
        self._child.wait(timeout=30)
        self._data.unlink(missing_ok=True)
