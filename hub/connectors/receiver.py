"""The reference department server: what a department runs to receive the hub's webhooks.

It is also the far end of the delivery fault tests, so it keeps what it received in a SQLite
file (WAL mode) that outlives a killed process, and de-duplicates by `webhook-id` in the same
file: the hub delivers at least once, and a repeat must be recognised even after a restart.
Every repeat is counted, so a test can tell a redelivery (same id) from a record sent twice
under different ids.

What was kept is read in pages (`GET /received`, the next page named by a `Link` header) or one
delivery at a time by its webhook-id (`GET /received/{webhook_id}`: the hub's event id, so
"what did each department get for event 42" is one request per department).

The hub's signed audit checkpoints come to the same endpoint (`"type": "audit-checkpoint"`,
webhook-id `ckp_<n>`) and are kept apart, listed by `GET /checkpoints`: this receiver is a
witness that `hub audit verify --witness` asks whether the log was cut short or rewritten.

A webhook-id is unique only within the hub database that sent it (the event's sequence number),
so a store belongs to one hub database: `make reset` removes the stores with the database.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import uvicorn
from fastapi import FastAPI, Query, Request, Response

from hub import paging, problems
from hub.auth.domain import Department
from hub.clock import Clock, SystemClock
from hub.connectors.checkpoints import KIND as CHECKPOINT_KIND
from hub.connectors.signing import Reason, SignatureRefused, Verifier
from hub.edge import Edge
from hub.ops.logs import logging_config
from hub.ops.observe import Observe
from hub.problems import FieldError, Problem, ProblemType, Text

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1_048_576  # a holder record is a few kilobytes; refuse anything far larger
PAGE_DEFAULT = 100  # as the hub's changes feed: a page a person can read in a terminal
PAGE_MAX = 1_000
SIGNATURE_REFUSED = ProblemType(
    "signature-refused", 401, Text("Webhook 签名校验未通过", "Webhook signature refused")
)
SIMULATED_FAILURE = ProblemType(
    "simulated-failure", 503, Text("接收方模拟故障", "Simulated receiver failure")
)
_REASONS: dict[Reason, Text] = {
    "missing-headers": Text(
        "缺少 webhook-id、webhook-timestamp 或 webhook-signature 请求头",
        "The webhook-id, webhook-timestamp or webhook-signature header is missing",
    ),
    "malformed": Text(
        "签名请求头格式不正确，或请求体不是 UTF-8",
        "A signature header is malformed, or the body is not UTF-8",
    ),
    "stale-timestamp": Text(
        "webhook-timestamp 过旧或超前，超出允许的时间偏差",
        "The webhook-timestamp is too old or too far in the future",
    ),
    "bad-signature": Text(
        "没有与请求体相符的签名", "No signature matches the body with this department's secret"
    ),
}
_SIMULATED = Text(
    "此接收方被设置为拒收所有投递（故障测试）",
    "This receiver is set to refuse every delivery (fault test)",
)
_NO_CHECKPOINT = Text(
    "审计检查点须为 JWS 字符串", "An audit checkpoint must carry its JWS as `checkpoint`"
)
_NOT_KEPT = Text(
    "此接收方没有该 webhook-id 的投递", "No delivery with this webhook-id was kept here"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    webhook_id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL,
    duplicates INTEGER NOT NULL DEFAULT 0,
    traceparent TEXT
);
CREATE TABLE IF NOT EXISTS checkpoints (
    webhook_id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    checkpoint TEXT NOT NULL
)
"""


