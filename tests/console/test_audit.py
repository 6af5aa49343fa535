"""The audit log in the console, on both databases: a holder searched by citizen ID that only
ever travels as its keyed hash, paging, CSV export, the chain verified on request, and every
search itself audited."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditEntry
from hub.clock import FixedClock
from hub.composition import Hub
from hub.db import unit_of_work
from hub.permits.identity import parse_citizen_id
from hub.schemas import agreements
from tests.conftest import seed_shipped_agreements
from tests.connectors.helpers import chifeng_citizen_id
from tests.console.helpers import browser, hidden_fields, new_staff, sign_in

NEW_PASSWORD = "who saw what and why"
CLERK = Actor("health-window-1", "health")


def _holder_entries(hub: Hub, count: int) -> tuple[str, str]:
    """`count` taps of one holder by a health window; the citizen ID and its hash."""
    citizen_id = chifeng_citizen_id(7)
    hashed = hub.vault.lookup_hash(parse_citizen_id(citizen_id, today=hub.clock.today()))
    with unit_of_work(hub.engine) as session:
        for _ in range(count):
            event = CLERK.did("verification.tap", "granted", hashed, "medical-insurance")
            hub.audit.record(session, event, hub.clock.now())
        hub.audit.record(
            session, CLERK.did("verification.tap", "granted", "x" * 64, "p"), hub.clock.now()
        )
    return citizen_id, hashed


def _auditor(app_client: TestClient, hub: Hub) -> TestClient:
    given = new_staff(hub, "sun.li", "auditor")
    client = browser(app_client)
    sign_in(client, "sun.li", given.password, new_password=NEW_PASSWORD)
    return client


def test_a_holder_is_searched_by_the_hash_of_their_citizen_id(
    app_client: TestClient, hub: Hub
) -> None:
    citizen_id, hashed = _holder_entries(hub, 60)
    client = _auditor(app_client, hub)
    page = client.get("/console/audit?lang=en")
    csrf = hidden_fields(page)["csrf"]
    found = client.post("/console/audit/search", data={"csrf": csrf, "holder": citizen_id})
    assert found.status_code == 303
    location = found.headers["location"]
    assert citizen_id not in location and parse_qs(urlsplit(location).query)["subject"] == [hashed]
    first = client.get(location + "&lang=en")
    assert first.status_code == 200 and citizen_id not in first.text
    assert first.text.count("medical-insurance") == 50 and 'rel="next"' in first.text
    next_link = next(part for part in first.text.split('"') if "before=" in part)
    rest = client.get(next_link.replace("&amp;", "&"))
    assert rest.text.count("medical-insurance") == 10 and 'rel="next"' not in rest.text

    exported = client.get(f"/console/audit.csv?subject={hashed}")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:5] == ["seq", "at", "actor", "department", "action"]
    assert {row[5] for row in rows[1:]} == {hashed}
    taps = [row for row in rows[1:] if row[4] == "verification.tap"]
    assert len(taps) == 60
    # the holder's own record shows who searched for them, and nothing else
    assert {(row[2], row[4]) for row in rows[1:] if row not in taps} == {
        ("staff:sun.li", "audit.search")
    }

    with Session(hub.engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == "audit.search")
        searches = session.exec(query.order_by(col(AuditEntry.seq))).all()
    assert searches and all(e.actor_client_id == "staff:sun.li" for e in searches)
    assert all(citizen_id not in f"{e.outcome}{e.subject}{e.purpose}" for e in searches)
    assert {e.outcome for e in searches} >= {"found 50", "found 10"}
    assert any(e.subject == hashed for e in searches)


def test_a_search_by_action_period_and_a_bad_citizen_id(app_client: TestClient, hub: Hub) -> None:
    _holder_entries(hub, 2)
    client = _auditor(app_client, hub)
    csrf = hidden_fields(client.get("/console/audit"))["csrf"]
    wrong = client.post(
        "/console/audit/search", data={"csrf": csrf, "holder": "110101199003077778"}
    )
    assert wrong.status_code == 422 and "110101199003077778" not in wrong.text
    today = hub.clock.today()
    taps = client.get(f"/console/audit?action=verification.&from={today}&to={today}")
    assert taps.text.count("verification.tap") == 3
    tomorrow = today + timedelta(days=1)
    assert "No entry matches" in client.get(f"/console/audit?from={tomorrow}&lang=en").text
    assert client.get("/console/audit?subject=not-a-hash").status_code == 422


def test_the_chain_is_verified_on_request(app_client: TestClient, hub: Hub) -> None:
    client = _auditor(app_client, hub)
    page = client.get("/console/audit?lang=en")
    assert "has not been verified from the console yet" in page.text
    verified = client.post("/console/audit/verify", data={"csrf": hidden_fields(page)["csrf"]})
    assert verified.status_code == 303
    assert "intact: " in client.get("/console/audit?lang=en").text


def test_only_auditors_read_the_audit_log(app_client: TestClient, hub: Hub) -> None:
    given = new_staff(hub, "li.lei", "window-clerk")
    client = browser(app_client)
    sign_in(client, "li.lei", given.password, new_password=NEW_PASSWORD)
    assert client.get("/console/audit").status_code == 403
    assert client.get("/console/audit.csv").status_code == 403


def test_each_disclosure_shows_the_fields_its_agreement_let_out(
    app_client: TestClient, hub: Hub, clock: FixedClock
) -> None:
    seed_shipped_agreements(hub)
    window = Actor("education-window-1", "education")
    hashed = hub.vault.lookup_hash(parse_citizen_id(chifeng_citizen_id(8), today=clock.today()))

    def tap(outcome: str) -> None:
        with unit_of_work(hub.engine) as session:
            event = window.did("verification.tap", outcome, hashed, "service: compulsory-education")
            hub.audit.record(session, event, clock.now())

    tap("grant")
    clock.advance(timedelta(minutes=1))
    with unit_of_work(hub.engine) as session:
        row = agreements.latest(session, "education-holders")
        narrower = [f for f in row.allowed_fields if f != "/holder/name"]
        terms = replace(agreements.terms_of(row), fields=narrower)
        agreements.amend(
            session,
            hub.schemas,
            hub.audit,
            row.id,
            terms,
            expected_version=row.version,
            actor=Actor("staff:wang.fang", "public-security"),
            now=clock.now(),
        )
    clock.advance(timedelta(minutes=1))
    tap("grant")
    tap("deny:permit-expired")

    client = _auditor(app_client, hub)
    page = client.get(f"/console/audit?subject={hashed}&lang=en")
    assert page.text.count("9 fields (agreement education-holders v1)") == 1
    assert page.text.count("8 fields (agreement education-holders v2)") == 1
    assert page.text.count('<details class="disclosed">') == 2  # the denial disclosed nothing
    assert "<code>/holder/name</code>" in page.text and "13800000000" not in page.text
    rows = list(csv.reader(io.StringIO(client.get(f"/console/audit.csv?subject={hashed}").text)))
    assert rows[0][-2:] == ["agreement", "disclosed_fields"]
    disclosed = [(row[7], row[8], row[9]) for row in rows[1:] if row[4] == "verification.tap"]
    assert [(outcome, agreement) for outcome, agreement, _ in disclosed] == [
        ("deny:permit-expired", ""),
        ("grant", "education-holders:2"),
        ("grant", "education-holders:1"),
    ]
    assert "/holder/name" not in disclosed[1][2] and "/holder/name" in disclosed[2][2]
