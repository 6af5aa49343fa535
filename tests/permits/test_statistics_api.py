"""Statistics for assessment (GET /registry/v1/statistics): each figure by jurisdiction and
China-time month, from the stored facts, only for the jurisdictions the caller serves."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditEntry
from hub.clock import FixedClock
from hub.composition import Hub
from hub.connectors.store import Delivery
from hub.db import unit_of_work
from hub.permits.store import Permit, PermitEvent, Registration
from hub.verification.store import WindowDecision
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient
from tests.factories import add_registration, assert_problem, new_card, new_permit

URL = "/registry/v1/statistics?from=2026-01&to=2026-12"


def _at(day: str, hour: int = 2) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


def _permit(session: Session, place: str = "chifeng", due: date = date(2026, 8, 5)) -> Permit:
    holder = uuid.uuid4().hex * 2
    registration = session.get(Registration, add_registration(session, holder))
    assert registration is not None
    registration.jurisdiction = place
    permit = new_permit(registration.id, holder, "valid")
    permit.jurisdiction, permit.issue_due_on = place, due
    session.add(permit)
    session.flush()
    return permit


def _event(session: Session, permit: Permit, kind: str, at: datetime, **payload: Any) -> int:
    event = PermitEvent(
        permit_id=permit.id,
        type=kind,
        payload={"on": at.date().isoformat(), **payload},
        state_after="valid",
        actor_client_id="test",
        at=at,
    )
    session.add(event)
    session.flush()
    return event.seq or 0


@pytest.fixture
def facts(hub: Hub) -> dict[str, Permit]:
    office = Actor("office", "public-security")
    education = Actor("education-1", "education")
    with unit_of_work(hub.engine) as session:
        on_time, late, elsewhere = _permit(session), _permit(session), _permit(session, "nanning")
        _event(session, on_time, "issue", _at("2026-08-01"), from_state="accepted")
        _event(session, late, "issue", _at("2026-08-10"), from_state="accepted")
        _event(session, elsewhere, "issue", _at("2026-08-10"), from_state="accepted")
        _event(session, on_time, "endorse", _at("2026-09-02"), from_state="valid")
        _event(session, late, "suspend", _at("2026-08-31", 17), from_state="valid")  # 1 Sep, China
        seq = _event(session, late, "endorse", _at("2026-09-20"), from_state="suspended")
        session.add(new_card("CF0000000009", on_time.id, date(2026, 8, 1)))
        for serial, decision in (
            ("CF0000000009", "grant"),
            ("CF0000000009", "deny"),
            ("XX1", "deny"),
        ):
            session.add(
                WindowDecision(
                    id=str(uuid.uuid4()),
                    client_id="window-1",
                    department="health",
                    service="basic-public-health",
                    card_serial=serial,
                    decision=decision,
                    reasons=[],
                    offline=False,
                    decided_at=_at("2026-10-05"),
                    recorded_at=_at("2026-10-05"),
                )
            )
        session.add(
            Delivery(
                event_seq=seq,
                department="housing",
                permit_id=late.id,
                status="delivered",
                attempts=1,
                next_attempt_at=_at("2026-09-20"),
                created_at=_at("2026-09-20"),
                delivered_at=_at("2026-09-20", 3),
            )
        )
        refused = office.did(
            "application.assess", "refused:residence-too-short", on_time.citizen_id_hash, "registry"
        )
        hub.audit.record(session, refused, _at("2026-07-01"))
        hub.audit.record(
            session, education.did("exchange.lookup", "found", "h", "入学"), _at("2026-10-06")
        )
        hub.audit.record(
            session, education.did("exchange.lookup", "not-found", "h", "入学"), _at("2026-10-06")
        )
        hub.audit.record(
            session,
            education.did("exchange.feed", "3", "permit_event:1..9", "x"),
            _at("2026-10-06"),
        )
    return {"on_time": on_time, "late": late}


@pytest.fixture
def chifeng(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> dict[str, str]:
    clock.set(datetime(2026, 12, 6, 2, tzinfo=UTC))
    new = register_client("public-security", ("registry:read",), jurisdictions=("chifeng",))
    return bearer(access_token(app_client, new))


def _one(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    [row] = [row for row in rows if all(row.get(k) == v for k, v in match.items())]
    return row


def test_each_figure_by_jurisdiction_and_china_month(
    app_client: TestClient, chifeng: dict[str, str], facts: dict[str, Permit], hub: Hub
) -> None:
    response = app_client.get(URL, headers=chifeng)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["jurisdictions"] == ["chifeng"]
    figures = body["figures"]
    assert figures["registrations"] == [{"jurisdiction": "chifeng", "month": "2026-01", "count": 2}]
    assert figures["applications_accepted"] == [
        {"jurisdiction": "chifeng", "month": "2026-07", "count": 2}
    ]
    assert figures["applications_refused"] == [
        {"jurisdiction": "chifeng", "month": "2026-07", "reason": "residence-too-short", "count": 1}
    ]
    assert _one(figures["permits_by_state"], state="valid")["count"] == 2
    assert figures["issuance"] == [
        {
            "jurisdiction": "chifeng",
            "month": "2026-08",
            "issued": 2,
            "late": 1,
            "on_time": 1,
            "on_time_share": 0.5,
        }
    ]
    assert figures["issued_late"] == [
        {
            "jurisdiction": "chifeng",
            "receipt_number": facts["late"].receipt_number,
            "issue_due_on": "2026-08-05",
            "issued_on": "2026-08-10",
        }
    ]
    assert figures["endorsements"] == [{"jurisdiction": "chifeng", "month": "2026-09", "count": 1}]
    assert figures["restorations"] == [{"jurisdiction": "chifeng", "month": "2026-09", "count": 1}]
    assert figures["suspensions"] == [{"jurisdiction": "chifeng", "month": "2026-09", "count": 1}]
    assert _one(figures["taps"], jurisdiction="chifeng", decision="grant")["count"] == 1
    assert _one(figures["taps"], jurisdiction="chifeng", decision="deny")["count"] == 1
    assert _one(figures["taps"], jurisdiction=None)["count"] == 1  # a card nobody was issued
    assert figures["pushes"] == [
        {"jurisdiction": "chifeng", "month": "2026-09", "department": "housing", "count": 1}
    ]
    assert _one(figures["exchange_reads"], channel="look-up")["count"] == 1
    assert _one(figures["exchange_reads"], channel="feed")["count"] == 3
    assert "nanning" not in response.text

    with Session(hub.engine) as session:
        [read] = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "statistics.read")
        ).all()
    assert read.purpose == "assessment 2026-01..2026-12"


def test_the_same_figures_as_one_csv_table(
    app_client: TestClient, chifeng: dict[str, str], facts: dict[str, Permit]
) -> None:
    response = app_client.get(URL, headers={**chifeng, "Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    issuance = [row for row in rows if row["figure"] == "issuance"]
    assert issuance[0]["on_time_share"] == "0.5" and issuance[0]["month"] == "2026-08"
    assert {row["figure"] for row in rows} >= {"registrations", "taps", "issued_late"}


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-12&to=2026-01",
        "from=2020-01&to=2026-12",
        "from=2026-13&to=2026-12",
        "from=2026-01",
    ],
)
def test_a_bad_period_is_a_422(app_client: TestClient, chifeng: dict[str, str], query: str) -> None:
    response = app_client.get(f"/registry/v1/statistics?{query}", headers=chifeng)
    assert_problem(response, 422, "validation-failed")


def test_only_the_jurisdictions_served(
    app_client: TestClient, chifeng: dict[str, str], register_client: RegisterClient
) -> None:
    assert_problem(
        app_client.get(URL + "&jurisdiction=nanning", headers=chifeng), 403, "no-jurisdiction"
    )
    nowhere = bearer(
        access_token(app_client, register_client("public-security", ("registry:read",)))
    )
    assert_problem(app_client.get(URL, headers=nowhere), 403, "no-jurisdiction")
