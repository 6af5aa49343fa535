"""The `hub` command as the tests run it: its environment, and a run of it.

`run_hub` runs the command in this process through click's CliRunner, which is what nearly
every test of a command's behaviour needs, at a fraction of a subprocess's start-up.
`run_console_script` runs the installed console script in a subprocess: one test per command
group keeps it, so the entry point itself, its exit codes and its streams are proved too.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from click.testing import CliRunner

from hub.cli import main
from tests.conftest import TEST_SECRET
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
HUB = str(Path(sys.executable).parent / "hub")


def hub_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_CONFIG=str(ROOT / "config" / "hub.toml"),
        HUB_DATABASE_URL=database_url,
        HUB_SECRET_KEY=TEST_SECRET,
        HUB_RELAY_ENABLED="false",  # the relay has tests of its own, with receivers
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class Ran:
    """What a run of `hub` left: the fields of subprocess.CompletedProcess the tests read."""

    returncode: int
    stdout: str
    stderr: str


def run_hub(*args: str, env: dict[str, str], cwd: Path = ROOT) -> Ran:
    """`hub ARGS` in this process, with exactly the environment `env` (every variable of this
    process not in it is unset for the run) and `cwd` as the working directory. A defect's
    traceback goes to the captured stderr and exits 1, as the console script's would."""
    isolated = {**env, **{name: None for name in os.environ if name not in env}}
    previous = Path.cwd()
    with CliRunner().isolation(env=isolated) as (stdout, stderr, _):
        os.chdir(cwd)
        try:
            main(list(args))
            code = 0
        except SystemExit as exited:
            code = exited.code if isinstance(exited.code, int) else int(exited.code is not None)
        except Exception:
            traceback.print_exc()
            code = 1
        finally:
            os.chdir(previous)
        return Ran(code, stdout.getvalue().decode(), stderr.getvalue().decode())


def run_console_script(
    *args: str, env: dict[str, str], cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """The installed `hub` console script in a subprocess."""
    return subprocess.run(
        [HUB, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def assert_one_sentence(result: Ran | subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hub: ") and lines[0].endswith(".")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


@dataclass(frozen=True)
class Served:
    base: str
    env: dict[str, str]
    process: subprocess.Popen[str]


@contextlib.contextmanager
def serving(database_url: str, *options: str, seconds: float = 60) -> Iterator[Served]:
    """`hub serve OPTIONS` of a migrated database on a free port, in a subprocess, until the
    block ends (its standard error piped, for the test to read once it has stopped it)."""
    port = free_port()
    env = hub_env(database_url, HUB_ISSUER=f"http://127.0.0.1:{port}")
    assert run_hub("db", "upgrade", env=env).returncode == 0
    server = subprocess.Popen(
        [HUB, "serve", "--port", str(port), *options],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError(f"hub serve did not answer within {seconds:.0f} s")
        yield Served(base, env, server)
    finally:
        server.terminate()
        server.wait(timeout=30)
