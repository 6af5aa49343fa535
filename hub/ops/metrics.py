"""What the hub counts, for Prometheus (prometheus-client).

Counters and histograms are updated where things happen (requests, tokens, taps, deliveries,
job runs, audit appends). Under `hub serve --workers N` every worker writes them to files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess mode, chosen when the library is
first imported, so `hub serve` sets the directory before anything imports it) and /metrics,
answered by any one worker, adds them up.

What is a property of the database rather than of one process is read from it at each scrape
(hub.ops.scrape).

No label carries a holder, a client secret or a request's values: routes are labelled by their
template (/registry/v1/permits/{permit_id}), never the path a caller sent.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "hub_http_requests",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "hub_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer",
    ["method", "route"],
    buckets=_LATENCY,
)
TOKENS_ISSUED = Counter(
    "hub_oauth_tokens_issued", "Access tokens issued, by grant type", ["grant_type"]
)
TOKENS_REFUSED = Counter(
    "hub_oauth_tokens_refused", "Token requests refused, by OAuth error or throttling", ["reason"]
)
TAPS = Counter(
    "hub_taps", "Card taps decided, by department and decision", ["department", "decision"]
)
TAP_REASONS = Counter("hub_tap_denial_reasons", "Reasons given for denied taps", ["reason"])
DELIVERIES = Counter(
    "hub_deliveries",
    "Delivery attempts, by department and outcome (delivered, failed, dead)",
    ["department", "outcome"],
)
JOB_RUNS = Counter("hub_job_runs", "Daily job runs, by job and outcome", ["job", "outcome"])
JOB_DURATION = Histogram(
    "hub_job_duration_seconds",
    "How long a daily job run took",
    ["job"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
AUDIT_APPENDS = Counter("hub_audit_appends", "Audit entries appended")


def process_metrics() -> bytes:
    """This process's counters, or every worker's added up in multiprocess mode."""
    if os.environ.get(MULTIPROCESS_DIR) and values.ValueClass is not values.MutexValue:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
