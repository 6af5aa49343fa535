"""`hub schemas list|register|check|diff` as an operator meets them: the real console script."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from hub.schemas.service import builtin_schemas
from tests.commands import hub_env, run_console_script, run_hub

PERSON = {"type": "object", "properties": {"name": {"type": "string"}}}


def test_governance_at_the_console(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url)
    assert run_console_script("db", "upgrade", env=env).returncode == 0
    listed = run_console_script("schemas", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "holder-record  [BACKWARD]  1 ACTIVE" in listed.stdout.splitlines()

    first = tmp_path / "person.json"
    first.write_text(json.dumps(PERSON))
    registered = run_console_script(
        "schemas", "register", "person", str(first), "--active", env=env
    )
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.startswith("person version 1 (id ")
    assert registered.stdout.rstrip().endswith("ACTIVE")

    narrowed = tmp_path / "narrowed.json"
    narrowed.write_text(json.dumps({**PERSON, "required": ["name"]}))
    checked = run_console_script("schemas", "check", "person", str(narrowed), env=env)
    assert checked.returncode == 1
    assert "required-added at /properties/name" in checked.stdout
    assert checked.stderr.strip() == f"hub: {narrowed} breaks person's BACKWARD compatibility."
    refused = run_console_script("schemas", "register", "person", str(narrowed), env=env)
    assert refused.returncode == 1

    widened = tmp_path / "widened.json"
    widened.write_text(json.dumps({**PERSON, "properties": {"name": {"type": ["string", "null"]}}}))
    assert run_console_script("schemas", "check", "person", str(widened), env=env).returncode == 0
    assert (
        run_console_script("schemas", "register", "person", str(widened), env=env).returncode == 0
    )
    diff = run_console_script("schemas", "diff", "person", "1", "latest", env=env)
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout.splitlines()[:2] == [
        "person 1 -> 2",
        "breaks readers of the new version: 0",
    ]
    assert "type-narrowed at /properties/name" in diff.stdout


def test_bad_input_is_one_sentence(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url)
    assert run_hub("db", "upgrade", env=env).returncode == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    answer = run_hub("schemas", "register", "person", str(broken), env=env)
    assert answer.returncode == 2
    assert answer.stderr.startswith(f"hub: {broken} is not a readable JSON file")
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"type": "strin"}))
    answer = run_hub("schemas", "register", "person", str(invalid), env=env)
    assert answer.returncode == 2
    assert "/type:" in answer.stderr and answer.stderr.rstrip().endswith("is not a valid schema.")
    missing = run_hub("schemas", "diff", "holder-record", "1", "7", env=env)
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_a_version_is_an_object_and_goes_live_only_if_the_agreements_allow_it(
    database_url: str, tmp_path: Path
) -> None:
    env = hub_env(database_url)
    assert run_hub("db", "upgrade", env=env).returncode == 0  # seeds config/agreements
    boolean = tmp_path / "true.json"
    boolean.write_text("true")
    answer = run_hub("schemas", "register", "person", str(boolean), env=env)
    assert answer.returncode == 2
    assert "a schema version must be a JSON object" in answer.stderr

    engine = sa.create_engine(database_url)
    with engine.begin() as connection:  # as PUT /schemas/v1/config/holder-record would
        connection.execute(
            sa.text("UPDATE schema_subject SET compatibility = 'FORWARD' WHERE name = :name"),
            {"name": "holder-record"},
        )
    engine.dispose()
    schema = builtin_schemas()["holder-record"]
    schema["properties"]["holder"]["required"] = ["sex"]
    sex = tmp_path / "sex.json"
    sex.write_text(json.dumps(schema))
    refused = run_hub("schemas", "register", "holder-record", str(sex), "--active", env=env)
    assert refused.returncode == 1, refused.stderr
    lines = refused.stderr.splitlines()
    assert lines[-1] == f"hub: amend the agreements on holder-record before {sex} is ACTIVE."
    assert sum("does not allow /holder/sex" in line for line in lines) == 4  # all but health's
    listed = run_hub("schemas", "list", env=env)
    assert "holder-record  [FORWARD]  1 ACTIVE" in listed.stdout.splitlines()
