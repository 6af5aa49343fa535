"""A schema change never widens what a department receives, on both databases.

The shipped agreements of the five partner departments, a holder-record version that requires
more than version 1 registered by data-governance staff in FORWARD mode, and every outlet: the
relay's signed webhooks (real receivers on loopback), the changes feed and look-ups. Whatever a
version requires, a department receives its agreed fields and the fixed envelope only; a
version that requires a field some agreement does not allow cannot become ACTIVE, and an
agreement cannot be narrowed below what the version in use requires.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.auth.domain import Department
from hub.composition import Hub
from hub.connectors.config import DeliveryMode, DepartmentLink
from hub.connectors.receiver import create_receiver
from hub.connectors.relay import Relay
from hub.connectors.signing import new_secret
from hub.connectors.store import Delivery
from hub.schemas.domain import ENVELOPE
from hub.schemas.projection import parse_pointer
from hub.schemas.service import builtin_schemas
from hub.schemas.store import SchemaVersion
from hub.settings import Settings
from tests.auth.helpers import access_token, bearer
from tests.conftest import SHIPPED_AGREEMENTS, RegisterClient, seed_shipped_agreements
from tests.connectors.helpers import Holder, make_holders
from tests.servers import LoopbackServer

PARTNERS = [
    Department.HR_SOCIAL_SECURITY,
    Department.HOUSING,
    Department.EDUCATION,
    Department.HEALTH,
    Department.CIVIL_AFFAIRS,
]
AGREED: dict[str, list[str]] = {
    department.value: tomllib.loads(
        (SHIPPED_AGREEMENTS / f"{department.value}-holders.toml").read_text("utf-8")
    )["fields"]
    for department in PARTNERS
}
HOLDER_RECORD: dict[str, Any] = builtin_schemas()["holder-record"]
VERSIONS = "/schemas/v1/subjects/holder-record/versions"


def with_requirements(*required: str, holder: list[str] | None = None) -> dict[str, Any]:
    """holder-record version 1 requiring also the root properties `required` and, if given,
    the `holder` properties `holder`: narrower, so FORWARD compatible."""
    schema = copy.deepcopy(HOLDER_RECORD)
    schema["required"] = [*schema["required"], *required]
    if holder is not None:
        schema["properties"]["holder"]["required"] = holder
    return schema


HOLDER_REQUIRED = with_requirements("holder", "permit")
"""The version of the report: `holder` required, and with it (as the root `required` once was
the projection's envelope) sex, ethnicity, birth date, addresses, workplace and contact went to
every department."""
SEX_REQUIRED = with_requirements(holder=["citizen_id", "sex"])
"""A version no agreement but health's could serve: only health's allows /holder/sex."""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """Every partner department pulls and is pushed to, by its shipped agreement."""
    links = "".join(
        f"""
[departments.{department.value}]
endpoint = "http://127.0.0.1:9/webhooks/holder-records"
secret_env = "HUB_TEST_UNUSED_SECRET"
agreement = "{department.value}-holders"
delivery = "both"
events = ["*"]
"""
        for department in PARTNERS
    )
    path = tmp_path / "departments.toml"
    path.write_text(links, encoding="utf-8")
    return settings.model_copy(update={"departments_file": path})


@pytest.fixture
def seeded(hub: Hub) -> Hub:
    return seed_shipped_agreements(hub)


@pytest.fixture
def governance(app_client: TestClient, register_client: RegisterClient) -> dict[str, str]:
    new = register_client("public-security", ("schemas:read", "schemas:admin"))
    return bearer(access_token(app_client, new))


class Receiver(LoopbackServer):
    def records(self) -> list[dict[str, Any]]:
        return [delivery["record"] for delivery in httpx.get(f"{self.url}/received").json()]


@pytest.fixture
def receivers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dict[Department, DepartmentLink], dict[str, Receiver]]]:
    links: dict[Department, DepartmentLink] = {}
    running: dict[str, Receiver] = {}
    for department in PARTNERS:
        secret, env = new_secret(), f"HUB_TEST_SECRET_{department.name}"
        monkeypatch.setenv(env, secret)
        app = create_receiver(department.value, secret, tmp_path / f"{department.value}.db")
        running[department.value] = Receiver(app)
        links[department] = DepartmentLink(
            endpoint=f"{running[department.value].url}/webhooks/holder-records",
            secret_env=env,
            agreement=f"{department.value}-holders",
            delivery=DeliveryMode.BOTH,
            events=("*",),
        )
    yield links, running
    for receiver in running.values():
        receiver.stop()


def forward_mode(client: TestClient, governance: dict[str, str]) -> None:
    answer = client.put(
        "/schemas/v1/config/holder-record", json={"compatibility": "FORWARD"}, headers=governance
    )
    assert answer.status_code == 200, answer.text


def leaves(value: Any, at: str = "") -> Iterator[str]:
    """The pointer of every value in `value` that is not a non-empty object."""
    if isinstance(value, dict) and value:
        for name, item in value.items():
            yield from leaves(item, f"{at}/{name.replace('~', '~0').replace('/', '~1')}")
    else:
        yield at


def assert_only_agreed(department: str, record: dict[str, Any]) -> None:
    """Every field of `record` lies under an agreed pointer or the envelope."""
    allowed = [parse_pointer(pointer) for pointer in (*ENVELOPE, *AGREED[department])]
    for leaf in leaves(record):
        tokens = parse_pointer(leaf)
        assert tokens is not None
        assert any(tokens[: len(each)] == each for each in allowed if each), (department, leaf)
    assert record["schema_version"] == 2 and "holder" in record and "permit" in record


def department_headers(
    client: TestClient, register_client: RegisterClient, department: Department
) -> dict[str, str]:
    new = register_client(department.value, ("exchange:feed", "exchange:lookup"))
    return bearer(access_token(client, new))


def test_a_version_requiring_holder_sends_no_department_a_field_outside_its_agreement(
    app_client: TestClient,
    register_client: RegisterClient,
    governance: dict[str, str],
    seeded: Hub,
    receivers: tuple[dict[Department, DepartmentLink], dict[str, Receiver]],
) -> None:
    forward_mode(app_client, governance)
    active = app_client.post(
        VERSIONS, json={"schema": HOLDER_REQUIRED, "state": "ACTIVE"}, headers=governance
    )
    assert active.status_code == 201, active.text  # every agreement lets holder and permit in
    holders = make_holders(seeded, 1, 2)

    links, running = receivers
    relay = Relay(seeded.outbound, links=links)
    try:
        assert relay.run_once() == len(PARTNERS) * 2 * len(holders)  # accept, issue
    finally:
        relay.close()

    for department in PARTNERS:
        name = department.value
        pushed = running[name].records()
        headers = department_headers(app_client, register_client, department)
        feed = app_client.get("/exchange/v1/feed", headers=headers)
        assert feed.status_code == 200, feed.text
        pulled = feed.json()["records"]
        looked_up = [_look_up(app_client, headers, holder) for holder in holders]
        assert len(pushed) == len(pulled) == 2 * len(holders)
        for record in (*pushed, *pulled, *looked_up):
            assert_only_agreed(name, record)
        holder_fields = {field for record in pushed for field in record["holder"]}
        assert holder_fields == {
            pointer.split("/")[2] for pointer in AGREED[name] if pointer.startswith("/holder/")
        }
        if department is not Department.HEALTH:
            assert "sex" not in holder_fields and "contact" not in holder_fields
        assert not holder_fields & {"ethnicity", "household_address"}


def _look_up(client: TestClient, headers: dict[str, str], holder: Holder) -> dict[str, Any]:
    found = client.post(
        "/exchange/v1/lookup",
        json={"citizen_id": holder.citizen_id, "purpose": "核验 / verification"},
        headers=headers,
    )
    assert found.status_code == 200, found.text
    record: dict[str, Any] = found.json()
    return record


def _versions(client: TestClient, headers: dict[str, str]) -> list[tuple[int, str]]:
    listed = client.get(VERSIONS, headers=headers).json()
    return [(entry["version"], entry["state"]) for entry in listed]


def test_a_version_an_agreement_cannot_serve_is_refused_naming_each_agreement(
    app_client: TestClient, governance: dict[str, str], seeded: Hub
) -> None:
    forward_mode(app_client, governance)
    refused = app_client.post(
        VERSIONS, json={"schema": SEX_REQUIRED, "state": "ACTIVE"}, headers=governance
    )
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"] == "/problems/agreement-too-narrow"
    named = {entry["id"]: entry for entry in problem["agreements"]}
    assert set(named) == {
        f"{department.value}-holders"
        for department in PARTNERS
        if department is not Department.HEALTH
    }
    assert all(entry["fields"] == ["/holder/sex"] for entry in named.values())
    assert all(entry["schema_version"] == 2 and entry["version"] == 1 for entry in named.values())
    assert "education-holders" in problem["detail"] and "/holder/sex" in problem["detail"]
    assert _versions(app_client, governance) == [(1, "ACTIVE")]  # nothing written

    draft = app_client.post(VERSIONS, json={"schema": SEX_REQUIRED}, headers=governance)
    assert draft.status_code == 201 and draft.json()["state"] == "DRAFT"
    activate = app_client.put(f"{VERSIONS}/2/state", json={"state": "ACTIVE"}, headers=governance)
    assert activate.status_code == 409
    assert {entry["id"] for entry in activate.json()["agreements"]} == set(named)
    assert _versions(app_client, governance) == [(1, "ACTIVE"), (2, "DRAFT")]

    for department in PARTNERS:  # amended to allow what the version requires: it may go live
        if department is not Department.HEALTH:
            _amend(
                app_client,
                governance,
                f"{department.value}-holders",
                [*AGREED[department.value], "/holder/sex"],
            )
    activated = app_client.put(f"{VERSIONS}/2/state", json={"state": "ACTIVE"}, headers=governance)
    assert activated.status_code == 200, activated.text


def _amend(
    client: TestClient, headers: dict[str, str], agreement_id: str, fields: list[str], **terms: Any
) -> Any:
    url = f"/schemas/v1/agreements/{agreement_id}"
    current = client.get(url, headers=headers)
    body = {
        key: current.json()[key]
        for key in (
            "department",
            "purpose",
            "subject",
            "legal_basis",
            "valid_from",
            "valid_to",
            "status",
        )
    }
    return client.put(
        url,
        json={**body, "fields": fields, **terms},
        headers={**headers, "If-Match": current.headers["etag"]},
    )


def test_an_agreement_cannot_be_narrowed_below_what_the_version_in_use_requires(
    app_client: TestClient, governance: dict[str, str], seeded: Hub
) -> None:
    forward_mode(app_client, governance)
    active = app_client.post(
        VERSIONS, json={"schema": HOLDER_REQUIRED, "state": "ACTIVE"}, headers=governance
    )
    assert active.status_code == 201, active.text
    permit_only = [field for field in AGREED["education"] if field.startswith("/permit/")]

    narrowed = _amend(app_client, governance, "education-holders", permit_only)
    assert narrowed.status_code == 409, narrowed.text
    problem = narrowed.json()
    assert problem["type"] == "/problems/agreement-too-narrow"
    assert [(e["id"], e["schema_version"], e["fields"]) for e in problem["agreements"]] == [
        ("education-holders", 2, ["/holder"])
    ]
    assert {error["pointer"] for error in problem["errors"]} == {"/fields"}
    current = app_client.get("/schemas/v1/agreements/education-holders", headers=governance)
    assert current.json()["version"] == 1  # nothing written

    created = app_client.post(
        "/schemas/v1/agreements",
        json={
            "department": "education",
            "purpose": "学籍核验",
            "subject": "holder-record",
            "fields": permit_only,
            "legal_basis": "[CF §24]",
            "valid_from": "2099-01-01",  # not yet in force, but it will be without a change
        },
        headers=governance,
    )
    assert created.status_code == 409
    assert created.json()["agreements"][0]["fields"] == ["/holder"]

    suspended = _amend(app_client, governance, "education-holders", permit_only, status="suspended")
    assert suspended.status_code == 200, suspended.text  # sends nothing, so serves no version
    revived = _amend(app_client, governance, "education-holders", permit_only, status="active")
    assert revived.status_code == 409


def test_a_version_made_active_before_these_checks_sends_nothing_wider(
    app_client: TestClient,
    register_client: RegisterClient,
    governance: dict[str, str],
    seeded: Hub,
    receivers: tuple[dict[Department, DepartmentLink], dict[str, Receiver]],
) -> None:
    """A database where a version requiring /holder/sex went live before the registry refused
    it: the projection still adds nothing, so education's records are not sent at all."""
    forward_mode(app_client, governance)
    draft = app_client.post(VERSIONS, json={"schema": SEX_REQUIRED}, headers=governance)
    assert draft.status_code == 201
    with Session(seeded.engine) as session:
        session.execute(
            sa.update(SchemaVersion)
            .where(col(SchemaVersion.subject) == "holder-record", col(SchemaVersion.version) == 2)
            .values(state="ACTIVE")
        )
        session.commit()
    holders = make_holders(seeded, 1, 1)

    links, running = receivers
    relay = Relay(
        seeded.outbound,
        links={
            Department.EDUCATION: links[Department.EDUCATION],
            Department.HEALTH: links[Department.HEALTH],
        },
    )
    try:
        relay.run_once()
    finally:
        relay.close()
    assert running["education"].records() == []
    with Session(seeded.engine) as session:
        errors = session.exec(
            select(Delivery.last_error).where(col(Delivery.department) == "education")
        ).all()
    assert any("does not allow /holder/sex" in (error or "") for error in errors)  # the reason
    health = running["health"].records()
    assert len(health) == 2 and all(set(r["holder"]) >= {"sex"} for r in health)

    education = department_headers(app_client, register_client, Department.EDUCATION)
    feed = app_client.get("/exchange/v1/feed", headers=education)
    assert feed.status_code == 500
    assert feed.json()["type"] == "/problems/holder-record-unavailable"
    assert "sex" not in json.dumps(feed.json())
    looked_up = app_client.post(
        "/exchange/v1/lookup",
        json={"citizen_id": holders[0].citizen_id, "purpose": "核验"},
        headers=education,
    )
    assert looked_up.status_code == 500


def test_a_boolean_schema_cannot_go_live_and_the_exchange_keeps_working(
    app_client: TestClient,
    register_client: RegisterClient,
    governance: dict[str, str],
    seeded: Hub,
    receivers: tuple[dict[Department, DepartmentLink], dict[str, Receiver]],
) -> None:
    """`{"schema": true}` was once a compatible holder-record version: activated, it stopped
    the relay and the feed. It is no version at all now, as ACTIVE or as a DRAFT to activate."""
    for mode in ("FORWARD", "NONE"):
        app_client.put(
            "/schemas/v1/config/holder-record", json={"compatibility": mode}, headers=governance
        )
        for schema in (True, False):
            for state in ("ACTIVE", "DRAFT"):
                answer = app_client.post(
                    VERSIONS, json={"schema": schema, "state": state}, headers=governance
                )
                assert answer.status_code == 422, answer.text
    activate = app_client.put(f"{VERSIONS}/2/state", json={"state": "ACTIVE"}, headers=governance)
    assert activate.status_code == 404
    assert _versions(app_client, governance) == [(1, "ACTIVE")]

    holders = make_holders(seeded, 1, 1)
    links, running = receivers
    relay = Relay(seeded.outbound, links={Department.EDUCATION: links[Department.EDUCATION]})
    try:
        assert relay.run_once() == 2
    finally:
        relay.close()
    assert [r["schema_version"] for r in running["education"].records()] == [1, 1]
    education = department_headers(app_client, register_client, Department.EDUCATION)
    feed = app_client.get("/exchange/v1/feed", headers=education)
    assert feed.status_code == 200, feed.text
    assert [r["permit"]["id"] for r in feed.json()["records"]] == [holders[0].permit_id] * 2
