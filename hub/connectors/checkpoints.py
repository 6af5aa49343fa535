"""Sending the audit log's signed checkpoints (hub.checkpoints) to the departments.

Each push department gets every checkpoint, oldest first, at its webhook endpoint, signed per
Standard Webhooks with its secret like a holder record, as `{"type": "audit-checkpoint",
"checkpoint": <JWS>}` under webhook-id `ckp_<id>`. What a department has acknowledged is kept
as its high-water mark (`audit_checkpoint_sent`); at its first failure the run moves on to the
next department, and the next run starts again from the mark, so a department that was down
receives every checkpoint it missed, in order. A repeat (two processes sending at once, or a
lost acknowledgement) carries the same webhook-id, which the receiver de-duplicates.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel

from hub import checkpoints
from hub.clock import Clock
from hub.connectors.config import DepartmentLink
from hub.connectors.signing import Signer
from hub.db import unit_of_work

log = logging.getLogger(__name__)
BATCH = 500  # checkpoints sent to one department per run (a day's at five-minute intervals)
KIND = "audit-checkpoint"


class CheckpointSent(SQLModel, table=True):
    """How far a department has acknowledged the checkpoints."""

    __tablename__ = "audit_checkpoint_sent"

    department: str = Field(primary_key=True, max_length=64)
    last_id: int = 0
    attempted_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    last_error: str | None = Field(default=None, max_length=512)


def body_of(checkpoint: checkpoints.AuditCheckpoint) -> bytes:
    return json.dumps({"type": KIND, "checkpoint": checkpoint.token}).encode()


def publish(
    engine: Engine, clock: Clock, links: Mapping[str, DepartmentLink], client: httpx.Client
) -> dict[str, int]:
    """Send each push department the checkpoints it has not acknowledged; returns how many
    each acknowledged in this run."""
    acknowledged: dict[str, int] = {}
    for department, link in sorted(links.items()):
        if not link.pushes:
            continue
        with Session(engine) as session:
            mark = session.get(CheckpointSent, department)
            last = mark.last_id if mark is not None else 0
            pending = checkpoints.after(session, last, BATCH)
        if not pending:
            continue
        try:
            signer = Signer(link.secret())
        except ValueError as missing:  # its secret is not in this process's environment
            log.warning("audit checkpoints to %s not sent: %s", department, missing)
            continue
        error, count = None, 0
        for checkpoint in pending:
            body = body_of(checkpoint)
            headers = signer.headers(f"ckp_{checkpoint.id}", body, clock.now())
            try:
                answer = client.post(link.endpoint, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
                break
            if not answer.is_success:
                error = f"HTTP {answer.status_code}"
                break
            last, count = checkpoint.id, count + 1
        with unit_of_work(engine) as session:
            mark = session.get(CheckpointSent, department) or CheckpointSent(
                department=department, attempted_at=clock.now()
            )
            mark.last_id, mark.attempted_at, mark.last_error = (
                max(last, mark.last_id),
                clock.now(),
                error,
            )
            session.add(mark)
        if error is not None:
            log.warning("audit checkpoints to %s wait for the next run: %s", department, error)
        acknowledged[department] = count
    return acknowledged
