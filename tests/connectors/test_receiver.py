"""The reference department receiver: keeps genuine deliveries once each, refuses the rest.

Most tests drive the app in-process on a fixed clock; the last one runs the real server,
kills it without warning and restarts it on the same file, as the delivery fault tests do.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from hub.clock import FixedClock
from hub.connectors.receiver import PAGE_DEFAULT, PAGE_MAX, Inbox, create_receiver, read_received
from hub.connectors.signing import Signer, new_secret
from hub.problems import MEDIA_TYPE
from tests.servers import free_port

NOW = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
DEPARTMENT = "housing"
PATH = "/webhooks/holder-records"


def record(number: int) -> dict[str, Any]:
    return {"permit_number": f"31010120250301{number:04d}", "status": "valid"}


def body_of(number: int) -> bytes:
    return json.dumps(record(number)).encode()


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "inbox.sqlite3"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def client(secret: str, store: Path, clock: FixedClock) -> Iterator[TestClient]:
    with TestClient(create_receiver(DEPARTMENT, secret, store, clock=clock)) as client:
        yield client


def deliver(
    client: TestClient | httpx.Client, secret: str, message_id: str, body: bytes, at: datetime
) -> httpx.Response:
    return client.post(PATH, content=body, headers=Signer(secret).headers(message_id, body, at))


def assert_refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == MEDIA_TYPE
    problem = response.json()
    assert problem["type"] == "/problems/signature-refused"
    assert problem["status"] == 401
    assert problem["reason"] == reason
    assert problem["title"] and problem["detail"]


def test_genuine_delivery_is_stored(client: TestClient, secret: str) -> None:
    response = deliver(client, secret, "msg_1", body_of(1), NOW)

    assert response.status_code == 200
    assert response.json() == {"stored": True}
    assert client.get("/received").json() == [
        {
            "webhook_id": "msg_1",
            "received_at": NOW.isoformat(),
            "duplicates": 0,
            "traceparent": None,
            "record": record(1),
        }
    ]


def test_deliveries_are_listed_in_arrival_order(
    client: TestClient, secret: str, clock: FixedClock
) -> None:
    for message_id in ("msg_c", "msg_a", "msg_b"):
        deliver(client, secret, message_id, body_of(1), clock.now())
        clock.advance(timedelta(seconds=1))

    received = client.get("/received").json()
    assert [entry["webhook_id"] for entry in received] == ["msg_c", "msg_a", "msg_b"]


def test_tampered_signature_is_refused_and_not_stored(client: TestClient, secret: str) -> None:
    headers = Signer(secret).headers("msg_1", body_of(1), NOW)
    response = client.post(PATH, content=body_of(2), headers=headers)

    assert_refused(response, "bad-signature")
    assert client.get("/received").json() == []


def test_wrong_secret_is_refused(client: TestClient) -> None:
    assert_refused(deliver(client, new_secret(), "msg_1", body_of(1), NOW), "bad-signature")


def test_unsigned_delivery_is_refused(client: TestClient) -> None:
    response = client.post(PATH, content=body_of(1), headers={"content-type": "application/json"})
    assert_refused(response, "missing-headers")


def test_malformed_signature_is_refused(client: TestClient, secret: str) -> None:
    headers = Signer(secret).headers("msg_1", body_of(1), NOW) | {"webhook-signature": "v1,%%"}
    assert_refused(client.post(PATH, content=body_of(1), headers=headers), "malformed")


def test_replayed_delivery_with_an_old_timestamp_is_refused(
    client: TestClient, secret: str, clock: FixedClock
) -> None:
    """A captured delivery sent again later keeps its signed time, so it is refused as stale."""
    headers = Signer(secret).headers("msg_1", body_of(1), NOW)
    assert client.post(PATH, content=body_of(1), headers=headers).json() == {"stored": True}

    clock.advance(timedelta(minutes=6))
    assert_refused(client.post(PATH, content=body_of(1), headers=headers), "stale-timestamp")
    assert client.get("/received").json()[0]["duplicates"] == 0


def test_timestamp_from_the_future_is_refused(client: TestClient, secret: str) -> None:
    response = deliver(client, secret, "msg_1", body_of(1), NOW + timedelta(minutes=6))
    assert_refused(response, "stale-timestamp")


def test_duplicate_webhook_id_is_stored_once_and_counted(
    client: TestClient, secret: str, clock: FixedClock
) -> None:
    """The hub retries with the same id, signed anew; the department must not apply it twice."""
    assert deliver(client, secret, "msg_1", body_of(1), NOW).json() == {"stored": True}
    for _ in range(2):
        clock.advance(timedelta(minutes=1))
        assert deliver(client, secret, "msg_1", body_of(1), clock.now()).json() == {
            "duplicate": True
        }
    assert deliver(client, secret, "msg_2", body_of(1), clock.now()).json() == {"stored": True}

    received = client.get("/received").json()
    assert [(entry["webhook_id"], entry["duplicates"]) for entry in received] == [
        ("msg_1", 2),
        ("msg_2", 0),
    ]
    assert received[0]["received_at"] == NOW.isoformat()  # the first arrival is kept


def test_signed_body_that_is_not_json_is_refused(client: TestClient, secret: str) -> None:
    response = deliver(client, secret, "msg_1", b"permit 0001 valid", NOW)

    assert response.status_code == 400
    assert response.json()["type"] == "/problems/malformed-json"
    assert client.get("/received").json() == []


def test_deliveries_survive_recreating_the_app(
    client: TestClient, secret: str, store: Path, clock: FixedClock
) -> None:
    deliver(client, secret, "msg_1", body_of(1), NOW)

    with TestClient(create_receiver(DEPARTMENT, secret, store, clock=clock)) as again:
        assert [entry["record"] for entry in again.get("/received").json()] == [record(1)]
        assert deliver(again, secret, "msg_1", body_of(1), NOW).json() == {"duplicate": True}
        assert again.get("/received").json()[0]["duplicates"] == 1


def test_fail_with_answers_that_status_and_stores_nothing(
    secret: str, store: Path, clock: FixedClock
) -> None:
    app = create_receiver(DEPARTMENT, secret, store, fail_with=500, clock=clock)
    with TestClient(app) as client:
        response = deliver(client, secret, "msg_1", body_of(1), NOW)

        assert response.status_code == 500
        assert response.headers["content-type"] == MEDIA_TYPE
        assert response.json()["type"] == "/problems/simulated-failure"
        assert client.get("/received").json() == []


def test_concurrent_copies_of_one_delivery_are_stored_once(store: Path) -> None:
    inbox = Inbox(store)
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: inbox.put("msg_1", "{}", NOW), range(32)))

    assert outcomes.count(True) == 1
    assert [entry["duplicates"] for entry in inbox.page(None, 10).deliveries] == [31]


def keep(store: Path, count: int) -> list[str]:
    """`count` deliveries put straight into the store, as the webhook route keeps them."""
    inbox = Inbox(store)
    ids = [f"evt_{n}" for n in range(1, count + 1)]
    for n, message_id in enumerate(ids, start=1):
        inbox.put(message_id, json.dumps(record(n)), NOW)
    return ids


def test_received_pages_follow_the_next_link_to_the_end(client: TestClient, store: Path) -> None:
    ids = keep(store, 5)

    pages, links = [], []
    url: str | None = "/received?limit=2"
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200
        pages.append([entry["webhook_id"] for entry in response.json()])
        links.append(response.headers.get("link"))
        url = response.links.get("next", {}).get("url")

    assert pages == [ids[0:2], ids[2:4], ids[4:5]]
    assert links[0] == '<http://testserver/received?after=evt_2&limit=2>; rel="next"'
    assert links[2] is None  # the last page says so by having no next link
    assert client.get("/received?after=evt_5").json() == []


def test_received_without_parameters_is_the_first_page(client: TestClient, store: Path) -> None:
    ids = keep(store, PAGE_DEFAULT + 1)

    response = client.get("/received")
    assert [entry["webhook_id"] for entry in response.json()] == ids[:PAGE_DEFAULT]
    assert response.links["next"]["url"].endswith(f"after=evt_{PAGE_DEFAULT}&limit={PAGE_DEFAULT}")
    rest = client.get(response.links["next"]["url"])
    assert [entry["webhook_id"] for entry in rest.json()] == ids[PAGE_DEFAULT:]
    assert "link" not in rest.headers


@pytest.mark.parametrize("query", ["limit=0", f"limit={PAGE_MAX + 1}", "limit=x", "after=evt_9"])
def test_a_bad_page_request_is_a_problem_naming_the_parameter(
    client: TestClient, store: Path, query: str
) -> None:
    keep(store, 2)

    response = client.get(f"/received?{query}")
    assert response.status_code == 422
    assert response.headers["content-type"] == MEDIA_TYPE
    problem = response.json()
    assert problem["type"] == "/problems/validation-failed"
    assert [error["parameter"] for error in problem["errors"]] == [query.split("=")[0]]


def test_one_delivery_is_read_by_its_webhook_id(client: TestClient, store: Path) -> None:
    keep(store, 3)

    assert client.get("/received/evt_2").json() == {
        "webhook_id": "evt_2",
        "received_at": NOW.isoformat(),
        "duplicates": 0,
        "traceparent": None,
        "record": record(2),
    }
    missing = client.get("/received/evt_4")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == MEDIA_TYPE
    assert missing.json()["type"] == "/problems/not-found"


def test_read_received_gathers_every_page_of_a_real_server(
    secret: str, store: Path, tmp_path: Path
) -> None:
    ids = keep(store, PAGE_MAX + 3)
    process, base = start_server(secret, store, tmp_path / "receiver.log")
    try:
        received = read_received(base)
    finally:
        kill(process)
    assert [entry["webhook_id"] for entry in received] == ids
    assert received[-1]["record"] == record(PAGE_MAX + 3)


def test_healthz_names_the_department(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "department": DEPARTMENT}


@pytest.mark.parametrize(
    ("department", "fail_with"), [("transport", None), (DEPARTMENT, 200), (DEPARTMENT, 600)]
)
def test_bad_configuration_is_refused_up_front(
    secret: str, store: Path, department: str, fail_with: int | None
) -> None:
    with pytest.raises(ValueError):
        create_receiver(department, secret, store, fail_with=fail_with)


def start_server(secret: str, store: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    code = (
        "from pathlib import Path; from hub.connectors.receiver import serve; "
        f"serve({DEPARTMENT!r}, {port}, {secret!r}, Path({str(store)!r}))"
    )
    with log.open("ab") as output:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"receiver exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"receiver did not answer within 20 s:\n{log.read_text()}")


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def test_real_server_keeps_deliveries_and_de_duplication_across_sigkill(
    secret: str, store: Path, tmp_path: Path
) -> None:
    log = tmp_path / "receiver.log"
    process, base = start_server(secret, store, log)
    try:
        with httpx.Client(base_url=base, timeout=5) as http:
            response = deliver(http, secret, "msg_1", body_of(1), datetime.now(UTC))
            assert response.json() == {"stored": True}
    finally:
        kill(process)
    assert process.returncode == -signal.SIGKILL

    process, base = start_server(secret, store, log)
    try:
        with httpx.Client(base_url=base, timeout=5) as http:
            response = deliver(http, secret, "msg_1", body_of(1), datetime.now(UTC))
            assert response.json() == {"duplicate": True}
            received = http.get("/received").json()
    finally:
        kill(process)
    assert [(entry["webhook_id"], entry["duplicates"]) for entry in received] == [("msg_1", 1)]
    assert received[0]["record"] == record(1)
