"""Governance edits an agreement in the console: fields picked from what the schema declares,
a preview of what the department would receive for the schema's example record before
anything is saved, each save a new version with who changed which fields; refusals shown on
the form with the person's edits kept."""

from __future__ import annotations

import re
from html import unescape

from fastapi.testclient import TestClient
from sqlmodel import Session

from hub.composition import Hub
from hub.schemas import agreements
from tests.conftest import seed_shipped_agreements
from tests.console.helpers import hidden_fields, officer

PAGE = "/console/governance/agreements"
_CHECKED = re.compile(r'name="fields" value="([^"]+)" checked')
_BOX = re.compile(r'name="fields" value="([^"]+)"')


def _form(page: str) -> dict[str, object]:
    """The editor's form as a browser would post it: its inputs, selects and ticked boxes."""
    values: dict[str, object] = {}
    for name, value in re.findall(r'<input id="\w+" name="(\w+)"[^>]*value="([^"]*)"', page):
        values[name] = unescape(value)
    for name, value in re.findall(
        r'<select id="\w+" name="(\w+)">.*?<option value="([^"]+)" selected', page, re.S
    ):
        values[name] = value
    values["fields"] = [unescape(v) for v in _CHECKED.findall(page)]
    return values


def _received(page: str) -> str:
    return unescape(page.split('<pre id="received">')[1].split("</pre>")[0])


def test_the_preview_follows_the_fields_and_a_save_is_a_new_version(
    app_client: TestClient, hub: Hub
) -> None:
    seed_shipped_agreements(hub)
    client = officer(app_client, hub)
    listing = client.get(f"{PAGE}?lang=en")
    assert f'href="{PAGE}/education-holders"' in listing.text

    page = client.get(f"{PAGE}/education-holders?lang=en")
    assert page.status_code == 200, page.text
    boxes = _BOX.findall(page.text)
    assert "/holder/contact" in boxes and "/permit" in boxes
    assert not any(b.startswith(("/$schema", "/schema_version", "/event")) for b in boxes)
    assert "/holder/name" in _CHECKED.findall(page.text)
    assert '"name"' in _received(page.text) and '"contact"' not in _received(page.text)

    form = {**hidden_fields(page), **_form(page.text)}
    fields = [f for f in form["fields"] if f != "/holder/name"]  # type: ignore[union-attr]
    preview = client.post(
        f"{PAGE}/education-holders?lang=en", data={**form, "fields": fields, "action": "preview"}
    )
    assert preview.status_code == 200
    assert '"name"' not in _received(preview.text) and '"citizen_id"' in _received(preview.text)
    assert "/holder/name" not in _CHECKED.findall(preview.text)
    with Session(hub.engine) as session:
        assert agreements.latest(session, "education-holders").version == 1  # nothing saved

    saved = client.post(
        f"{PAGE}/education-holders?lang=en", data={**form, "fields": fields, "action": "save"}
    )
    assert saved.status_code == 303, saved.text
    after = client.get(saved.headers["location"] + "&lang=en")
    assert "<code>education-holders</code> v2" in after.text
    history = after.text.split("<h2>Versions</h2>")[1]
    assert 'class="removed"><code>/holder/name</code>' in history
    assert "staff:wang.fang" in history
    with Session(hub.engine) as session:
        row = agreements.latest(session, "education-holders")
        assert (row.version, row.changed_by) == (2, "staff:wang.fang")
        assert "/holder/name" not in row.allowed_fields

    stale = client.post(
        f"{PAGE}/education-holders?lang=en", data={**form, "fields": fields, "action": "save"}
    )
    assert stale.status_code == 412 and "now at version 2" in stale.text
    assert "/holder/contact" not in _CHECKED.findall(stale.text)  # the person's edits stay


def test_refusals_keep_the_form_and_say_why(app_client: TestClient, hub: Hub) -> None:
    seed_shipped_agreements(hub)
    client = officer(app_client, hub)
    new = client.get(f"{PAGE}/new?subject=holder-record&lang=en")
    assert new.status_code == 200 and "New data-sharing agreement" in new.text
    form = {**hidden_fields(new), **_form(new.text), "purpose": "测试用途"}
    empty = client.post(f"{PAGE}/new?lang=en", data={**form, "action": "save"})
    assert empty.status_code == 422 and "/fields" in empty.text and "测试用途" in empty.text
    backwards = client.post(
        f"{PAGE}/new?lang=en",
        data={
            **form,
            "fields": ["/holder/name"],
            "legal_basis": "[CF §24]",
            "valid_from": "2027-01-01",
            "valid_to": "2026-01-01",
            "action": "save",
        },
    )
    assert backwards.status_code == 422 and "valid_to is before valid_from" in backwards.text
    undeclared = client.post(
        f"{PAGE}/new?lang=en",
        data={**form, "fields": ["/holder/nmae"], "legal_basis": "x", "action": "save"},
    )
    assert undeclared.status_code == 422 and "/holder/nmae" in undeclared.text
    created = client.post(
        f"{PAGE}/new?lang=en",
        data={**form, "fields": ["/holder/name"], "legal_basis": "[CF §24]", "action": "save"},
    )
    assert created.status_code == 303
    assert client.get(f"{PAGE}/no-such-agreement").status_code == 404
    assert client.get(f"{PAGE}/new?subject=no-such-subject").status_code == 404
    forged = client.post(f"{PAGE}/new", data={**form, "action": "save"} | {"csrf": "x"})
    assert forged.status_code == 403
