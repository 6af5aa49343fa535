"""The registry's lifecycle routes through the real app: ETag/If-Match, 409s citing the seed."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient

from hub.clock import FixedClock
from hub.composition import Hub
from hub.db import unit_of_work
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient
from tests.factories import add_registration, new_permit


@pytest.fixture
def permit_id(hub: Hub, clock: FixedClock) -> str:
    clock.set(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))  # 10:00 in China
    with unit_of_work(hub.engine) as session:
        registration = add_registration(session, "b" * 64)
        permit = new_permit(registration, "b" * 64, "accepted")
        session.add(permit)
    return permit.id


@pytest.fixture
def office(
    app_client: TestClient, register_client: RegisterClient, permit_id: str
) -> dict[str, str]:
    """After `permit_id`, which sets the clock the token is issued at."""
    new = register_client("public-security", ("registry:read", "registry:write"))
    return bearer(access_token(app_client, new))


def test_issue_with_if_match(
    app_client: TestClient, office: dict[str, str], permit_id: str
) -> None:
    read = app_client.get(f"/registry/v1/permits/{permit_id}", headers=office)
    assert read.status_code == 200 and read.headers["etag"] == '"1"'
    assert read.json()["allowed_actions"] == ["issue", "cancel"]

    issued = app_client.post(
        f"/registry/v1/permits/{permit_id}/issue", headers={**office, "If-Match": '"1"'}
    )
    assert issued.status_code == 200, issued.text
    assert issued.headers["etag"] == '"2"'
    body = issued.json()
    assert body["state"] == "valid"
    assert (body["valid_from"], body["expires_on"]) == ("2026-11-25", "2027-11-25")
    assert body["card_serial"]

    events = app_client.get(f"/registry/v1/permits/{permit_id}/events", headers=office).json()
    assert [(e["type"], e["state_after"]) for e in events] == [("issue", "valid")]
    assert events[0]["payload"]["new_card"]["fee"] == "free"


def test_if_match_is_required_and_checked(
    app_client: TestClient, office: dict[str, str], permit_id: str
) -> None:
    url = f"/registry/v1/permits/{permit_id}/issue"
    missing = app_client.post(url, headers=office)
    assert missing.status_code == 428
    assert missing.json()["type"] == "/problems/precondition-required"
    stale = app_client.post(url, headers={**office, "If-Match": '"7"'})
    assert stale.status_code == 412
    assert stale.json()["type"] == "/problems/stale-write"
    assert stale.json()["current_version"] == 1


def test_refusals_name_the_rule_and_cite_the_seed(
    app_client: TestClient, office: dict[str, str], permit_id: str
) -> None:
    base = f"/registry/v1/permits/{permit_id}"
    illegal = app_client.post(f"{base}/endorse", headers={**office, "If-Match": '"1"'})
    assert illegal.status_code == 409
    assert illegal.json()["type"] == "/problems/illegal-transition"

    app_client.post(f"{base}/issue", headers={**office, "If-Match": '"1"'})
    early = app_client.post(
        f"{base}/endorse", headers={**office, "If-Match": '"2"', "Accept-Language": "zh-CN"}
    )
    assert early.status_code == 409
    problem = early.json()
    assert problem["type"] == "/problems/endorsement-window-not-open"
    assert problem["cite"] == "[CF §20]"
    assert problem["title"] == "签注期尚未开始"
    assert "2027-10-26" in problem["detail"]  # 30 days before 2027-11-25


def test_endorsement_in_the_window_extends_by_a_year(
    app_client: TestClient, office: dict[str, str], permit_id: str, clock: FixedClock
) -> None:
    base = f"/registry/v1/permits/{permit_id}"
    app_client.post(f"{base}/issue", headers={**office, "If-Match": '"1"'})
    clock.set(datetime(2027, 10, 26, 2, 0, tzinfo=UTC))  # office's token has expired by now
    response = app_client.post(f"{base}/endorse", headers={**_fresh(app_client), "If-Match": '"2"'})
    assert response.status_code == 200, response.text
    assert response.json()["expires_on"] == date(2028, 11, 25).isoformat()


def _fresh(app_client: TestClient) -> dict[str, str]:
    hub: Hub = app_client.app.state.hub  # type: ignore[attr-defined]
    new = hub.add_client(department="public-security", scopes=["registry:read", "registry:write"])
    return bearer(access_token(app_client, new))


def test_cancellation_with_a_reason(
    app_client: TestClient, office: dict[str, str], permit_id: str
) -> None:
    response = app_client.post(
        f"/registry/v1/permits/{permit_id}/cancel",
        headers={**office, "If-Match": '"1"'},
        json={"reason": "false-materials"},
    )
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["cancel_reason"]) == (
        "cancelled",
        "false-materials",
    )


def test_scopes_and_unknown_permits(
    app_client: TestClient, register_client: RegisterClient, permit_id: str
) -> None:
    reader = bearer(access_token(app_client, register_client()))  # an office's reader
    refused = app_client.post(
        f"/registry/v1/permits/{permit_id}/issue", headers={**reader, "If-Match": '"1"'}
    )
    assert refused.status_code == 403
    missing = app_client.get("/registry/v1/permits/nope", headers=reader)
    assert missing.status_code == 404 and missing.json()["type"] == "/problems/permit-not-found"
    # Suspension is the expiry job's, not an office's: there is no such route.
    bad_action = app_client.post(
        f"/registry/v1/permits/{permit_id}/suspend", headers={**reader, "If-Match": '"1"'}
    )
    assert bad_action.status_code == 404 and bad_action.json()["type"] == "/problems/not-found"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/events", "GET"),
        ("POST", "/residence", "GET"),
        ("DELETE", "", "GET"),
        ("GET", "/issue", "POST"),
        ("PUT", "/cancel", "POST"),
        ("GET", "/address-change", "POST"),
    ],
)
def test_other_methods_on_a_permit_are_405_with_a_complete_allow(
    app_client: TestClient,
    office: dict[str, str],
    permit_id: str,
    method: str,
    path: str,
    allow: str,
) -> None:
    answer = app_client.request(method, f"/registry/v1/permits/{permit_id}{path}", headers=office)
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == allow
    assert answer.json()["type"] == "/problems/method-not-allowed"
