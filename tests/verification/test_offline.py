"""What a window agent needs off line, through the real app on both databases: the signed
status list, the issuing keys that verify it, the catalogue, and reporting decisions made
while the hub was unreachable."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlmodel import Session, select

from hub.clock import FixedClock
from hub.composition import Hub
from hub.permits import domain
from hub.verification.domain import STATUS_LIST_TYPE
from hub.verification.store import WindowDecision
from tests.verification.conftest import MakeCard, Window
from tests.verification.helpers import audit_entries, perform, permit_of, personalise

OFFLINE = "/verification/v1/offline-decisions"


def test_the_status_list_names_every_card_to_refuse_and_verifies_with_the_issuing_keys(
    app_client: TestClient, hub: Hub, clock: FixedClock, window: Window, make_card: MakeCard
) -> None:
    good, lost, renewed, suspended, cancelled = (make_card(n) for n in range(1, 6))
    perform(hub, lost.permit_id, domain.Action.REPLACE)
    replacement = personalise(hub, lost.permit_id)
    perform(hub, renewed.permit_id, domain.Action.RENEW)
    expires_on = permit_of(hub, suspended.permit_id).expires_on
    assert expires_on is not None
    perform(hub, suspended.permit_id, domain.Action.SUSPEND, today=expires_on + timedelta(days=1))
    perform(hub, cancelled.permit_id, domain.Action.CANCEL)

    answer = app_client.get("/verification/v1/status-list", headers=window("health"))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/jose"
    token = answer.text
    header = jws.extract_compact(token.encode()).headers()
    assert header["alg"] == "ES256" and header["typ"] == STATUS_LIST_TYPE
    keys = app_client.get("/verification/v1/issuing-keys")  # public: no token
    assert keys.status_code == 200
    assert keys.headers["content-type"] == "application/jwk-set+json"
    (jwk,) = [key for key in keys.json()["keys"] if key["kid"] == header["kid"]]
    payload = json.loads(jws.deserialize_compact(token, ECKey.import_key(jwk)).payload)

    assert payload["cards"] == {
        lost.serial: "card-reported-lost",
        renewed.serial: "card-replaced",
        suspended.serial: "permit-suspended",
        cancelled.serial: "card-cancelled",
    }
    assert good.serial not in payload["cards"] and replacement.serial not in payload["cards"]
    assert payload["issued_at"] == clock.now().isoformat()
    assert payload["next_update"] == (clock.now() + timedelta(hours=24)).isoformat()
    (entry,) = audit_entries(hub, "verification.status-list")
    assert (entry.outcome, entry.actor_department) == ("4", "health")

    forged = token.replace(token.split(".")[1], token.split(".")[1][::-1])
    with pytest.raises(JoseError):
        jws.deserialize_compact(forged, ECKey.import_key(jwk))


def test_the_catalogue_lists_each_service_with_what_it_requires(
    app_client: TestClient, hub: Hub, window: Window
) -> None:
    answer = app_client.get("/verification/v1/catalogue", headers=window("education"))
    assert answer.status_code == 200, answer.text
    services = {service["code"]: service for service in answer.json()["services"]}
    assert set(services) == set(hub.catalogue.services)
    settlement = services["household-registration"]
    assert settlement["department"] == "public-security"
    assert settlement["minimum_residence_months"] == 36
    assert settlement["jurisdictions"] == ["chifeng"]
    assert settlement["cite"] == "[CF §22]"
    assert services["compulsory-education"]["permit_states"] == ["valid"]
    assert services["compulsory-education"]["jurisdictions"] is None
    assert app_client.get("/verification/v1/catalogue").status_code == 401


def decision(serial: str, **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "decision_id": str(uuid.uuid4()),
        "card_serial": serial,
        "service_code": "compulsory-education",
        "department": "education",
        "decision": "grant",
        "reasons": [],
        "offline": True,
        "decided_at": "2026-10-13T10:02:45+08:00",
    }
    document.update(changes)
    return document


def stored_decisions(hub: Hub) -> list[WindowDecision]:
    with Session(hub.engine) as session:
        return list(session.exec(select(WindowDecision)).all())


def test_offline_decisions_are_stored_once_and_audited(
    app_client: TestClient, hub: Hub, window: Window, make_card: MakeCard
) -> None:
    card = make_card()
    education = window("education")
    report = [
        decision(card.serial),
        decision("CF26UNKNOWN00001", decision="deny", reasons=["card-reported-lost"]),
    ]
    first = app_client.post(OFFLINE, json={"decisions": report}, headers=education)
    assert first.status_code == 200, first.text
    assert [d["status"] for d in first.json()["decisions"]] == ["stored", "stored"]
    again = app_client.post(OFFLINE, json={"decisions": report}, headers=education)
    assert again.status_code == 200, again.text
    assert [d["status"] for d in again.json()["decisions"]] == ["repeat", "repeat"]
    # One more, reported twice in one report: stored once.
    extra = decision(
        card.serial, service_code="student-financial-aid", decided_at="2026-10-13t02:03:00z"
    )
    mixed = app_client.post(
        OFFLINE, json={"decisions": [report[0], extra, extra]}, headers=education
    )
    assert [d["status"] for d in mixed.json()["decisions"]] == ["repeat", "stored", "repeat"]

    rows = {row.id: row for row in stored_decisions(hub)}
    assert set(rows) == {report[0]["decision_id"], report[1]["decision_id"], extra["decision_id"]}
    assert all(row.offline for row in rows.values())
    assert rows[report[1]["decision_id"]].reasons == ["card-reported-lost"]
    entries = audit_entries(hub, "verification.offline")
    holder = permit_of(hub, card.permit_id).citizen_id_hash
    assert [(e.outcome, e.subject, e.purpose) for e in entries] == [
        ("grant", holder, "service:compulsory-education"),
        ("deny:card-reported-lost", None, "service:compulsory-education"),
        ("grant", holder, "service:student-financial-aid"),
    ]


def test_an_id_reported_with_other_content_or_by_another_window_refuses_the_report(
    app_client: TestClient, hub: Hub, window: Window, make_card: MakeCard
) -> None:
    card = make_card()
    education = window("education")
    first = decision(card.serial)
    assert app_client.post(OFFLINE, json={"decisions": [first]}, headers=education).is_success
    changed = {**first, "decision": "deny", "reasons": ["permit-suspended"]}
    fresh = decision(card.serial)
    for headers, report in [
        (education, [fresh, changed]),
        (window("education"), [first]),
        (education, [fresh, {**fresh, "decided_at": "2026-10-13T10:03:00+08:00"}]),
    ]:
        refused = app_client.post(OFFLINE, json={"decisions": report}, headers=headers)
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"] == "/problems/offline-decision-conflict"
        assert refused.json()["errors"][0]["pointer"].endswith("/decision_id")
    assert [row.id for row in stored_decisions(hub)] == [first["decision_id"]]


def test_an_offline_report_is_validated_against_tap_decision(
    app_client: TestClient, hub: Hub, window: Window
) -> None:
    serial = "CF26A1B2C3D4E5F6"
    missing = decision(serial)
    del missing["decided_at"]
    report = [
        decision(serial),
        missing,
        decision(serial, offline=False),
        decision(serial, service_code="no-such-service"),
        decision(serial, department="housing"),
        decision(serial, decision_id="not-a-uuid", card_serial="X" * 40),
    ]
    refused = app_client.post(OFFLINE, json={"decisions": report}, headers=window("education"))
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["subject"] == "tap-decision"
    assert [error["pointer"] for error in problem["errors"]] == [
        "/decisions/1/decided_at",
        "/decisions/2/offline",
        "/decisions/3/service_code",
        "/decisions/4/department",
        "/decisions/5/decision_id",
    ]
    assert stored_decisions(hub) == []
    too_long = app_client.post(
        OFFLINE,
        json={"decisions": [decision(serial, card_serial="X" * 40)]},
        headers=window("education"),
    )
    assert [e["pointer"] for e in too_long.json()["errors"]] == ["/decisions/0/card_serial"]
    empty = app_client.post(OFFLINE, json={"decisions": []}, headers=window("education"))
    assert empty.status_code == 422


def test_bad_input_is_a_problem_never_a_500(app_client: TestClient, window: Window) -> None:
    education = window("education")
    for path, body in [
        (OFFLINE, {"decisions": [1, "x", None]}),
        (OFFLINE, {"decisions": [{}]}),
        (OFFLINE, {"decisions": [{"decision_id": ["a"], "reasons": "x", "decided_at": 5}]}),
        (OFFLINE, [1, 2]),
        ("/verification/v1/taps", {"record": {"a": 1}, "card_signature": None}),
        ("/verification/v1/taps", "plain text"),
    ]:
        answer = app_client.post(path, json=body, headers=education)
        assert 400 <= answer.status_code < 500, (path, body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    raw = app_client.post(
        OFFLINE, content=b"{not json", headers={**education, "Content-Type": "application/json"}
    )
    assert raw.status_code == 400
