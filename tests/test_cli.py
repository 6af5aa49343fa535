"""The `hub` command as an operator meets it. Most tests run it in this process through
click's CliRunner (`run_hub`); the operator's journey through every command group, and the
demo, run the installed console script in a subprocess (`run_console_script`)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.db import make_engine
from tests.auth.helpers import client_key, public_jwks
from tests.commands import (
    assert_one_sentence,
    hub_env,
    run_console_script,
    run_hub,
    serving,
)
from tests.factories import OTHER_SECRET, SENTENCE, rows_of
from tests.servers import free_port


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("frobnicate",), ("frobnicate",)),
        (("serve", "--port", "99999"), ("--port",)),
        (("clients", "add", "--scopes", "registry:read"), ("--department",)),
        (("clients", "add", "--department", "army", "--scopes", "registry:read"), ("army",)),
        (("clients", "add", "--department", "housing", "--scopes", "root"), ("root",)),
        (
            (
                "clients",
                "add",
                "--department",
                "housing",
                "--scopes",
                "x",
                "--jwks-file",
                "/no/file",
            ),
            (),
        ),
    ],
)
def test_bad_command_lines(
    args: tuple[str, ...], words: tuple[str, ...], sqlite_template: Path, tmp_path: Path
) -> None:
    """On a migrated database: a command checks it before it reads its own arguments."""
    shutil.copy(sqlite_template, tmp_path / "hub.db")
    result = run_hub(*args, env=hub_env(f"sqlite:///{tmp_path}/hub.db"))
    assert_one_sentence(result, *words)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"HUB_PORT": "eighty"}, ("port", "HUB_PORT")),
        ({"HUB_DATABASE_URL": "mysql://db/hub"}, ("database_url",)),
        ({"HUB_ISSUER": "http://hub.example.gov.cn"}, ("issuer", "https")),
        ({"HUB_SECRET_KEY": "short"}, ("secret_key",)),
        ({"HUB_CONFIG": "/nonexistent/hub.toml"}, ("/nonexistent/hub.toml",)),
        ({"HUB_DATABASE_URL": "postgresql://127.0.0.1:1/none"}, ("database",)),
    ],
)
def test_bad_configuration(extra: dict[str, str], words: tuple[str, ...], tmp_path: Path) -> None:
    env = hub_env(f"sqlite:///{tmp_path}/hub.db", **extra)
    assert_one_sentence(run_hub("db", "upgrade", env=env), *words)


def test_the_relay_needs_the_departments_secrets(tmp_path: Path) -> None:
    env = hub_env(f"sqlite:///{tmp_path}/hub.db", HUB_RELAY_ENABLED="true")
    assert run_hub("db", "upgrade", env=env).returncode == 0
    assert_one_sentence(
        run_hub("serve", "--port", "1", env=env), "HUB_WEBHOOK_SECRET_", "relay_enabled"
    )


def test_malformed_config_file(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text("port = [unclosed\n")
    env = hub_env(f"sqlite:///{tmp_path}/hub.db", HUB_CONFIG=str(config))
    assert_one_sentence(run_hub("db", "upgrade", env=env), str(config))


def test_a_jwks_with_a_private_key_is_refused(tmp_path: Path) -> None:
    jwks = tmp_path / "client.jwks"
    key = client_key("ES256")
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    env = hub_env(f"sqlite:///{tmp_path}/hub.db")
    assert run_hub("db", "upgrade", env=env).returncode == 0
    result = run_hub(
        "clients",
        "add",
        "--department",
        "health",
        "--scopes",
        "x:y",
        "--jwks-file",
        str(jwks),
        env=env,
    )
    assert_one_sentence(result)


def test_operator_journey(database_url: str, tmp_path: Path) -> None:
    """db upgrade, clients add (secret and JWKS), keys rotate, audit verify, jobs run, card
    issuing keys rotated and published."""
    env = hub_env(database_url)
    upgraded = run_console_script("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database at head" in upgraded.stdout

    added = run_console_script(
        "clients",
        "add",
        "--department",
        "housing",
        "--scopes",
        "schemas:read,exchange:feed",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    assert "client_id: housing-" in added.stdout and "client_secret: " in added.stdout

    jwks = tmp_path / "client.jwks"
    jwks.write_text(json.dumps(public_jwks(client_key("RS256"))))
    terminal = ["clients", "add", "--department", "education", "--terminal"]
    terminal += ["--scopes", "verification:tap", "--jwks-file", str(jwks)]
    terminal += ["--client-id", "edu-window-7"]
    keyed = run_console_script(*terminal, env=env)
    assert keyed.returncode == 0, keyed.stderr
    assert keyed.stdout.strip() == "client_id: edu-window-7"
    again = run_console_script(*terminal, env=env)
    assert_one_sentence(again, "exists")

    rotated = run_console_script("keys", "rotate", env=env)
    assert rotated.returncode == 0 and rotated.stdout.startswith("signing key: ")

    verified = run_console_script("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stderr
    # 10 built-in schemas, 5 agreements and what the journey did
    assert verified.stdout.strip() == "audit log intact: 18 rows in 16 chains"

    daily = run_console_script("jobs", "run", env=env)
    assert daily.returncode == 0, daily.stderr
    assert daily.stdout.strip() == (
        "expiry-sweep: 0, endorsement-reminders: 0, overdue-issuance: 0,"
        " declaration-deadlines: 0, partitions: 0"
    )
    progress = [json.loads(line) for line in daily.stderr.splitlines()]
    finished = [line for line in progress if line.get("outcome") == "done"]
    assert [line["job"] for line in finished] == [
        "expiry-sweep",
        "endorsement-reminders",
        "overdue-issuance",
        "declaration-deadlines",
        "partitions",
    ]
    assert all(len(line["request_id"]) == 32 for line in finished)  # each run its own trace

    card_key = run_console_script("card", "rotate-key", env=env)
    assert card_key.returncode == 0 and card_key.stdout.startswith("card-issuing key: ")
    published = run_console_script("card", "issuing-keys", env=env)
    assert published.returncode == 0, published.stderr
    kids = [key["kid"] for key in json.loads(published.stdout)["keys"]]
    assert len(kids) == 2 and kids[0] == card_key.stdout.split(": ")[1].strip()


@pytest.fixture
def served_hub(database_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    with serving(database_url, seconds=30) as served:
        yield served.base, served.env


def test_served_hub_issues_and_checks_tokens_over_real_http(
    served_hub: tuple[str, dict[str, str]],
) -> None:
    base, env = served_hub
    added = run_hub(
        "clients", "add", "--department", "civil-affairs", "--scopes", "exchange:feed", env=env
    )
    lines = dict(line.split(": ", 1) for line in added.stdout.strip().splitlines())
    credentials = (lines["client_id"], lines["client_secret"])
    with httpx.Client(base_url=base, timeout=10) as http:
        token = http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=credentials
        )
        assert token.status_code == 200, token.text
        access = token.json()["access_token"]
        whoami = http.get("/auth/v1/whoami", headers={"Authorization": f"Bearer {access}"})
        assert whoami.status_code == 200
        assert whoami.json()["department"] == "civil-affairs"
        assert http.get("/docs").status_code == 200
        refused = http.get("/auth/v1/whoami", headers={"Accept-Language": "zh-CN"})
        assert refused.status_code == 401
        assert refused.json()["title"] == "缺少访问令牌"


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = run_hub(
        "serve", "--port", str(free_port()), env=hub_env(f"sqlite:///{tmp_path}/new.db")
    )
    assert_one_sentence(result, "hub db upgrade")


def test_only_db_upgrade_creates_the_master_secret(tmp_path: Path) -> None:
    env = hub_env(f"sqlite:///{tmp_path}/hub.db", HUB_SECRET_KEY_FILE=str(tmp_path / "hub.key"))
    del env["HUB_SECRET_KEY"]
    assert_one_sentence(run_hub("audit", "verify", env=env), "HUB_SECRET_KEY")
    assert not (tmp_path / "hub.key").exists()
    assert run_hub("db", "upgrade", env=env).returncode == 0
    assert (tmp_path / "hub.key").stat().st_mode & 0o777 == 0o600
    assert run_hub("audit", "verify", env=env).returncode == 0


def test_demo_loads_once(database_url: str) -> None:
    env = hub_env(database_url)
    loaded = run_console_script("demo", "--holders", "12", env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("holders: 12 (")
    assert_one_sentence(run_console_script("demo", "--holders", "12", env=env), "already")


def test_another_master_secret_stops_every_command_before_it_writes(
    database_url: str, tmp_path: Path
) -> None:
    """A second host with a secret of its own: every command that opens the database says in
    one sentence whose it is (exit 2, no traceback), and no row changes."""
    env = hub_env(database_url)
    assert run_hub("db", "upgrade", env=env).returncode == 0
    engine = make_engine(database_url)
    before = rows_of(engine)
    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "object"}')
    other = hub_env(database_url, HUB_SECRET_KEY=OTHER_SECRET)
    commands = [
        ("serve", "--port", str(free_port())),
        ("db", "upgrade"),
        ("clients", "add", "--department", "housing", "--scopes", "exchange:feed"),
        ("keys", "rotate"),
        ("demo", "--holders", "1"),
        ("jobs", "run"),
        ("audit", "verify"),
        ("relay",),
        ("schemas", "list"),
        ("schemas", "register", "proof.test", str(schema), "--active"),
        ("schemas", "check", "proof.test", str(schema)),
        ("schemas", "diff", "holder-record", "1", "latest"),
        ("card", "issuing-keys"),
        ("card", "rotate-key"),
    ]
    try:
        for command in commands:
            result = run_hub(*command, env=other)
            assert_one_sentence(result, SENTENCE, "HUB_SECRET_KEY", "copy")
            assert rows_of(engine) == before, command
    finally:
        engine.dispose()


def test_db_upgrade_on_another_hosts_database_mints_no_secret(
    database_url: str, tmp_path: Path
) -> None:
    """The second host has no key file and no HUB_SECRET_KEY: it is told to bring the first
    host's secret, and neither a key file nor a row is written."""
    assert run_hub("db", "upgrade", env=hub_env(database_url)).returncode == 0
    engine = make_engine(database_url)
    before = rows_of(engine)
    key_file = tmp_path / "second-host" / "hub.key"
    env = hub_env(database_url, HUB_SECRET_KEY_FILE=str(key_file))
    del env["HUB_SECRET_KEY"]
    try:
        result = run_hub("db", "upgrade", env=env)
        assert_one_sentence(result, "belongs to another master secret this host lacks")
        assert f"to {key_file}, or set HUB_SECRET_KEY" in result.stderr
        assert not key_file.exists()
        assert rows_of(engine) == before
    finally:
        engine.dispose()


@pytest.mark.new_database  # the first host's command makes the key file and claims the database
def test_the_same_secret_on_a_second_host_is_accepted(database_url: str, tmp_path: Path) -> None:
    """The first host's key file copied to the second host: its commands run."""
    first = tmp_path / "first.key"
    env = hub_env(database_url, HUB_SECRET_KEY_FILE=str(first))
    del env["HUB_SECRET_KEY"]
    assert run_hub("db", "upgrade", env=env).returncode == 0
    second = tmp_path / "second" / "hub.key"
    second.parent.mkdir()
    second.write_text(first.read_text())
    env["HUB_SECRET_KEY_FILE"] = str(second)
    assert run_hub("db", "upgrade", env=env).returncode == 0
    verified = run_hub("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stderr
