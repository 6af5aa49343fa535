"""Operators see the hub work: /metrics in Prometheus format (several workers added up), a
request id on every answer that continues a caller's W3C trace, one JSON log line per request
with the route's template; on both databases."""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from hub.app import create_app
from hub.clock import FixedClock
from hub.composition import Hub
from hub.ops import trace
from hub.ops.logs import JsonFormatter
from hub.settings import Settings
from tests.auth.helpers import access_token, bearer
from tests.commands import serving
from tests.conftest import RegisterClient
from tests.factories import STORED_AT, add_deliveries, add_permits

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics document by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_tokens_and_the_backlog_are_counted(
    app_client: TestClient, register_client: RegisterClient, hub: Hub, clock: FixedClock
) -> None:
    before = app_client.get("/metrics").text
    new = register_client("civil-affairs", ("exchange:feed",))
    token = access_token(app_client, new)
    refused = app_client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(new.client_id, "wrong")
    )
    assert refused.status_code == 401
    app_client.get(
        "/registry/v1/permits/3fa85f64-5717-4562-b3fc-2c963f66afa6", headers=bearer(token)
    )
    app_client.get("/no/such/path/13800000000")
    for invented in ("BREW13800000000", "PROPFIND"):  # any token is a method to HTTP
        app_client.request(invented, "/healthz")
    [permit_id] = add_permits(hub, "valid")
    add_deliveries(hub.engine, permit_id, education="pending", housing="dead")
    clock.set(STORED_AT + timedelta(seconds=90))

    answer = app_client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = answer.text
    growth = {
        (
            "hub_http_requests_total",
            ("method", "POST"),
            ("route", "/oauth/token"),
            ("status", "200"),
        ): 1,
        (
            "hub_http_requests_total",
            ("method", "POST"),
            ("route", "/oauth/token"),
            ("status", "401"),
        ): 1,
        (
            "hub_http_requests_total",
            ("method", "GET"),
            ("route", "/registry/v1/permits/{permit_id}"),
            ("status", "403"),
        ): 1,
        (
            "hub_http_requests_total",
            ("method", "GET"),
            ("route", "unmatched"),
            ("status", "404"),
        ): 1,
        (
            "hub_http_requests_total",
            ("method", "OTHER"),
            ("route", "/healthz"),
            ("status", "405"),
        ): 2,
        ("hub_oauth_tokens_issued_total", ("grant_type", "client_credentials")): 1,
        ("hub_oauth_tokens_refused_total", ("reason", "invalid_client")): 1,
    }
    for (name, *labels), grown in growth.items():
        found = value(after, name, **dict(labels)) - value(before, name, **dict(labels))
        assert found == grown, (name, labels)
    assert value(after, "hub_audit_appends_total") > value(before, "hub_audit_appends_total")
    assert value(after, "hub_delivery_backlog", department="education") == 1
    assert value(after, "hub_delivery_oldest_pending_seconds", department="education") == 90
    assert value(after, "hub_dead_letters", department="housing") == 1
    assert "13800000000" not in after and "/no/such/path" not in after
    assert "PROPFIND" not in after  # one label for every method the hub does not answer
    assert new.secret is not None and new.secret not in after


def test_every_answer_names_its_request_and_continues_the_caller_s_trace(
    app_client: TestClient,
) -> None:
    joined = app_client.get(
        "/healthz", headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    )
    assert joined.headers["x-request-id"] == TRACE_ID
    for malformed in ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", "garbage", f"01-{TRACE_ID}-x-01"):
        fresh = app_client.get("/healthz", headers={"traceparent": malformed})
        assert re.fullmatch("[0-9a-f]{32}", fresh.headers["x-request-id"])
        assert fresh.headers["x-request-id"] != TRACE_ID
    refused = app_client.post("/oauth/token", content=b"x" * 2_000_000)
    assert refused.status_code == 413 and refused.headers["x-request-id"]


def test_a_log_line_is_json_with_the_request_id_and_the_fields_given() -> None:
    record = logging.LogRecord("hub.test", logging.INFO, __file__, 1, "kept %s", ("evt_1",), None)
    record.webhook_id = "evt_1"
    with trace.tracing(trace.continued(f"00-{TRACE_ID}-00f067aa0ba902b7-01")) as active:
        line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "kept evt_1" and line["level"] == "info"
    assert (line["request_id"], line["span_id"]) == (TRACE_ID, active.span_id)
    assert line["webhook_id"] == "evt_1" and line["logger"] == "hub.test"


@pytest.fixture
def two_workers(database_url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with serving(database_url, "--workers", "2") as served:
        yield served.base, served.process


def test_two_workers_add_up_and_log_json(two_workers: tuple[str, subprocess.Popen[str]]) -> None:
    base, server = two_workers
    with httpx.Client(base_url=base, timeout=10) as http:
        before = value(
            http.get("/metrics").text,
            "hub_http_requests_total",
            method="GET",
            route="/readyz",
            status="200",
        )
        for _ in range(40):  # a new connection each time, so both workers answer some
            ready = httpx.get(
                f"{base}/readyz",
                timeout=10,
                headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
            )
            assert ready.status_code == 200
        after = http.get("/metrics").text
    assert (
        value(after, "hub_http_requests_total", method="GET", route="/readyz", status="200")
        - before
        == 40
    )
    server.terminate()
    _, logged = server.communicate(timeout=30)
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    access = [
        line for line in lines if line["logger"] == "hub.access" and line["route"] == "/readyz"
    ]
    assert len(access) == 40
    assert {line["request_id"] for line in access} == {TRACE_ID}
    assert len({line["pid"] for line in access}) == 2, "both workers answered"


def test_what_the_app_made_to_start_is_kept_out_of_full_collections(
    settings: Settings, engine: Engine, clock: FixedClock
) -> None:
    """A full collection walked every object the process made to start, some 270,000, in
    whichever request triggered it: 115-180 ms, the taps' stalls at half load."""
    gc.unfreeze()  # as in a server process: the session froze its own (conftest)
    try:
        with TestClient(create_app(settings, engine=engine, clock=clock)) as client:
            assert client.get("/healthz").status_code == 200
            kept = gc.get_freeze_count()
        assert kept > 10_000
        assert gc.get_freeze_count() == 0  # stopped: collectable again
    finally:
        gc.freeze()


def test_an_app_leaves_a_heap_frozen_before_it_as_it_was(
    settings: Settings, engine: Engine, clock: FixedClock
) -> None:
    # The session froze its heap (conftest); frozen objects freed since leave the count, an
    # unfreeze would empty it.
    assert gc.get_freeze_count() > 10_000
    with TestClient(create_app(settings, engine=engine, clock=clock)) as client:
        assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() > 10_000  # not unfrozen by an app that did not freeze it


def test_trace_ids_never_repeat_across_reads_of_randomness_or_a_fork() -> None:
    # The ids come from a buffer of the system's randomness, read 4 KiB at a time: across many
    # refills none repeats, and a forked worker does not hand out what its parent would.
    traces = [trace.new_trace() for _ in range(2_000)]  # about 12 reads of the buffer
    ids = [t.trace_id for t in traces] + [t.span_id for t in traces]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch("[0-9a-f]{32}", t.trace_id) for t in traces)
    assert all(re.fullmatch("[0-9a-f]{16}", t.span_id) for t in traces)
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's own process
        os.write(writing, trace.new_trace().trace_id.encode())
        os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    from_child = os.read(reading, 64).decode()
    os.close(reading)
    assert re.fullmatch("[0-9a-f]{32}", from_child)
    assert from_child != trace.new_trace().trace_id
