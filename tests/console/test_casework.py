"""Registering a residence and taking an application in the console, on forms built from the
jurisdiction's rules: a refused form keeps what was typed and says what to change; a missing
material is named on the page, as the API names it; an accepted application opens the
holder's page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.clock import FixedClock
from hub.composition import Hub
from tests.console.helpers import clerk, hidden_fields
from tests.factories import ADULT, registration_body

REGISTER = "/console/office/register"


@pytest.fixture
def client(app_client: TestClient, hub: Hub, clock: FixedClock) -> TestClient:
    clock.set(datetime(2026, 10, 13, 2, tzinfo=UTC))
    return clerk(app_client, hub)


def _form(client: TestClient, **changes: str) -> dict[str, str]:
    page = client.get(REGISTER)
    assert page.status_code == 200, page.text
    body = registration_body(temporary_permit_since="2025-06-02", **changes)
    return {"csrf": hidden_fields(page)["csrf"], **{k: str(v) for k, v in body.items()}}


def _apply_rented(client: TestClient, apply_url: str, csrf: str) -> Any:
    """The application form sent for a rented home with every material ticked (the boxes
    repeat `materials`, as a browser sends them)."""
    return client.post(
        apply_url,
        content="&".join(
            [f"csrf={csrf}", "form=residence%3Arented"]
            + [f"materials={m}" for m in ("id-card", "photo", "lease-contract")]
        ),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def test_register_then_apply_with_the_materials_named(client: TestClient, hub: Hub) -> None:
    registered = client.post(REGISTER, data=_form(client))
    assert registered.status_code == 303, registered.text
    apply_url = registered.headers["location"]
    page = client.get(apply_url)
    assert page.status_code == 200, page.text
    assert 'value="residence:rented"' in page.text
    assert 'data-materials="id-card photo lease-contract"' in page.text
    assert "/console/static/apply.js" in page.text
    csrf = hidden_fields(page)["csrf"]

    short = client.post(
        apply_url, data={"csrf": csrf, "form": "residence:rented", "materials": "id-card"}
    )
    assert short.status_code == 422 and 'id="refusal"' in short.text
    assert "photo" in short.text.lower() or "相片" in short.text
    with Session(hub.engine) as session:
        [refused] = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "application.assess")
        ).all()
    assert refused.outcome == "refused:incomplete"

    accepted = _apply_rented(client, apply_url, csrf)
    assert accepted.status_code == 303, accepted.text
    holder = client.get(accepted.headers["location"])
    assert holder.status_code == 200 and "accepted" in holder.text
    assert 'value="issue"' in holder.text


def test_a_refused_registration_keeps_what_was_typed(client: TestClient) -> None:
    wrong = ADULT[:-1] + ("1" if ADULT[-1] != "1" else "2")
    refused = client.post(REGISTER, data=_form(client, citizen_id=wrong, name="李雷"))
    assert refused.status_code == 422 and 'id="errors"' in refused.text
    assert 'value="李雷"' in refused.text  # kept for the clerk to correct
    assert wrong not in refused.text.replace(f'value="{wrong}"', "")  # only in its own field

    elsewhere = client.post(REGISTER, data=_form(client, current_region="450103"))
    assert elsewhere.status_code == 422
    assert "outside the jurisdictions you serve" in elsewhere.text or "辖区" in elsewhere.text

    missing = client.post(REGISTER, data={**_form(client), "contact": ""})
    assert missing.status_code == 422 and "contact" in missing.text


def _issued(client: TestClient) -> tuple[str, str]:
    """A permit registered, accepted and issued through the forms; its page and CSRF token."""
    apply_url = client.post(REGISTER, data=_form(client)).headers["location"]
    csrf = hidden_fields(client.get(apply_url))["csrf"]
    accepted = _apply_rented(client, apply_url, csrf)
    page = accepted.headers["location"]
    permit_id = page.rsplit("/", 1)[1]
    issued = client.post(
        f"/console/office/permits/{permit_id}/act",
        data={"csrf": csrf, "action": "issue", "version": "1"},
    )
    assert issued.status_code == 303, issued.text
    return page, csrf


def test_a_move_and_a_cancellation_from_the_holders_page(client: TestClient) -> None:
    page, csrf = _issued(client)
    holder = client.get(page)
    assert 'id="move"' in holder.text and 'id="cancel"' in holder.text
    assert 'value="conditions-no-longer-met"' in holder.text  # Chifeng's reasons [CF §23]
    move = page + "/address-change"
    future = client.post(
        move,
        data={
            "csrf": csrf,
            "version": "2",
            "new_address": "松山区某小区5号楼",
            "new_region": "150404",
            "moved_on": "2026-12-01",
        },
    )
    assert future.status_code == 422
    moved = client.post(
        move,
        data={
            "csrf": csrf,
            "version": "2",
            "new_address": "松山区某小区5号楼",
            "new_region": "150404",
            "moved_on": "2026-10-12",
        },
    )
    assert moved.status_code == 303, moved.text
    assert "change-address" in client.get(page).text
    stale = client.post(page + "/cancel", data={"csrf": csrf, "version": "2", "reason": "other"})
    assert stale.status_code == 412
    bad = client.post(page + "/cancel", data={"csrf": csrf, "version": "3", "reason": "whim"})
    assert bad.status_code == 422
    cancelled = client.post(
        page + "/cancel", data={"csrf": csrf, "version": "3", "reason": "conditions-no-longer-met"}
    )
    assert cancelled.status_code == 303, cancelled.text
    after = client.get(page).text
    assert "cancelled" in after and 'id="cancel"' not in after
