"""Reports by employers, property managers, agencies and landlords [CF §6-9] through the
exchange: validated subjects from `reporter` clients of one organisation, idempotent by the
reporter's id, late or not on the official calendar; a registered person's report is a proof
on file, anyone else goes on the office's worklist until they register."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.auth.domain import ClientKind, ReporterRole
from hub.auth.service import Organisation
from hub.cli import cli
from hub.clock import FixedClock
from hub.composition import Hub
from hub.permits.store import Proof
from tests.auth.helpers import access_token, bearer
from tests.conftest import TEST_SECRET, RegisterClient
from tests.factories import assert_problem, build, registration_body

EMPLOYER_CODE = "91350100M000100Y43"
LANDLORD_CODE = "91110000600037341L"
PERSON = build("210102", "19900115")


def _reporter(app_client: TestClient, hub: Hub, role: ReporterRole, code: str) -> dict[str, str]:
    new = hub.add_client(
        department="public-security",
        scopes=["reports:submit"],
        kind=ClientKind.REPORTER,
        jurisdictions=["chifeng"],
        organisation=Organisation(code, "赤峰华达物流有限公司", role),
    )
    return bearer(access_token(app_client, new))


@pytest.fixture
def employer(app_client: TestClient, hub: Hub, clock: FixedClock) -> dict[str, str]:
    clock.set(datetime(2026, 10, 13, 2, tzinfo=UTC))  # Tuesday 13 October 2026, China
    return _reporter(app_client, hub, ReporterRole.EMPLOYER, EMPLOYER_CODE)


@pytest.fixture
def office(
    app_client: TestClient, register_client: RegisterClient, employer: dict[str, str]
) -> dict[str, str]:
    new = register_client(
        "public-security", ("registry:read", "registry:write"), jurisdictions=("chifeng",)
    )
    return bearer(access_token(app_client, new))


def _hire(citizen_id: str = PERSON, **changes: Any) -> dict[str, Any]:
    report = {
        "report_id": "HR-2026-000731",
        "person": {"citizen_id": citizen_id, "name": "王芳"},
        "occurred_on": "2026-10-09",
        "address": "赤峰市红山区长青路12号3栋2单元501室",
        "region": "150402",
        "workplace": "赤峰华达物流有限公司",
    }
    report.update(changes)
    return {"subject": "report.hire", "report": report}


def _file(app_client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return app_client.post("/exchange/v1/reports", headers=headers, json=body)


def test_an_unregistered_person_goes_on_the_worklist_until_they_register(
    app_client: TestClient, employer: dict[str, str], office: dict[str, str]
) -> None:
    filed = _file(app_client, employer, _hire())
    assert filed.status_code == 201, filed.text
    report = filed.json()
    assert report["status"] == "open" and report["reported_late"] is False
    assert report["report_due_on"] == "2026-10-19"  # 7 working days, Saturday 10th one [CF §6]
    assert report["declare_by"] == "2026-10-19"  # the person's own 7 working days [CF §10]

    worklist = app_client.get("/registry/v1/worklist", headers=office)
    assert worklist.status_code == 200, worklist.text
    [item] = worklist.json()
    assert item["citizen_id"] == "210102************" and item["name"] == "王芳"
    assert item["reported_by"] == "赤峰华达物流有限公司" and item["reporter_role"] == "employer"
    assert item["overdue"] is False
    assert PERSON not in worklist.text

    registered = app_client.post(
        "/registry/v1/registrations",
        headers=office,
        json=registration_body(arrived_on="2026-10-09"),
    )
    assert registered.status_code == 201, registered.text
    assert app_client.get("/registry/v1/worklist", headers=office).json() == []


def test_a_registered_persons_report_is_a_proof_on_file(
    app_client: TestClient, employer: dict[str, str], office: dict[str, str], hub: Hub
) -> None:
    app_client.post("/registry/v1/registrations", headers=office, json=registration_body())
    report = _file(app_client, employer, _hire()).json()
    assert report["status"] == "on-file"
    with Session(hub.engine) as session:
        [proof] = session.exec(select(Proof).where(col(Proof.kind) == "hire-report")).all()
    assert proof.source_proof_id == f"{EMPLOYER_CODE}/HR-2026-000731"
    assert proof.details["organisation"] == "赤峰华达物流有限公司"
    assert app_client.get("/registry/v1/worklist", headers=office).json() == []


def test_idempotent_by_the_reporters_id_and_late_on_the_official_calendar(
    app_client: TestClient, employer: dict[str, str]
) -> None:
    first = _file(app_client, employer, _hire())
    again = _file(app_client, employer, _hire())
    assert again.status_code == 200 and again.json() == first.json()
    other = _file(app_client, employer, _hire(address="赤峰市松山区某小区5号楼"))
    assert_problem(other, 409, "report-conflict")

    # Hired on 25 September: the seven working days ran over National Day to 12 October.
    late = _file(app_client, employer, _hire(report_id="HR-2026-000700", occurred_on="2026-09-25"))
    assert late.status_code == 201
    assert (late.json()["report_due_on"], late.json()["reported_late"]) == ("2026-10-12", True)


def test_who_may_report_what_and_where(
    app_client: TestClient, employer: dict[str, str], hub: Hub, register_client: RegisterClient
) -> None:
    landlord = _reporter(app_client, hub, ReporterRole.LANDLORD, LANDLORD_CODE)
    assert_problem(_file(app_client, landlord, _hire()), 403, "report-not-owned")
    tenancy = {**_hire(), "subject": "report.tenancy"}
    tenancy["report"] = {k: v for k, v in tenancy["report"].items() if k != "workplace"}
    assert _file(app_client, landlord, tenancy).status_code == 201

    outside = assert_problem(
        _file(app_client, employer, _hire(region="330203")), 422, "report-invalid"
    )
    assert outside["errors"][0]["pointer"] == "/report/region"
    broken = _hire()
    del broken["report"]["person"]
    missing = assert_problem(_file(app_client, employer, broken), 422, "report-invalid")
    assert [error["pointer"] for error in missing["errors"]] == ["/report/person"]
    wrong = PERSON[:-1] + ("1" if PERSON[-1] != "1" else "2")
    refused = _file(app_client, employer, _hire(citizen_id=wrong))
    assert refused.status_code == 422 and wrong not in refused.text

    department = bearer(access_token(app_client, register_client("housing", ("exchange:proofs",))))
    assert _file(app_client, department, tenancy).status_code == 403


def test_clients_add_makes_a_reporter_only_of_a_real_organisation(
    database_url: str, hub: Hub
) -> None:
    env = {"HUB_DATABASE_URL": database_url, "HUB_SECRET_KEY": TEST_SECRET}
    args = [
        "clients",
        "add",
        "--department",
        "public-security",
        "--scopes",
        "reports:submit",
        "--jurisdiction",
        "chifeng",
        "--reporter",
        "employer",
        "--organisation-name",
        "赤峰华达物流有限公司",
    ]
    bad = CliRunner().invoke(cli, [*args, "--organisation-code", "91150402MA0N1234X5"], env=env)
    assert bad.exit_code == 2 and "not a unified social credit code" in bad.stderr
    good = CliRunner().invoke(cli, [*args, "--organisation-code", EMPLOYER_CODE], env=env)
    assert good.exit_code == 0, good.output
    assert good.stdout.startswith("client_id: reporter-")
