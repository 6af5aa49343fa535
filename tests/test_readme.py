"""README's shell blocks, run as a newcomer pastes them, against a live hub on loopback.

The rules are stated in README's source (an HTML comment at its top): every ```sh block runs,
unless an HTML comment `<!-- not run: why -->` comes right before it; the blocks under one `##`
heading run in order in one bash session with `set -euo pipefail`, so an unset variable, a
failing command or an HTTP error under `curl --fail-with-body` fails the section; each section
gets a fresh session, so it must set everything it uses.

The hub is prepared as `make run` prepares it (`hub db upgrade`, then a small
`hub demo --if-empty`, so the flow meets a hub that already holds people) and served by
`hub serve` on a free port, with its own SQLite file and master key in the test's directory;
the five reference receivers serve in threads of this process on free ports (the app
`hub department serve` runs; that command has tests of its own). README's 127.0.0.1:8000 and
127.0.0.1:8101-8105 are rewritten to those ports, and so is the departments file the hub
reads. SQLite only: these are the steps of `make run`, which serves the embedded database; the
API under them is tested on both databases elsewhere.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
from markdown_it import MarkdownIt
from sqlmodel import Session, col

from hub.auth.domain import Department
from hub.connectors.config import load_departments
from hub.connectors.receiver import create_receiver
from hub.connectors.signing import new_secret
from hub.db import make_engine
from hub.permits.store import Permit, PermitEvent
from tests.connectors.processes import HUB, ROOT, Processes
from tests.servers import LoopbackServer, free_port

README = ROOT / "README.md"
SHIPPED_DEPARTMENTS = ROOT / "config" / "departments.toml"
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<why>\S.*?)\s*-->", re.DOTALL)
README_PORTS = re.compile(r"127\.0\.0\.1:(?P<port>8000|810[1-5])\b")
FIRST_TOKEN = "A first token"
WORKED_FLOW = "A worked flow: registration to the departments"
EXPOSED = ("PERMIT_ID", "EVENT")
"""Variables of a section the test reads back to check the end state it left."""
DEMO_HOLDERS = 40  # `make run` loads 300; a few dozen give the relay a backlog all the same
SECTION_SECONDS = 180


@dataclass(frozen=True)
class Block:
    heading: str
    script: str
    not_run: str | None
    """Why it is not run, from the comment before it; None: it runs."""


def readme_blocks(text: str) -> list[Block]:
    """Every ```sh block with its `##` heading and its "not run" reason, in README order."""
    tokens = MarkdownIt("commonmark").parse(text)
    blocks: list[Block] = []
    heading = ""
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2":
            heading = tokens[index + 1].content
        elif token.type == "fence" and token.info.strip() == "sh":
            before = tokens[index - 1] if index else None
            reason = None
            if before is not None and before.type == "html_block":
                match = NOT_RUN.fullmatch(before.content.strip())
                reason = match["why"] if match else None
            blocks.append(Block(heading, token.content, reason))
    return blocks


def runnable_sections(blocks: list[Block]) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    for block in blocks:
        if block.not_run is None:
            sections.setdefault(block.heading, []).append(block.script)
    return sections


def test_readme_runs_its_flows_and_says_why_it_skips_the_rest() -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    sections = runnable_sections(blocks)
    assert FIRST_TOKEN in sections and len(sections[WORKED_FLOW]) >= 4
    skipped = [block for block in blocks if block.not_run is not None]
    assert any("make run" in block.script for block in skipped)
    assert any("make reset" in block.script for block in skipped)
    assert all(len(block.not_run or "") > 10 for block in skipped)  # a reason, not a bare tag


@dataclass
class LiveHub:
    """A hub and the five receivers, as `make run` starts them, on free ports."""

    directory: Path
    environment: dict[str, str]
    ports: dict[str, int]
    """README's port → the port it is rewritten to."""
    receivers: dict[Department, str]
    """Each partner department → its receiver's base URL."""
    database_url: str

    def rewrite(self, script: str) -> str:
        return README_PORTS.sub(live_port(self.ports), script)

    def run(
        self, number: int, scripts: list[str]
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
        """The section's blocks in one bash session; its exit and the EXPOSED variables."""
        state = self.directory / f"section-{number}.vars"
        readback = "".join(f'printf "{name}=%s\\n" "${{{name}-}}"\n' for name in EXPOSED)
        script = "set -euo pipefail\n" + "\n".join(map(self.rewrite, scripts))
        script += f"\n{{\n{readback}}} > {state}\n"
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=SECTION_SECONDS,
        )
        lines = state.read_text().splitlines() if state.exists() else []
        return result, dict(line.split("=", 1) for line in lines)


