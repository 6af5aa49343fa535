"""Nothing a caller sent that is personal or secret ever reaches a log line, and a request is
followed by its trace id from the hub to the department that received its event; on both
databases.

The whole API flow runs with the hub's own log configuration at its most verbose (DEBUG),
every line kept as the hub writes it: tokens issued and refused, a registration and an
application, a card issued and tapped (granted and refused), a search, a look-up, the feed, an
access report, a cancellation delivered to a department's receiver on loopback. Then every
value sent (citizen IDs, names, addresses, phone numbers, workplaces, client secrets, access
tokens, the webhook secret, card signatures) is looked for in everything logged.
"""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.auth.domain import ClientKind, Department
from hub.composition import Hub
from hub.connectors.config import DeliveryMode, DepartmentLink
from hub.connectors.receiver import create_receiver
from hub.connectors.relay import Relay, RelayPolicy
from hub.connectors.signing import new_secret
from hub.ops.logs import JsonFormatter, logging_config
from tests.auth.helpers import access_token, bearer
from tests.card.helpers import citizen_id
from tests.conftest import RegisterClient
from tests.connectors.helpers import Receiver
from tests.factories import ADULT, registration_body
from tests.verification.conftest import MakeCard
from tests.verification.helpers import tap

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PURPOSE = "窗口办理：注销核验"


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every line logged meanwhile, under the hub's configuration at DEBUG."""
    manager = logging.getLogger().manager
    saved = {
        name: (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root = logging.getLogger()
    root_saved = (root.level, list(root.handlers))
    logging.config.dictConfig(logging_config("DEBUG"))
    kept = _Kept()
    root.handlers = [kept]  # the configuration's, writing to the test's stderr, replaced
    yield kept.lines
    root.setLevel(root_saved[0])
    root.handlers = root_saved[1]
    for name, (level, handlers, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers, logger.propagate, logger.disabled = handlers, propagate, disabled


@pytest.fixture
def education(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DepartmentLink, Receiver, str]]:
    secret = new_secret()
    monkeypatch.setenv("HUB_TEST_SECRET_EDUCATION", secret)
    receiver = Receiver(create_receiver("education", secret, tmp_path / "education.db"))
    link = DepartmentLink(
        endpoint=f"{receiver.url}/webhooks/holder-records",
        secret_env="HUB_TEST_SECRET_EDUCATION",
        agreement="education-holders",
        delivery=DeliveryMode.BOTH,
        events=("*",),
    )
    yield link, receiver, secret
    receiver.stop()


def test_nothing_sent_is_logged_and_a_request_is_followed_to_the_department(
    logged: list[str],
    app_client: TestClient,
    hub: Hub,
    register_client: RegisterClient,
    make_card: MakeCard,
    education: tuple[DepartmentLink, Receiver, str],
) -> None:
    link, receiver, webhook_secret = education
    secrets: list[str] = [webhook_secret]

    def signed_in(department: str, *scopes: str, **kwargs: object) -> dict[str, str]:
        new = register_client(department, scopes, **kwargs)
        assert new.secret is not None
        token = access_token(app_client, new)
        secrets.extend([new.secret, token])
        return bearer(token)

    office = signed_in(
        "public-security", "registry:read", "registry:write", jurisdictions=("chifeng",)
    )
    window = signed_in("education", "verification:tap", kind=ClientKind.WINDOW_TERMINAL)
    lookups = signed_in("education", "exchange:lookup", "exchange:feed")
    wrong = app_client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("nobody", secrets[1])
    )
    assert wrong.status_code == 401

    long_ago = (hub.clock.today() - timedelta(days=400)).isoformat()
    sent = registration_body(temporary_permit_since=long_ago)
    registered = app_client.post("/registry/v1/registrations", headers=office, json=sent)
    assert registered.status_code == 201, registered.text
    applied = app_client.post(
        "/registry/v1/applications",
        headers=office,
        json={
            "registration_id": registered.json()["id"],
            "condition": "residence",
            "form": "rented",
            "materials": ["id-card", "photo", "lease-contract"],
        },
    )
    assert applied.status_code == 201, applied.text

    card = make_card(1)
    granted = tap(app_client, window, card)
    assert granted.json()["decision"] == "grant", granted.text
    forged = tap(app_client, window, card, record=card.record[:-1] + b"\x00")
    assert forged.json()["decision"] == "deny"
    secrets.append(granted.request.content.decode())  # the body with the card's signature
    holder_id = citizen_id(1)
    found = app_client.post(
        "/registry/v1/search", headers=office, json={"purpose": PURPOSE, "citizen_id": holder_id}
    )
    assert found.status_code == 200 and found.json()["hits"], found.text
    looked_up = app_client.post(
        "/exchange/v1/lookup",
        headers=lookups,
        json={"citizen_id": holder_id, "purpose": "入学资格核验"},
    )
    assert looked_up.status_code == 200, looked_up.text
    assert app_client.get("/exchange/v1/feed", headers=lookups).status_code == 200
    today = hub.clock.today().isoformat()
    report = app_client.post(
        "/registry/v1/access-reports",
        headers=office,
        json={"citizen_id": holder_id, "since": today, "until": today, "purpose": PURPOSE},
    )
    assert report.status_code == 200, report.text

    permit = app_client.get(f"/registry/v1/permits/{card.permit_id}", headers=office)
    cancelled = app_client.post(
        f"/registry/v1/permits/{card.permit_id}/cancel",
        headers={
            **office,
            "If-Match": permit.headers["etag"],
            "traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01",
        },
        json={"reason": "conditions-no-longer-met"},
    )
    assert cancelled.status_code == 200, cancelled.text
    relay = Relay(
        hub.outbound, links={Department.EDUCATION: link}, policy=RelayPolicy(timeout_seconds=5)
    )
    try:
        assert relay.run_once() >= 1
    finally:
        relay.close()

    kept = receiver.received()
    by_type = {entry["record"]["event"]["type"]: entry for entry in kept}
    assert by_type["cancel"]["traceparent"].split("-")[1] == TRACE_ID
    assert by_type["issue"]["traceparent"].split("-")[1] != TRACE_ID
    lines = [json.loads(line) for line in logged]
    assert any(
        line.get("request_id") == TRACE_ID and line["logger"] == "hub.access" for line in lines
    )
    assert any(
        line.get("request_id") == TRACE_ID and line["logger"] == "hub.connectors.receiver"
        for line in lines
    ), "the receiver logs the delivery under the hub request's trace id"

    personal = [
        sent["citizen_id"],
        ADULT,
        holder_id,
        sent["name"],
        "张三",
        sent["household_address"],
        sent["current_address"],
        "内蒙古赤峰市红山区",
        sent["contact"],
        sent["workplace"],
    ]
    everything = "\n".join(logged)
    assert sum(line["logger"] == "hub.access" for line in lines) >= 20  # the flow was logged
    for value in personal + secrets:
        assert value not in everything, f"{value[:12]}… was logged"
        assert json.dumps(value)[1:-1] not in everything  # nor as a JSON escape
