"""Points indicators (GET /registry/v1/permits/{id}/points) from registry facts and proofs on
file, with their evidence; a score and a ranking only with a published table in the
jurisdiction's file (a test table here: the seeds publish none, and none is invented)."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.clock import FixedClock
from hub.composition import Hub
from hub.db import unit_of_work
from hub.permits.store import PermitEvent, Proof
from hub.settings import Settings
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient
from tests.factories import (
    SHIPPED_JURISDICTIONS,
    STORED_AT,
    add_registration,
    assert_problem,
    new_permit,
)

TODAY = date(2026, 10, 13)
TABLE = """
[[sources]]
tag = "NBJF"
title = { zh = "宁波市流动人口积分管理办法（测试）", en = "Ningbo points (test)" }

[points.table]
cite = "[NBJF] 第八条"
weights = [
  { indicator = "residence-years", per_year = 3, max_points = 30 },
  { indicator = "employment-years", per_year = 2 },
  { indicator = "social-insurance-years", per_year = 5, max_points = 10 },
]
services = [{ code = "school-places", name = { zh = "义务教育学位", en = "school places" } }]
"""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    places = tmp_path / "jurisdictions"
    shutil.copytree(SHIPPED_JURISDICTIONS, places)
    with (places / "ningbo.toml").open("a", encoding="utf-8") as file:
        file.write(TABLE)
    return settings.model_copy(update={"jurisdictions_dir": places})


@pytest.fixture
def office(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> dict[str, str]:
    clock.set(datetime(2026, 10, 13, 2, tzinfo=UTC))
    new = register_client(
        "public-security", ("registry:read",), jurisdictions=("ningbo", "nanning")
    )
    return bearer(access_token(app_client, new))


def _holder(hub: Hub, place: str, since: date, proofs: list[dict[str, Any]] = []) -> str:  # noqa: B006
    """A valid permit in `place` whose residence counts from `since`, with its proofs."""
    holder = uuid.uuid4().hex * 2
    with unit_of_work(hub.engine) as session:
        permit = new_permit(add_registration(session, holder), holder, "valid")
        permit.jurisdiction, permit.residence_start = place, since
        session.add(permit)
        session.flush()
        session.add(
            PermitEvent(
                permit_id=permit.id,
                type="accept",
                payload={"residence_start": since.isoformat()},
                state_after="valid",
                actor_client_id="test",
                at=STORED_AT,
            )
        )
        for n, proof in enumerate(proofs):
            session.add(
                Proof(
                    id=str(uuid.uuid4()),
                    citizen_id_hash=holder,
                    source_proof_id=f"SECRET-NUMBER-{holder[:8]}-{n}",
                    recorded_by="test",
                    recorded_at=STORED_AT,
                    **proof,
                )
            )
    return permit.id


def _employment(start: date, end: date | None) -> dict[str, Any]:
    return {
        "kind": "employment",
        "source_department": "hr-social-security",
        "valid_from": start,
        "valid_to": end,
    }


def _insurance(months: int, back_paid: int = 0) -> dict[str, Any]:
    return {
        "kind": "social-insurance",
        "source_department": "hr-social-security",
        "valid_from": date(2026, 1, 1),
        "details": {"months": months, "back_paid_months": back_paid},
    }


def test_indicators_with_evidence_and_a_score_by_the_published_table(
    app_client: TestClient, office: dict[str, str], hub: Hub
) -> None:
    permit_id = _holder(
        hub,
        "ningbo",
        date(2021, 9, 1),
        [
            _employment(date(2020, 1, 1), date(2023, 1, 1)),
            _employment(date(2022, 1, 1), None),  # overlaps: counted once
            _insurance(30, back_paid=6),
            _insurance(20),  # an older statement: the latest counts, not the sum
        ],
    )
    response = app_client.get(f"/registry/v1/permits/{permit_id}/points", headers=office)
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["on"] == "2026-10-13" and view["scheme_cite"] == "[NB] 三(三)"
    by = {item["indicator"]: item for item in view["indicators"]}
    assert (by["residence-years"]["months"], by["residence-years"]["whole_years"]) == (61, 5)
    assert by["residence-years"]["evidence"][0]["source"] == "registration"
    assert (by["employment-years"]["months"], by["employment-years"]["whole_years"]) == (81, 6)
    assert len(by["employment-years"]["evidence"]) == 2
    assert (
        by["social-insurance-years"]["months"],
        by["social-insurance-years"]["whole_years"],
    ) == (
        24,
        2,
    )
    assert view["table_published"] is True and view["table"]["cite"] == "[NBJF] 第八条"
    assert view["score"] == {
        "total": 15 + 12 + 10,
        "by_indicator": {
            "residence-years": 15,
            "employment-years": 12,
            "social-insurance-years": 10,  # capped
        },
    }
    assert view["note"] is None
    assert "SECRET-NUMBER" not in response.text

    earlier = app_client.get(
        f"/registry/v1/permits/{permit_id}/points?on=2024-09-01", headers=office
    ).json()
    assert {i["indicator"]: i["whole_years"] for i in earlier["indicators"]}["residence-years"] == 3

    with Session(hub.engine) as session:
        reads = session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.action) == "permit.points.read")
            .order_by(col(AuditEntry.seq))
        ).all()
    assert len(reads) == 2 and reads[0].purpose == "registry"


def test_without_a_published_table_indicators_only_and_it_says_so(
    app_client: TestClient, office: dict[str, str], hub: Hub
) -> None:
    permit_id = _holder(hub, "nanning", date(2025, 10, 13))
    view = app_client.get(f"/registry/v1/permits/{permit_id}/points", headers=office).json()
    assert [item["indicator"] for item in view["indicators"]] == [
        "residence-years",
        "employment-years",
        "social-insurance-years",
    ]
    assert view["indicators"][0]["whole_years"] == 1
    assert (view["table_published"], view["table"], view["score"]) == (False, None, None)
    assert "not published" in view["note"]["en"] and view["note"]["zh"]


def test_no_points_scheme_is_a_404(
    app_client: TestClient, office: dict[str, str], hub: Hub
) -> None:
    permit_id = _holder(hub, "chifeng", date(2025, 1, 1))
    response = app_client.get(f"/registry/v1/permits/{permit_id}/points", headers=office)
    assert_problem(response, 404, "points-unavailable")


def test_a_ranking_by_score_ties_by_residence_only_where_the_office_serves(
    app_client: TestClient,
    office: dict[str, str],
    hub: Hub,
    register_client: RegisterClient,
) -> None:
    longest = _holder(hub, "ningbo", date(2019, 3, 1))  # 7 years: 21 points
    tied_long = _holder(hub, "ningbo", date(2020, 1, 1), [_insurance(5)])  # 6y 18 + 0
    tied_short = _holder(hub, "ningbo", date(2020, 6, 1), [_insurance(5)])  # 6y 18, shorter
    insured = _holder(hub, "ningbo", date(2023, 1, 1), [_insurance(48)])  # 3y 9 + 10 = 19
    _holder(hub, "nanning", date(2010, 1, 1))  # another place

    url = "/registry/v1/points-rankings/ningbo/school-places"
    response = app_client.get(url, headers=office)
    assert response.status_code == 200, response.text
    ranked = response.json()
    assert [entry["permit_id"] for entry in ranked] == [longest, insured, tied_long, tied_short]
    assert [entry["score"] for entry in ranked] == [21, 19, 18, 18]
    assert [entry["rank"] for entry in ranked] == [1, 2, 3, 4]
    assert len(app_client.get(url + "?limit=2", headers=office).json()) == 2

    assert_problem(
        app_client.get("/registry/v1/points-rankings/ningbo/housing", headers=office),
        404,
        "points-unavailable",
    )
    assert_problem(
        app_client.get("/registry/v1/points-rankings/nanning/school-places", headers=office),
        404,
        "points-unavailable",
    )
    chifeng_only = bearer(
        access_token(
            app_client,
            register_client("public-security", ("registry:read",), jurisdictions=("chifeng",)),
        )
    )
    assert_problem(app_client.get(url, headers=chifeng_only), 404, "points-unavailable")