def live_port(ports: dict[str, int]) -> Callable[[re.Match[str]], str]:
    """A README address (127.0.0.1:8000, :8101-8105) → the same party's address in the test."""
    return lambda match: f"127.0.0.1:{ports[match['port']]}"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    directory = tmp_path_factory.mktemp("readme")
    links = load_departments(SHIPPED_DEPARTMENTS)
    secrets = {link.secret_env: new_secret() for link in links.values()}
    receivers = {
        department: LoopbackServer(
            create_receiver(
                department.value,
                secrets[link.secret_env],
                directory / f"received-{department.value}.db",
            )
        )
        for department, link in links.items()
    }
    ports = {"8000": free_port()}
    for department, link in links.items():
        ports[str(urlsplit(link.endpoint).port)] = receivers[department].port
    departments_file = directory / "departments.toml"
    shipped = SHIPPED_DEPARTMENTS.read_text(encoding="utf-8")
    departments_file.write_text(README_PORTS.sub(live_port(ports), shipped), encoding="utf-8")
    database_url = f"sqlite:///{directory / 'hub.db'}"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HUB_")}
    environment.update(
        HUB_DATABASE_URL=database_url,
        HUB_SECRET_KEY_FILE=str(directory / "hub.key"),
        HUB_DEPARTMENTS_FILE=str(departments_file),
        HUB_AGREEMENTS_DIR=str(ROOT / "config" / "agreements"),
        HUB_ISSUER=f"http://127.0.0.1:{ports['8000']}",
        HUB_SCHEDULER_ENABLED="false",  # the daily jobs are not part of these flows
        **secrets,
    )
    (directory / "logs").mkdir()
    processes = Processes(directory / "logs", environment)
    try:
        for step in (("db", "upgrade"), ("demo", "--if-empty", "--holders", str(DEMO_HOLDERS))):
            prepared = subprocess.run(
                [HUB, *step], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
            )
            assert prepared.returncode == 0, prepared.stderr
        hub = processes.start("hub", HUB, "serve", "--port", str(ports["8000"]))
        processes.wait_healthy(hub, ports["8000"])
        urls = {department: server.url for department, server in receivers.items()}
        yield LiveHub(directory, environment, ports, urls, database_url)
    finally:
        processes.close()
        for server in receivers.values():
            server.stop()


def test_readme_shell_blocks_work_as_pasted(live: LiveHub) -> None:
    sections = runnable_sections(readme_blocks(README.read_text(encoding="utf-8")))
    exposed: dict[str, dict[str, str]] = {}
    for number, (heading, scripts) in enumerate(sections.items()):
        result, variables = live.run(number, scripts)
        assert result.returncode == 0, (
            f"README section {heading!r} failed ({result.returncode}):\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
        exposed[heading] = variables
        if heading == FIRST_TOKEN:
            assert '"department":"housing"' in result.stdout
        if heading == WORKED_FLOW:
            for department in live.receivers:
                assert f"--- {department.value}" in result.stdout
    assert_the_worked_flow_issued_and_delivered(live, exposed[WORKED_FLOW])


def assert_the_worked_flow_issued_and_delivered(live: LiveHub, variables: dict[str, str]) -> None:
    """The permit the flow applied for is valid, and every department subscribed to `issue`
    kept the issue's record under its webhook-id."""
    permit_id = variables["PERMIT_ID"]
    engine = make_engine(live.database_url)
    try:
        with Session(engine) as session:
            permit = session.get(Permit, permit_id)
            assert permit is not None and permit.state == "valid"
            assert permit.jurisdiction == "chifeng" and permit.card_serial
            issue = session.execute(
                sa.select(col(PermitEvent.seq)).where(
                    col(PermitEvent.permit_id) == permit_id, col(PermitEvent.type) == "issue"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert variables["EVENT"] == str(issue)
    links = load_departments(Path(live.environment["HUB_DEPARTMENTS_FILE"]))
    subscribed = {d for d, link in links.items() if link.pushes and link.subscribes_to("issue")}
    assert subscribed == set(live.receivers)  # all five take `issue`
    for department in subscribed:
        kept = httpx.get(f"{live.receivers[department]}/received/evt_{issue}", timeout=10)
        assert kept.status_code == 200, department
        record = kept.json()["record"]
        assert record["event"]["type"] == "issue"
        assert record["permit"]["id"] == permit_id
        assert record["permit"]["state"] == "valid"
