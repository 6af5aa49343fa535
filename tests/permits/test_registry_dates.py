"""Registry dates: registered residence counts from an on-time declaration's arrival or from a
late declaration's day [CF §2][CF §10], and a declaration deadline that runs into a year
without a holiday schedule is provisional until the schedule is added (on both databases)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub import jobs
from hub.audit import AuditEntry
from hub.clock import Deadline, FixedClock
from hub.composition import Hub, build_hub
from hub.permits import domain
from hub.permits.store import Outbox, Permit, PermitEvent, Registration
from hub.settings import Settings
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient
from tests.factories import registration_body as registration_body

RENTED = {
    "condition": "residence",
    "form": "rented",
    "materials": ["id-card", "photo", "lease-contract"],
}


def _office(
    clock: FixedClock, app_client: TestClient, register_client: RegisterClient, when: datetime
) -> dict[str, str]:
    """An acceptance office's token at `when` (tokens live ten minutes)."""
    clock.set(when)
    new = register_client("public-security", ("registry:read", "registry:write"))
    return bearer(access_token(app_client, new))


def _register(app_client: TestClient, office: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = app_client.post(
        "/registry/v1/registrations", headers=office, json=registration_body(**changes)
    )
    assert response.status_code == 201, response.text
    view: dict[str, Any] = response.json()
    return view


def _accept(app_client: TestClient, office: dict[str, str], registration_id: str) -> Any:
    response = app_client.post(
        "/registry/v1/applications",
        headers=office,
        json={"registration_id": registration_id, **RENTED},
    )
    assert response.status_code == 201, response.text
    return response.json()["permit"]


# --- where residence counts from -----------------------------------------------------------------

ARRIVED, DECLARED = date(2026, 3, 2), date(2026, 3, 20)
ON_TIME = Deadline(date(2026, 3, 25), provisional=False)
MISSED = Deadline(date(2026, 3, 11), provisional=False)


@pytest.mark.parametrize(
    ("deadline", "required", "imported", "start", "late"),
    [
        (ON_TIME, True, None, ARRIVED, False),  # declared in time: from arrival
        (MISSED, True, None, DECLARED, True),  # late: from the declaration [CF §2]
        (None, True, None, DECLARED, False),  # no deadline to meet: registered residence only
        (None, False, None, ARRIVED, False),  # residence counted without registration [NAT §2]
        (MISSED, True, date(2019, 5, 1), date(2019, 5, 1), True),  # 暂住证 years [CF §32]
    ],
)
def test_registered_residence_starts_where_the_rules_say(
    deadline: Deadline | None, required: bool, imported: date | None, start: date, late: bool
) -> None:
    declared = domain.declaration(
        arrived_on=ARRIVED,
        declared_on=DECLARED,
        deadline=deadline,
        registration_required=required,
        temporary_permit_since=imported,
    )
    assert (declared.residence_start, declared.late) == (start, late)
    assert declared.due == (deadline.due if deadline else None)
    assert declared.provisional is False


def test_a_claimed_arrival_years_back_cannot_settle_on_the_day_of_issue(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> None:
    """The issue's case: arrival claimed in 2022, registered in 2025, settlement [CF §22]
    (three years of continuous residence) asked for the day the permit is issued."""
    office = _office(clock, app_client, register_client, datetime(2025, 3, 3, 2, tzinfo=UTC))
    registration = _register(app_client, office, arrived_on="2022-03-01", current_region="150429")
    assert registration["declared_late"] is True
    assert registration["residence_start"] == "2025-03-03"

    office = _office(clock, app_client, register_client, datetime(2025, 10, 13, 2, tzinfo=UTC))
    permit = _accept(app_client, office, registration["id"])
    assert permit["residence_start"] == "2025-03-03"
    base = f"/registry/v1/permits/{permit['id']}"
    issued = app_client.post(f"{base}/issue", headers={**office, "If-Match": '"1"'})
    assert issued.status_code == 200, issued.text

    settle = app_client.post(f"{base}/settle", headers={**office, "If-Match": '"2"'})
    assert settle.status_code == 409, settle.text
    assert settle.json()["type"] == "/problems/settlement-residence-too-short"
    residence = app_client.get(f"{base}/residence", headers=office).json()
    assert (residence["start"], residence["whole_years"]) == ("2025-03-03", 0)


def test_an_arrival_is_registered_residence_only_once_declared_where_no_deadline_is_set(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> None:
    """Zhangzhou counts residence "办理暂住登记半年以上" [ZZ] 二(二) and sets no deadline;
    Nanning counts residence without registration [NAT §2]."""
    office = _office(clock, app_client, register_client, datetime(2026, 10, 13, 2, tzinfo=UTC))
    zhangzhou = _register(app_client, office, arrived_on="2024-05-06", current_region="350602")
    assert (zhangzhou["jurisdiction"], zhangzhou["residence_start"]) == ("zhangzhou", "2026-10-13")
    assert (zhangzhou["declaration_due_on"], zhangzhou["declared_late"]) == (None, False)
    nanning = _register(app_client, office, arrived_on="2024-05-06", current_region="450102")
    assert (nanning["jurisdiction"], nanning["residence_start"]) == ("nanning", "2024-05-06")


# --- provisional deadlines ------------------------------------------------------------------------


def test_a_deadline_into_an_unknown_year_is_provisional_until_its_schedule_is_added(
    app_client: TestClient,
    register_client: RegisterClient,
    clock: FixedClock,
    hub: Hub,
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
) -> None:
    """Arrived Thursday 24 December 2026; 7 working days [CF §10] run into 2027, which
    chinese-calendar does not know. On Monday-Friday they end on 4 January, so a declaration
    on the 5th looks late; the published schedule makes 1 January a holiday, so it was not."""
    office = _office(clock, app_client, register_client, datetime(2027, 1, 5, 2, tzinfo=UTC))
    registration = _register(app_client, office, arrived_on="2026-12-24")
    assert registration["declaration_provisional"] is True
    assert (registration["declaration_due_on"], registration["declared_late"]) == (
        "2027-01-04",
        True,
    )
    assert registration["residence_start"] == "2027-01-05"
    url = f"/registry/v1/registrations/{registration['id']}"
    assert app_client.get(url, headers=office).json() == registration

    office = _office(clock, app_client, register_client, datetime(2027, 8, 10, 2, tzinfo=UTC))
    permit = _accept(app_client, office, registration["id"])
    assert permit["residence_start"] == "2027-01-05"
    assert jobs.settle_declarations(hub, date(2027, 8, 11)) == 0  # still no 2027 schedule

    schedules = tmp_path / "holidays"
    schedules.mkdir()
    (schedules / "2027.toml").write_text("holidays = [2027-01-01]\nworkdays = []\n")
    restarted = build_hub(
        settings.model_copy(update={"holiday_schedules_dir": schedules}), engine=engine, clock=clock
    )
    assert jobs.run_daily_jobs(restarted, date(2027, 8, 11))["declaration-deadlines"] == 1
    assert jobs.settle_declarations(restarted, date(2027, 8, 12)) == 0

    settled = app_client.get(url, headers=office).json()
    assert (settled["declaration_due_on"], settled["declared_late"]) == ("2027-01-05", False)
    assert settled["declaration_provisional"] is False
    assert settled["residence_start"] == "2026-12-24"  # declared on time: from arrival
    read = app_client.get(f"/registry/v1/permits/{permit['id']}", headers=office)
    assert (read.json()["residence_start"], read.headers["etag"]) == ("2026-12-24", '"2"')
    events = app_client.get(f"/registry/v1/permits/{permit['id']}/events", headers=office).json()
    assert events[-1]["type"] == "residence-corrected"
    assert events[-1]["payload"] == {
        "on": "2027-08-11",
        "residence_start": "2026-12-24",
        "was": "2027-01-05",
        "declaration_due_on": "2027-01-05",
        "declared_late": False,
    }
    for day in ("2027-01-01", "2027-08-11"):  # before and after the provisional start
        residence = app_client.get(
            f"/registry/v1/permits/{permit['id']}/residence", params={"on": day}, headers=office
        ).json()
        assert (residence["resident"], residence["start"]) == (True, "2026-12-24")
    with Session(engine) as session:
        actions = [entry.action for entry in session.exec(select(AuditEntry))]
        assert {"registration.settle", "permit.residence-corrected"} <= set(actions)
        corrected = session.exec(
            select(PermitEvent.seq).where(col(PermitEvent.type) == "residence-corrected")
        ).one()
        assert session.get(Outbox, corrected) is not None  # the departments learn of it


def test_settling_leaves_a_permit_whose_residence_restarted_alone(
    app_client: TestClient,
    register_client: RegisterClient,
    clock: FixedClock,
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
) -> None:
    """A permit whose residence no longer starts where its registration's did (a restart, an
    earlier registration on file) keeps its start; only the registration is settled."""
    office = _office(clock, app_client, register_client, datetime(2027, 1, 5, 2, tzinfo=UTC))
    registration = _register(app_client, office, arrived_on="2026-12-24")
    office = _office(clock, app_client, register_client, datetime(2027, 8, 10, 2, tzinfo=UTC))
    permit_id = _accept(app_client, office, registration["id"])["id"]
    with Session(engine) as session:
        permit = session.get(Permit, permit_id)
        assert permit is not None
        permit.residence_start = date(2027, 6, 1)
        session.add(permit)
        session.commit()

    schedules = tmp_path / "holidays"
    schedules.mkdir()
    (schedules / "2027.toml").write_text("holidays = [2027-01-01]\n")
    restarted = build_hub(
        settings.model_copy(update={"holiday_schedules_dir": schedules}), engine=engine, clock=clock
    )
    assert jobs.settle_declarations(restarted, date(2027, 8, 11)) == 1
    with Session(engine) as session:
        stored = session.get(Registration, registration["id"])
        permit = session.get(Permit, permit_id)
        assert stored is not None and permit is not None
        assert (stored.residence_start, stored.declaration_provisional) == (
            date(2026, 12, 24),
            False,
        )
        assert (permit.residence_start, permit.version) == (date(2027, 6, 1), 1)
