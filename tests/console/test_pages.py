"""The console's pages over HTTP, on both databases: what a role opens and what it is refused,
problems shown as pages (the API keeps answering JSON), and the headers every page carries."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hub.composition import Hub
from tests.console.helpers import browser, new_staff, sign_in, totp

NEW_PASSWORD = "a sentence the officer remembers"


def test_a_clerk_is_refused_the_governance_pages(app_client: TestClient, hub: Hub) -> None:
    given = new_staff(hub, "li.lei", "window-clerk")
    client = browser(app_client)
    sign_in(client, "li.lei", given.password, new_password=NEW_PASSWORD)
    refused = client.get("/console/governance", headers={"Accept-Language": "zh-CN"})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "您的角色不包含此页所需的权限：schemas:admin" in refused.text
    assert "insufficient-scope" in refused.text
    english = client.get("/console/governance?lang=en")
    assert "Your roles do not give: schemas:admin" in english.text


def test_governance_sees_every_subject_with_its_mode_and_states(
    app_client: TestClient, hub: Hub
) -> None:
    given = new_staff(hub, "wang.fang", "governance")
    client = browser(app_client)
    sign_in(client, "wang.fang", given.password, totp(given, hub), new_password=NEW_PASSWORD)
    page = client.get("/console/governance?lang=en")
    assert page.status_code == 200
    subjects = [view.subject for view in _subjects(hub)]
    assert subjects and all(f"<code>{name}</code>" in page.text for name in subjects)
    assert "BACKWARD" in page.text and "v1 Active" in page.text


def _subjects(hub: Hub) -> list[object]:
    from sqlmodel import Session

    from hub.schemas import service, views

    with Session(hub.engine) as session:
        return [
            views.subject_view(
                row, service.compatibility_of(session, row), service.versions_of(session, row.name)
            )
            for row in service.subjects(session)
        ]


def test_a_page_needs_a_session(app_client: TestClient) -> None:
    client = browser(app_client)
    page = client.get("/console/governance")
    assert page.status_code == 303 and page.headers["location"] == "/console/sign-in"
    posted = client.post("/console/sign-out", data={"csrf": "x"})
    assert posted.status_code == 401 and "sign-in-required" in posted.text
    headers = posted.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    api = client.get("/schemas/v1/subjects")
    assert api.status_code == 401 and api.headers["content-type"] == "application/problem+json"


def test_the_hub_address_leads_to_the_console(app_client: TestClient) -> None:
    client = browser(app_client)
    root = client.get("/")
    assert root.status_code == 303 and root.headers["location"] == "/console"