class Inbox:
    """The deliveries a department kept, one row per webhook-id, in arrival order (rowid).

    Each thread keeps its own connection (webhooks are taken on the event loop's thread,
    reads on the thread pool; a connection is never shared between threads, and opening one
    per request cost more than the insert).
    `BEGIN IMMEDIATE` takes the write lock before the insert, so two concurrent copies of one
    delivery (or two processes on one file) store it exactly once.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            connection.executescript(_SCHEMA)
            columns = {row[1] for row in connection.execute("PRAGMA table_info(deliveries)")}
            if "traceparent" not in columns:  # a store kept before deliveries carried it
                connection.execute("ALTER TABLE deliveries ADD COLUMN traceparent TEXT")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            # WAL with synchronous=NORMAL: a commit survives the process being killed (what
            # the fault tests do); only a power cut may lose the last ones, and the hub then
            # sends them again. An fsync per delivery would cap a receiver at the disk's rate.
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        try:
            yield connection
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def put(self, webhook_id: str, body: str, at: datetime, traceparent: str | None = None) -> bool:
        """Keep a delivery; False (and one more duplicate counted) if its id was kept before."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            inserted = connection.execute(
                "INSERT OR IGNORE INTO deliveries (webhook_id, received_at, body, traceparent)"
                " VALUES (?, ?, ?, ?)",
                (webhook_id, at.isoformat(), body, traceparent),
            ).rowcount
            if not inserted:
                connection.execute(
                    "UPDATE deliveries SET duplicates = duplicates + 1 WHERE webhook_id = ?",
                    (webhook_id,),
                )
            connection.execute("COMMIT")
        return bool(inserted)

    def keep_checkpoint(self, webhook_id: str, checkpoint: str, at: datetime) -> bool:
        """Keep an audit checkpoint; False if its id was kept before."""
        with self._connect() as connection:
            return bool(
                connection.execute(
                    "INSERT OR IGNORE INTO checkpoints (webhook_id, received_at, checkpoint)"
                    " VALUES (?, ?, ?)",
                    (webhook_id, at.isoformat(), checkpoint),
                ).rowcount
            )

    def checkpoints(self) -> list[dict[str, str]]:
        """Every audit checkpoint kept, in arrival order."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT webhook_id, received_at, checkpoint FROM checkpoints ORDER BY rowid"
            ).fetchall()
        return [
            {"webhook_id": webhook_id, "received_at": at, "checkpoint": checkpoint}
            for webhook_id, at, checkpoint in rows
        ]

    def page(self, after: str | None, limit: int) -> ReceivedPage:
        """Up to `limit` deliveries kept after the one whose webhook-id is `after` (from the
        first when None), in arrival order. NotKept if `after` was never kept here."""
        with self._connect() as connection:
            position = 0
            if after is not None:
                row = connection.execute(
                    "SELECT rowid FROM deliveries WHERE webhook_id = ?", (after,)
                ).fetchone()
                if row is None:
                    raise NotKept(after)
                position = row[0]
            rows = connection.execute(
                "SELECT webhook_id, received_at, duplicates, body, traceparent FROM deliveries"
                " WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (position, limit + 1),
            ).fetchall()
        return ReceivedPage([_entry(*row) for row in rows[:limit]], len(rows) > limit)

    def get(self, webhook_id: str) -> dict[str, Any]:
        """The delivery kept under `webhook_id`; NotKept if there is none."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT webhook_id, received_at, duplicates, body, traceparent FROM deliveries"
                " WHERE webhook_id = ?",
                (webhook_id,),
            ).fetchone()
        if row is None:
            raise NotKept(webhook_id)
        return _entry(*row)


class NotKept(LookupError):
    """No delivery with this webhook-id is in the store."""


@dataclass(frozen=True)
class ReceivedPage:
    deliveries: list[dict[str, Any]]
    more: bool
    """Whether deliveries follow the last one of this page."""


def _entry(
    webhook_id: str, received_at: str, duplicates: int, body: str, traceparent: str | None
) -> dict[str, Any]:
    return {
        "webhook_id": webhook_id,
        "received_at": received_at,
        "duplicates": duplicates,
        "traceparent": traceparent,  # the hub request that caused it (W3C Trace Context)
        "record": json.loads(body),
    }


