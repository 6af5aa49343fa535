"""Data governance's subject page: versions side by side, each breaking change marked at its
pointer and explained in both languages; and the pretty-printer that gives lines pointers."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditEntry
from hub.composition import Hub
from hub.console.jsonview import json_lines, marked
from hub.db import unit_of_work
from hub.schemas import domain, service
from hub.schemas.compat import CompatibilityMode
from tests.console.helpers import browser, hidden_fields, new_staff, sign_in, totp

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "a/b~c": {}},
    "required": [],
}


def test_lines_are_the_pretty_printed_document_with_their_pointers() -> None:
    document = {"a": [1, {"b": None}], "c/d": {}, "名": "值"}
    lines = json_lines(document)
    assert "\n".join(line.text for line in lines) == json.dumps(
        document, indent=2, ensure_ascii=False
    )
    pointers = [line.pointer for line in lines]
    assert pointers[:5] == ["", "/a", "/a/0", "/a/1", "/a/1/b"]
    assert "/c~1d" in pointers
    flags = [(line.pointer, hit) for line, hit, first in marked(lines, {"/a/1"}) if first]
    assert [p for p, hit in flags if hit] == ["/a/1", "/a/1/b"]


def _register(hub: Hub, definition: dict[str, object]) -> None:
    with unit_of_work(hub.engine) as session:
        service.register(
            session,
            hub.schemas,
            hub.audit,
            "person",
            definition,
            state=domain.VersionState.DRAFT,
            actor=Actor("staff:wang.fang", "public-security"),
            now=hub.clock.now(),
        )


def test_a_breaking_change_is_marked_at_its_pointer(app_client: TestClient, hub: Hub) -> None:
    _register(hub, PERSON)
    with unit_of_work(hub.engine) as session:
        service.set_compatibility(
            session,
            hub.audit,
            "person",
            CompatibilityMode.NONE,
            actor=Actor("staff:wang.fang", "public-security"),
            now=hub.clock.now(),
        )
    _register(hub, {**PERSON, "required": ["name"]})
    given = new_staff(hub, "wang.fang", "governance")
    client = browser(app_client)
    sign_in(client, "wang.fang", given.password, totp(given, hub), new_password="x" * 16)
    page = client.get("/console/governance/subjects/person?lang=en")
    assert page.status_code == 200, page.text
    assert 'href="#new-/properties/name"' in page.text
    assert '<span class="breaking" id="new-/properties/name">' in page.text
    assert "required-added" in page.text
    assert "<h3>v1 · Draft</h3>" in page.text and "<h3>v2 · Draft</h3>" in page.text
    chinese = client.get("/console/governance/subjects/person?lang=zh-CN&from=2&to=1")
    assert chinese.status_code == 200 and 'id="old-/properties/name"' in chinese.text
    missing = client.get("/console/governance/subjects/person?from=9")
    assert missing.status_code == 404 and "schema-version-not-found" in missing.text
    bad = client.get("/console/governance/subjects/person?from=0")
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]


def test_a_draft_is_checked_then_registered_or_refused_with_its_pointer(
    app_client: TestClient, hub: Hub
) -> None:
    _register(hub, PERSON)
    given = new_staff(hub, "wang.fang", "governance")
    client = browser(app_client)
    sign_in(client, "wang.fang", given.password, totp(given, hub), new_password="x" * 16)
    draft = client.get("/console/governance/subjects/person/draft?lang=en")
    assert draft.status_code == 200 and "&#34;age&#34;" in draft.text
    csrf = hidden_fields(draft)["csrf"]
    url = "/console/governance/subjects/person/draft?lang=en"

    narrowed = json.dumps({**PERSON, "required": ["name"]})
    checked = client.post(url, data={"csrf": csrf, "schema": narrowed, "action": "check"})
    assert checked.status_code == 200
    assert "Cannot be registered under BACKWARD" in checked.text
    assert "<code>/properties/name</code>" in checked.text and "required-added" in checked.text
    refused = client.post(url, data={"csrf": csrf, "schema": narrowed, "action": "register"})
    assert refused.status_code == 409 and "<code>/schema/properties/name</code>" in refused.text

    unreadable = client.post(url, data={"csrf": csrf, "schema": '{"type": NaN}'})
    assert "Not valid JSON" in unreadable.text
    broken = client.post(url, data={"csrf": csrf, "schema": '{\n "type": }'})
    assert "line 2, column 10" in broken.text
    boolean = client.post(url, data={"csrf": csrf, "schema": "true", "action": "check"})
    assert boolean.status_code == 422 and "text/html" in boolean.headers["content-type"]

    widened = json.dumps({**PERSON, "properties": {**PERSON["properties"], "note": {}}})
    fine = client.post(url, data={"csrf": csrf, "schema": widened, "action": "check"})
    assert "Compatible under BACKWARD" in fine.text
    registered = client.post(url, data={"csrf": csrf, "schema": widened, "action": "register"})
    assert registered.status_code == 303
    assert registered.headers["location"] == "/console/governance/subjects/person?to=2"
    forged = client.post(url, data={"schema": widened, "action": "register"})
    assert forged.status_code == 403
    with Session(hub.engine) as session:
        assert [v.version for v in service.versions_of(session, "person")] == [1, 2]
    staff_entries = [e for e in audit_entries(hub) if e.actor_client_id == "staff:wang.fang"]
    assert any(e.action.startswith("schema.") for e in staff_entries)


def audit_entries(hub: Hub) -> list[AuditEntry]:
    with Session(hub.engine) as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all())
