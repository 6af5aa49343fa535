"""The access policy (config/access.toml): which scopes each kind of client of each department
may hold, checked when a client is added and again whenever a token is issued."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.auth.domain import SCOPES, ClientKind, Department
from hub.auth.policy import load_access_policy
from hub.auth.service import ClientSpecError, NewClient
from hub.auth.store import OAuthClient, jurisdictions_of
from hub.cli import cli
from hub.composition import Hub, build_hub
from hub.settings import ConfigError, Settings
from tests.auth.helpers import access_token, bearer, request_token
from tests.conftest import TEST_SECRET, RegisterClient

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "access.toml"
TERMINAL = ClientKind.WINDOW_TERMINAL
EVERYTHING = ", ".join(f'"{scope}"' for scope in SCOPES)
# What `hub clients add` accepted before there was a policy: anything, for anyone.
NO_POLICY = f"""
[scopes.department]
housing = [{EVERYTHING}]
[scopes.window-terminal]
education = [{EVERYTHING}]
"""


# The abuses a black-box run found: each scope the shipped policy must refuse to that client.
ABUSES = [
    pytest.param(TERMINAL, "education", "registry:write", id="terminal-issues-permits"),
    pytest.param(TERMINAL, "education", "schemas:admin", id="terminal-sets-compatibility"),
    pytest.param(ClientKind.DEPARTMENT, "housing", "registry:read", id="housing-reads-registry"),
    pytest.param(TERMINAL, "housing", "exchange:admin", id="terminal-sees-dead-letters"),
]


@pytest.mark.parametrize(("kind", "department", "scope"), ABUSES)
def test_the_shipped_policy_refuses_each_abuse_when_the_client_is_added(
    register_client: RegisterClient, hub: Hub, kind: ClientKind, department: str, scope: str
) -> None:
    with pytest.raises(ClientSpecError) as refused:
        register_client(department, (scope,), kind=kind)
    assert f"does not allow a {kind.value} client of {department} the scopes {scope}" in str(
        refused.value
    )
    with Session(hub.engine) as session:  # nothing half-written: no client, no audit entry
        assert session.exec(select(OAuthClient)).all() == []
        assert session.exec(select(AuditEntry).where(AuditEntry.action == "client.add")).all() == []


def test_each_party_may_hold_what_its_work_needs(register_client: RegisterClient) -> None:
    register_client("public-security", ("registry:read", "registry:write"))  # acceptance office
    register_client("public-security", ("schemas:read", "schemas:admin"))  # data governance
    register_client("public-security", ("exchange:admin", "auth:introspect"))  # hub operators
    partner = ("schemas:read", "exchange:feed", "exchange:proofs", "exchange:lookup")
    for department in ("hr-social-security", "housing", "education", "health", "civil-affairs"):
        register_client(department, (*partner, "exchange:admin"))
        register_client(department, ("verification:tap",), kind=TERMINAL)
    register_client("public-security", ("verification:tap",), kind=TERMINAL)


def test_a_window_terminal_holds_nothing_but_taps(register_client: RegisterClient) -> None:
    for scope in sorted(set(SCOPES) - {"verification:tap"}):
        with pytest.raises(ClientSpecError, match="it allows: verification:tap"):
            register_client("public-security", (scope,), kind=TERMINAL)


def _registered_without_policy(
    hub: Hub,
    settings: Settings,
    tmp_path: Path,
    department: str,
    scopes: list[str],
    kind: ClientKind,
) -> NewClient:
    """A client `hub clients add` accepted before the policy existed (or was narrowed)."""
    loose = tmp_path / "no-policy.toml"
    loose.write_text(NO_POLICY, encoding="utf-8")
    before = build_hub(settings.model_copy(update={"access_file": loose}), engine=hub.engine)
    return before.add_client(department=department, scopes=scopes, kind=kind)


def test_tokens_leave_out_scopes_the_policy_no_longer_allows(
    app_client: TestClient, hub: Hub, settings: Settings, tmp_path: Path
) -> None:
    """A terminal registered with registry:write and schemas:admin beside its tap scope: asked
    for everything, it gets only the tap scope; asking for a withdrawn scope by name is refused
    (invalid_scope), as any scope the client does not hold is, rather than quietly narrowed."""
    terminal = _registered_without_policy(
        hub,
        settings,
        tmp_path,
        "education",
        ["verification:tap", "registry:write", "schemas:admin"],
        TERMINAL,
    )
    granted = request_token(app_client, terminal)
    assert granted.status_code == 200, granted.text
    assert granted.json()["scope"] == "verification:tap"
    token = bearer(granted.json()["access_token"])
    issue = app_client.post("/registry/v1/permits/p-1/issue", headers={**token, "If-Match": '"1"'})
    assert issue.status_code == 403
    assert issue.json()["type"] == "/problems/insufficient-scope"
    mode = app_client.put("/schemas/v1/config", json={"compatibility": "NONE"}, headers=token)
    assert mode.status_code == 403

    for withdrawn in ("registry:write", "schemas:admin", "verification:tap registry:write"):
        refused = request_token(app_client, terminal, scope=withdrawn)
        assert refused.status_code == 400, withdrawn
        assert refused.json()["error"] == "invalid_scope"
        assert "may not hold" in refused.json()["detail"]


def test_a_client_left_with_no_allowed_scope_gets_no_token(
    app_client: TestClient, hub: Hub, settings: Settings, tmp_path: Path
) -> None:
    housing = _registered_without_policy(
        hub, settings, tmp_path, "housing", ["registry:read"], ClientKind.DEPARTMENT
    )
    refused = request_token(app_client, housing)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"
    reader = request_token(app_client, housing, scope="registry:read")
    assert reader.status_code == 400
    assert "registry:read" in reader.json()["detail"]


def test_a_withdrawn_introspect_scope_no_longer_reveals_other_clients_tokens(
    app_client: TestClient,
    register_client: RegisterClient,
    hub: Hub,
    settings: Settings,
    tmp_path: Path,
) -> None:
    owner = register_client()
    token = access_token(app_client, owner)
    prying = _registered_without_policy(
        hub,
        settings,
        tmp_path,
        "housing",
        ["auth:introspect", "exchange:feed"],
        ClientKind.DEPARTMENT,
    )
    assert prying.secret
    answer = app_client.post(
        "/oauth/introspect", data={"token": token}, auth=(prying.client_id, prying.secret)
    )
    assert answer.status_code == 200
    assert answer.json() == {"active": False}


BAD_FILES = [
    pytest.param(
        '[scopes.department]\nhousing = ["registry:reed"]\n',
        "scopes.department.housing.0",
        "unknown scope 'registry:reed'",
        id="unknown-scope",
    ),
    pytest.param(
        '[scopes.department]\npolice = ["registry:read"]\n',
        "scopes.department.police",
        "Input should be",
        id="unknown-department",
    ),
    pytest.param(
        '[scopes.kiosk]\nhousing = ["verification:tap"]\n',
        "scopes.kiosk",
        "Input",
        id="unknown-kind",
    ),
    pytest.param(
        "[scopes.department]\nhousing = []\n[failed-authentications]\nper_client = 3\n",
        "failed-authentications",
        "Extra inputs",
        id="misspelt-table",
    ),
    pytest.param(
        "[scopes.department]\nhousing = []\n[failed-authentication]\nper_client = 0\n",
        "failed-authentication.per_client",
        "greater than or equal to 1",
        id="limit-out-of-range",
    ),
    pytest.param("[failed-authentication]\n", "scopes", "Field required", id="no-scopes"),
    pytest.param("[scopes.department\n", "is not valid TOML", "", id="not-toml"),
]


@pytest.mark.parametrize(("text", "where", "why"), BAD_FILES)
def test_a_bad_policy_file_stops_the_hub_with_one_sentence(
    settings: Settings, tmp_path: Path, text: str, where: str, why: str
) -> None:
    path = tmp_path / "access.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as stopped:
        build_hub(settings.model_copy(update={"access_file": path}))
    sentence = str(stopped.value)
    assert sentence.startswith(f"{path}") and where in sentence and why in sentence
    assert "\n" not in sentence


def test_a_missing_policy_file_stops_the_hub(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match=f"cannot read {missing}"):
        build_hub(settings.model_copy(update={"access_file": missing}))


def test_the_shipped_file_is_read_beside_the_configuration() -> None:
    policy = load_access_policy(SHIPPED)
    assert Settings().access_file == SHIPPED
    assert policy.allowed(TERMINAL, Department.HEALTH) == {"verification:tap"}
    housing = policy.allowed(ClientKind.DEPARTMENT, Department.HOUSING)
    assert not housing & {"registry:read", "registry:write", "schemas:admin"}


def test_clients_add_refuses_a_scope_outside_the_policy_with_one_sentence(
    database_url: str, hub: Hub
) -> None:
    env = {"HUB_DATABASE_URL": database_url, "HUB_SECRET_KEY": TEST_SECRET}
    args = ["clients", "add", "--department", "education", "--terminal"]
    result = CliRunner().invoke(cli, [*args, "--scopes", "registry:write"], env=env)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hub: ") and lines[0].endswith(".")
    assert (
        "does not allow a window-terminal client of education the scopes registry:write"
        in (lines[0])
    )
    assert result.stdout == ""
    with Session(hub.engine) as session:
        assert (
            session.exec(
                select(OAuthClient).where(col(OAuthClient.kind) == "window-terminal")
            ).all()
            == []
        )


def test_clients_add_assigns_the_jurisdictions_an_office_serves_and_refuses_unknown_ones(
    database_url: str, hub: Hub
) -> None:
    env = {"HUB_DATABASE_URL": database_url, "HUB_SECRET_KEY": TEST_SECRET}
    args = ["clients", "add", "--department", "public-security", "--scopes", "registry:read"]
    unknown = CliRunner().invoke(cli, [*args, "--jurisdiction", "atlantis"], env=env)
    assert unknown.exit_code == 2
    assert "unknown jurisdiction atlantis; one of: chifeng," in unknown.stderr

    added = CliRunner().invoke(
        cli, [*args, "--jurisdiction", "nanning", "--jurisdiction", "chifeng"], env=env
    )
    assert added.exit_code == 0, added.output
    with Session(hub.engine) as session:
        [client] = session.exec(select(OAuthClient)).all()
        assert client.jurisdictions == "chifeng nanning"
        assert jurisdictions_of(session, client.client_id) == {"chifeng", "nanning"}
        assert jurisdictions_of(session, "staff:nobody") == frozenset()