def create_receiver(
    department: str,
    secret: str,
    store: Path,
    *,
    fail_with: int | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """A department's webhook receiver keeping deliveries in the SQLite file `store`.

    `fail_with` (fault tests) answers every webhook with that 4xx/5xx status and keeps nothing.
    `clock` judges timestamp freshness and stamps arrivals; it defaults to the system clock, so
    the hub must sign with a time within the tolerance of it.
    """
    name = Department(department).value
    if fail_with is not None and not 400 <= fail_with <= 599:
        raise ValueError(f"fail_with must be a 4xx or 5xx status, not {fail_with}")
    verifier = Verifier(secret)
    inbox = Inbox(store)
    timekeeper = clock or SystemClock()
    app = FastAPI(title=f"{name} webhook receiver", version="0.1.0")
    problems.install(app)
    app.add_middleware(Edge, limit=MAX_BODY_BYTES, default_language="zh-CN")
    app.add_middleware(Observe)  # its log lines carry the hub's trace id

    @app.post("/webhooks/holder-records", summary="Receive one signed holder-record delivery")
    async def holder_records(request: Request) -> dict[str, bool]:
        # Async on purpose: the hop to the thread pool cost more than the work (about half a
        # receiver's CPU per delivery). The SQLite insert is short and this process is the
        # file's only writer, so holding the event loop for it does not stall other requests.
        body = await request.body()  # the exact bytes signed
        if fail_with is not None:
            raise Problem(SIMULATED_FAILURE, _SIMULATED, status=fail_with)
        now = timekeeper.now()
        try:
            verifier.verify(body, request.headers, now)
        except SignatureRefused as refused:
            raise Problem(
                SIGNATURE_REFUSED, _REASONS[refused.reason], extensions={"reason": refused.reason}
            ) from None
        text = body.decode("utf-8")  # verify refused anything that is not UTF-8
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise Problem(problems.MALFORMED_JSON) from None
        webhook_id = request.headers["webhook-id"]
        if isinstance(document, dict) and document.get("type") == CHECKPOINT_KIND:
            checkpoint = document.get("checkpoint")
            if not isinstance(checkpoint, str):
                raise Problem(problems.VALIDATION_FAILED, _NO_CHECKPOINT)
            kept = inbox.keep_checkpoint(webhook_id, checkpoint, now)
            return {"stored": True} if kept else {"duplicate": True}
        if inbox.put(webhook_id, text, now, request.headers.get("traceparent")):
            log.info("kept delivery %s", webhook_id, extra={"webhook_id": webhook_id})
            return {"stored": True}
        return {"duplicate": True}

    @app.get(
        "/received",
        summary="Deliveries kept, in arrival order, a page at a time",
        description=(
            'The `Link` header\'s `rel="next"` URL reads the next page; without it, this '
            "page is the last. `after` is the webhook-id of the last delivery already read."
        ),
    )
    def received(
        request: Request,
        response: Response,
        after: Annotated[str | None, Query(max_length=256)] = None,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
    ) -> list[dict[str, Any]]:
        try:
            page = inbox.page(after, limit)
        except NotKept:
            raise Problem(
                problems.VALIDATION_FAILED,
                _NOT_KEPT,
                errors=[FieldError(_NOT_KEPT, parameter="after")],
            ) from None
        if page.more:
            last = page.deliveries[-1]["webhook_id"]
            response.headers.update(paging.next_link(request, last, limit))
        return page.deliveries

    @app.get(
        "/checkpoints",
        summary="The hub's signed audit checkpoints kept here, in arrival order",
        description="What `hub audit verify --witness URL` compares the hub's audit log with.",
    )
    def kept_checkpoints() -> list[dict[str, str]]:
        return inbox.checkpoints()

    @app.get("/received/{webhook_id}", summary="The delivery kept under one webhook-id")
    def received_one(webhook_id: str) -> dict[str, Any]:
        try:
            return inbox.get(webhook_id)
        except NotKept:
            raise Problem(problems.NOT_FOUND, _NOT_KEPT) from None

    @app.get("/healthz", summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "department": name}

    return app


def serve(department: str, port: int, secret: str, store: Path, host: str = "127.0.0.1") -> None:
    """Run the receiver in this process until it is stopped (one worker: one SQLite writer)."""
    app = create_receiver(department, secret, store)
    uvicorn.run(app, host=host, port=port, workers=1, access_log=False, log_config=logging_config())


def read_received(base_url: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every delivery the receiver at `base_url` kept, in arrival order, following its pages:
    what a test or a benchmark compares with what the hub sent."""
    url: str | None = f"{base_url}/received?limit={PAGE_MAX}"
    deliveries: list[dict[str, Any]] = []
    with httpx.Client(timeout=timeout) as http:
        while url is not None:
            answer = http.get(url)
            answer.raise_for_status()
            deliveries.extend(answer.json())
            url = answer.links.get("next", {}).get("url")
    return deliveries
