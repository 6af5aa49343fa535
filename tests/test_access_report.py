"""A holder's access report (POST /registry/v1/access-reports): every disclosure of their
record by push, feed, look-up, tap and registry read, with the fields each let out and never
another holder's; as JSON and as the PDF the office hands over; itself audited."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditEntry
from hub.clock import FixedClock
from hub.composition import Hub
from hub.connectors.store import Delivery
from hub.db import unit_of_work
from hub.permits.store import PermitEvent
from hub.settings import Settings
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient
from tests.connectors.helpers import (
    NOW,
    Holder,
    department,
    make_holders,
    seed_agreements,
    with_departments,
)
from tests.factories import assert_problem

REPORTS = "/registry/v1/access-reports"
PERIOD = {"since": "2026-10-01", "until": "2026-10-31"}
ASKED = "持证人本人申请（受理号 2026-0451）"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return with_departments(settings, tmp_path)


@pytest.fixture
def holders(hub: Hub, clock: FixedClock) -> list[Holder]:
    seed_agreements(hub, clock)
    return make_holders(hub, 1, 2)


@pytest.fixture
def office(
    app_client: TestClient, register_client: RegisterClient, holders: list[Holder]
) -> dict[str, str]:
    """Signed in once the clock is at NOW (the holders are made then)."""
    new = register_client("public-security", ("registry:read",), jurisdictions=("chifeng",))
    return bearer(access_token(app_client, new))


def _disclose_in_every_way(
    app_client: TestClient,
    register_client: RegisterClient,
    hub: Hub,
    office: dict[str, str],
    holders: list[Holder],
) -> None:
    first = holders[0]
    assert app_client.get(f"/registry/v1/permits/{first.permit_id}", headers=office).is_success
    education = department(
        app_client, register_client, "education", "exchange:lookup", "exchange:feed"
    )
    for holder in holders:  # the second's look-up is not the first's business
        found = app_client.post(
            "/exchange/v1/lookup",
            json={"citizen_id": holder.citizen_id, "purpose": "入学资格核验"},
            headers=education,
        )
        assert found.status_code == 200, found.text
    assert app_client.get("/exchange/v1/feed", headers=education).json()["records"]
    hr = Actor("hr-window-7", "hr-social-security")
    with unit_of_work(hub.engine) as session:
        hub.audit.record(
            session, hr.did("verification.tap", "grant", first.id_hash, "就业登记"), NOW
        )
        hub.audit.record(
            session, hr.did("verification.tap", "deny:expired", first.id_hash, "x"), NOW
        )
        issue = session.exec(
            select(PermitEvent).where(
                col(PermitEvent.permit_id) == first.permit_id, col(PermitEvent.type) == "issue"
            )
        ).one()
        session.add(
            Delivery(
                event_seq=issue.seq or 0,
                department="housing",
                permit_id=first.permit_id,
                status="delivered",
                attempts=1,
                next_attempt_at=NOW,
                created_at=NOW,
                delivered_at=NOW,
            )
        )


def _report(app_client: TestClient, office: dict[str, str], holder: Holder, **extra: Any) -> Any:
    body = {"citizen_id": holder.citizen_id, "purpose": ASKED, **PERIOD}
    return app_client.post(REPORTS, headers={**office, **extra.pop("headers", {})}, json=body)


def test_every_way_the_record_left_is_listed_with_its_fields_and_nothing_of_another_holder(
    app_client: TestClient,
    register_client: RegisterClient,
    hub: Hub,
    office: dict[str, str],
    holders: list[Holder],
) -> None:
    _disclose_in_every_way(app_client, register_client, hub, office, holders)
    response = _report(app_client, office, holders[0])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    report = response.json()
    assert report["citizen_id"] == "210102************"
    assert (report["since"], report["until"]) == ("2026-10-01", "2026-10-31")
    by_channel = {item["channel"]: item for item in report["disclosures"]}
    assert sorted(item["channel"] for item in report["disclosures"]) == [
        "feed",
        "look-up",
        "push",
        "registry",
        "tap",
    ]
    assert by_channel["look-up"]["department"] == "education"
    assert by_channel["look-up"]["purpose"] == "入学资格核验"
    assert by_channel["look-up"]["agreement"] == "education-holders"
    assert by_channel["feed"]["fields"] == by_channel["look-up"]["fields"]
    assert by_channel["push"]["department"] == "housing"
    assert by_channel["push"]["agreement"] == "housing-holders" and by_channel["push"]["fields"]
    assert by_channel["tap"]["department"] == "hr-social-security"
    assert by_channel["registry"]["fields"] is None  # the whole registry record
    for item in report["disclosures"]:
        assert item["at"].startswith("2026-10-13T02:00")
    assert holders[0].citizen_id not in response.text
    assert holders[1].citizen_id not in response.text

    with Session(hub.engine) as session:
        [entry] = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "access-report")
        ).all()
    assert (entry.subject, entry.purpose, entry.outcome) == (holders[0].id_hash, ASKED, "disclosed")

    again = _report(app_client, office, holders[0]).json()
    assert [item["channel"] for item in again["disclosures"]].count("access-report") == 1


def test_the_printable_report_is_a_pdf_without_the_number(
    app_client: TestClient,
    register_client: RegisterClient,
    hub: Hub,
    office: dict[str, str],
    holders: list[Holder],
) -> None:
    _disclose_in_every_way(app_client, register_client, hub, office, holders)
    response = _report(app_client, office, holders[0], headers={"Accept": "application/pdf"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.content.startswith(b"%PDF-")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "210102************" in text
    assert "education" in text.lower() and "housing" in text.lower()
    assert "5 disclosures" in text
    assert holders[0].citizen_id not in text
    assert holders[0].citizen_id.encode() not in response.content


def test_a_period_backwards_or_too_long_and_an_office_without_jurisdiction_are_refused(
    app_client: TestClient,
    register_client: RegisterClient,
    office: dict[str, str],
    holders: list[Holder],
    hub: Hub,
) -> None:
    body = {"citizen_id": holders[0].citizen_id, "purpose": ASKED}
    backwards = {**body, "since": "2026-10-31", "until": "2026-10-01"}
    assert_problem(
        app_client.post(REPORTS, headers=office, json=backwards), 422, "validation-failed"
    )
    long = {**body, "since": "2020-01-01", "until": "2026-10-01"}
    assert_problem(app_client.post(REPORTS, headers=office, json=long), 422, "validation-failed")
    nowhere = bearer(
        access_token(app_client, register_client("public-security", ("registry:read",)))
    )
    assert_problem(
        app_client.post(REPORTS, headers=nowhere, json={**body, **PERIOD}), 403, "no-jurisdiction"
    )
    with Session(hub.engine) as session:
        assert (
            session.exec(select(AuditEntry).where(col(AuditEntry.action) == "access-report")).all()
            == []
        )
