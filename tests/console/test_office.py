"""The acceptance office in the console, on both databases: a case found by citizen ID (the
search audited with the clerk's purpose), the holder's page with the actions its state allows
(a stale page refused), the worklist of reported people, the access report's PDF and the
statistics dashboard; a clerk of another role is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.auth.domain import ClientKind, ReporterRole
from hub.auth.service import Organisation
from hub.clock import FixedClock
from hub.composition import Hub
from hub.db import unit_of_work
from hub.permits.identity import parse_citizen_id
from hub.permits.store import PermitEvent, Registration
from tests.auth.helpers import access_token, bearer
from tests.connectors.helpers import Holder, make_holders, seed_agreements
from tests.console.helpers import browser, clerk, hidden_fields, new_staff, sign_in
from tests.factories import ADULT, STORED_AT, add_registration, new_permit

PURPOSE = "窗口办理：发证"
TODAY = date(2026, 10, 13)


def _holder(hub: Hub, clock: FixedClock) -> Holder:
    seed_agreements(hub, clock)
    [holder] = make_holders(hub, 1, 1, issue=False)
    return holder


def test_find_a_case_and_issue_its_permit(
    app_client: TestClient, hub: Hub, clock: FixedClock
) -> None:
    holder = _holder(hub, clock)
    client = clerk(app_client, hub)
    page = client.get("/console/office")
    assert page.status_code == 200 and "chifeng" in page.text
    found = client.post(
        "/console/office/search",
        data={**hidden_fields(page), "citizen_id": holder.citizen_id, "purpose": PURPOSE},
    )
    assert found.status_code == 200, found.text
    assert f"/console/office/permits/{holder.permit_id}" in found.text
    assert holder.citizen_id not in found.text and "210102************" in found.text
    with Session(hub.engine) as session:
        [search] = session.exec(
            select(AuditEntry).where(col(AuditEntry.action).startswith("registration.search"))
        ).all()
    assert (search.purpose, search.actor_client_id) == (PURPOSE, "staff:zhao.lei")

    holder_page = client.get(f"/console/office/permits/{holder.permit_id}")
    assert holder_page.status_code == 200, holder_page.text
    assert "accepted" in holder_page.text and 'value="issue"' in holder_page.text
    assert 'value="endorse"' not in holder_page.text
    form = hidden_fields(holder_page)
    issued = client.post(
        f"/console/office/permits/{holder.permit_id}/act",
        data={"csrf": form["csrf"], "action": "issue", "version": "1"},
    )
    assert issued.status_code == 303, issued.text
    after = client.get(issued.headers["location"])
    assert "valid" in after.text and 'value="issue"' not in after.text
    stale = client.post(
        f"/console/office/permits/{holder.permit_id}/act",
        data={"csrf": form["csrf"], "action": "issue", "version": "1"},
    )
    assert stale.status_code in (409, 412) and "text/html" in stale.headers["content-type"]


def test_the_worklist_the_access_report_and_the_statistics(
    app_client: TestClient, hub: Hub, clock: FixedClock
) -> None:
    holder = _holder(hub, clock)
    clock.set(datetime(2026, 10, 13, 2, tzinfo=UTC))
    reporter = hub.add_client(
        department="public-security",
        scopes=["reports:submit"],
        kind=ClientKind.REPORTER,
        jurisdictions=["chifeng"],
        organisation=Organisation(
            "91350100M000100Y43", "赤峰华达物流有限公司", ReporterRole.EMPLOYER
        ),
    )
    report = {
        "report_id": "HR-1",
        "person": {"citizen_id": "150402199001010015", "name": "李娜"},
        "occurred_on": "2026-10-09",
        "address": "赤峰市红山区某小区2号楼",
        "region": "150402",
    }
    filed = app_client.post(
        "/exchange/v1/reports",
        headers=bearer(access_token(app_client, reporter)),
        json={"subject": "report.hire", "report": report},
    )
    assert filed.status_code == 201, filed.text

    client = clerk(app_client, hub)
    worklist = client.get("/console/office/worklist")
    assert worklist.status_code == 200
    assert "李娜" in worklist.text and "150402************" in worklist.text
    assert "150402199001010015" not in worklist.text

    page = client.get("/console/office")
    pdf = client.post(
        "/console/office/access-report",
        data={
            "csrf": hidden_fields(page)["csrf"],
            "citizen_id": holder.citizen_id,
            "since": "2026-01-01",
            "until": "2026-12-31",
            "purpose": "本人申请",
        },
    )
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")

    dashboard = client.get("/console/statistics")
    assert dashboard.status_code == 200 and "registrations" in dashboard.text
    for chart in ("registrations", "issuance", "taps"):
        svg = client.get(f"/console/statistics/{chart}.svg")
        assert svg.headers["content-type"] == "image/svg+xml" and b"<script" not in svg.content
    csv = client.get("/console/statistics.csv")
    assert csv.status_code == 200 and csv.text.startswith("figure,")


def test_a_window_clerk_is_refused_the_office(app_client: TestClient, hub: Hub) -> None:
    given = new_staff(hub, "li.lei", "window-clerk")
    client = browser(app_client)
    sign_in(client, "li.lei", given.password, new_password="z" * 16)
    assert client.get("/console/office").status_code == 403
    assert client.get("/console/statistics").status_code == 403


def test_the_holders_page_shows_points_indicators_where_the_city_has_a_scheme(
    app_client: TestClient, hub: Hub, clock: FixedClock
) -> None:
    """Ningbo rations by points [NB 三(三)] but publishes no table in the seeds: indicators,
    their evidence, and no invented score."""
    holder = uuid.uuid4().hex * 2
    with unit_of_work(hub.engine) as session:
        registration = session.get(Registration, add_registration(session, holder))
        assert registration is not None
        registration.citizen_id_sealed = hub.vault.seal(parse_citizen_id(ADULT, today=TODAY))
        permit = new_permit(registration.id, holder, "valid")
        permit.jurisdiction = "ningbo"
        session.add(permit)
        session.flush()
        session.add(
            PermitEvent(
                permit_id=permit.id,
                type="accept",
                payload={"residence_start": "2023-03-01"},
                state_after="valid",
                actor_client_id="test",
                at=STORED_AT,
            )
        )
    given = new_staff(hub, "qian.li", "acceptance-office", jurisdictions=("ningbo",))
    client = browser(app_client)
    sign_in(client, "qian.li", given.password, new_password="q" * 16)
    page = client.get(f"/console/office/permits/{permit.id}?on=2026-10-13")
    assert page.status_code == 200, page.text
    assert 'id="points"' in page.text and "residence-years" in page.text
    assert "不计分值" in page.text or "no score" in page.text
