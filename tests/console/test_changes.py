"""Governance moves a version's state and changes a subject's mode from a page that first says
what the change reaches: the agreements and departments held to the subject, the version
exchanged before and after, and what stops the change."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditEntry
from hub.composition import Hub
from hub.db import unit_of_work
from hub.schemas import domain, service
from hub.schemas.compat import CompatibilityMode
from tests.conftest import seed_shipped_agreements
from tests.console.helpers import hidden_fields, officer

PAGE = "/console/governance/subjects"
OFFICER = Actor("staff:wang.fang", "public-security")


def _add(hub: Hub, subject: str, definition: Any, state: str = "DRAFT") -> None:
    with unit_of_work(hub.engine) as session:
        service.register(
            session,
            hub.schemas,
            hub.audit,
            subject,
            definition,
            state=domain.VersionState(state),
            actor=OFFICER,
            now=hub.clock.now(),
        )


def _mode(hub: Hub, subject: str, mode: CompatibilityMode) -> None:
    with unit_of_work(hub.engine) as session:
        service.set_compatibility(
            session, hub.audit, subject, mode, actor=OFFICER, now=hub.clock.now()
        )


def _state(hub: Hub, subject: str, version: int) -> str:
    with Session(hub.engine) as session:
        return str(service.version_of(session, subject, version).state)


def test_a_version_moves_after_its_page_names_the_agreements_it_reaches(
    app_client: TestClient, hub: Hub
) -> None:
    seed_shipped_agreements(hub)
    with Session(hub.engine) as session:
        first = service.version_of(session, "holder-record", 1).definition
    narrow = copy.deepcopy(first)
    narrow["properties"]["holder"]["required"] = ["contact"]
    wide = copy.deepcopy(first)
    wide["properties"]["holder"]["properties"]["note"] = {"type": "string"}
    _mode(hub, "holder-record", CompatibilityMode.NONE)
    _add(hub, "holder-record", narrow)
    _add(hub, "holder-record", wide)
    client = officer(app_client, hub)

    subject = client.get(f"{PAGE}/holder-record?lang=en")
    assert f'href="{PAGE}/holder-record/state?version=3&amp;to=ACTIVE"' in subject.text

    stopped = client.get(f"{PAGE}/holder-record/state?version=2&to=ACTIVE&lang=en")
    assert stopped.status_code == 200, stopped.text
    assert "Cannot be made" in stopped.text and " disabled>" in stopped.text
    assert "education" in stopped.text and "<code>/holder/contact</code>" in stopped.text
    refused = client.post(
        f"{PAGE}/holder-record/state",
        data={**hidden_fields(stopped), "lang": "en"},
    )
    assert refused.status_code == 409 and "text/html" in refused.headers["content-type"]
    assert _state(hub, "holder-record", 2) == "DRAFT"

    asked = client.get(f"{PAGE}/holder-record/state?version=3&to=ACTIVE&lang=en")
    assert "Make holder-record version 3 active?" in asked.text
    assert "Cannot be made" not in asked.text and " disabled>" not in asked.text
    held = asked.text.split("Departments held to this subject: <strong>")[1].split("<")[0]
    assert "education" in held.split(", ") and "housing" in held.split(", ")
    assert "<strong>v1</strong> → <strong>v3</strong>" in " ".join(asked.text.split())
    moved = client.post(f"{PAGE}/holder-record/state", data=hidden_fields(asked))
    assert moved.status_code == 303, moved.text
    assert moved.headers["location"] == f"{PAGE}/holder-record?to=3"
    assert _state(hub, "holder-record", 3) == "ACTIVE"
    with Session(hub.engine) as session:
        entry = session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "schema.state")  # type: ignore[arg-type]
            .order_by(col(AuditEntry.seq))
        ).all()[-1]
    assert (entry.actor_client_id, entry.outcome) == ("staff:wang.fang", "ACTIVE")

    backwards = client.get(f"{PAGE}/holder-record/state?version=3&to=DRAFT")
    assert backwards.status_code == 409 and "text/html" in backwards.headers["content-type"]
    csrf = hidden_fields(asked)["csrf"]
    bad_forms = (
        {"version": "3", "to": "BOGUS"},
        {"version": "x", "to": "RETIRED"},
        {"version": "9" * 5000, "to": "RETIRED"},  # never parsed: Python refuses such an int
        {},
    )
    for bad in bad_forms:
        answer = client.post(f"{PAGE}/holder-record/state", data={"csrf": csrf, **bad})
        assert answer.status_code == 422, (bad, answer.text)
    unknown = client.get(f"{PAGE}/holder-record/state?version=3&to=BOGUS")
    assert unknown.status_code == 422
    forged = client.post(f"{PAGE}/holder-record/state", data={"version": "3", "to": "RETIRED"})
    assert forged.status_code == 403 and _state(hub, "holder-record", 3) == "ACTIVE"


def test_retiring_the_only_version_in_use_says_exchange_stops(
    app_client: TestClient, hub: Hub
) -> None:
    _add(hub, "person", {"type": "object"}, state="ACTIVE")
    client = officer(app_client, hub)
    asked = client.get(f"{PAGE}/person/state?version=1&to=RETIRED&lang=en")
    assert "no version of the subject can be exchanged" in asked.text
    assert "No data-sharing agreement uses this subject." in asked.text
    assert client.post(f"{PAGE}/person/state", data=hidden_fields(asked)).status_code == 303
    assert _state(hub, "person", 1) == "RETIRED"


def test_a_mode_change_names_the_versions_in_use_it_would_have_refused(
    app_client: TestClient, hub: Hub
) -> None:
    person = {"type": "object", "properties": {"name": {"type": "string"}}}
    _add(hub, "person", person, state="ACTIVE")
    _mode(hub, "person", CompatibilityMode.NONE)
    _add(hub, "person", {**person, "required": ["name"]}, state="ACTIVE")
    client = officer(app_client, hub)
    subject = client.get(f"{PAGE}/person?lang=en")
    assert '<option value="NONE" selected>' in subject.text

    asked = client.get(f"{PAGE}/person/mode?to=BACKWARD&lang=en")
    assert "from NONE to BACKWARD?" in asked.text
    assert "Versions in use this mode would have refused" in asked.text
    assert 'v2 <code>/properties/name</code> <span class="badge">required-added' in asked.text
    changed = client.post(f"{PAGE}/person/mode", data=hidden_fields(asked))
    assert changed.status_code == 303
    with Session(hub.engine) as session:
        row = service.subject_row(session, "person")
        assert service.compatibility_of(session, row) is CompatibilityMode.BACKWARD
    assert client.get(f"{PAGE}/person/mode?to=SIDEWAYS").status_code == 422
    assert client.get(f"{PAGE}/nobody/mode?to=FULL").status_code == 404
