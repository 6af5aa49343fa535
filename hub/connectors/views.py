"""What the exchange's routes answer: proofs as their department sees them, holder records,
pages of the changes feed, and the delivery administration's circuits and dead letters.

Each answer is a `ClosedView` (no field more than it promises), but a holder record
(hub.publishing.views).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from hub.auth.domain import Department
from hub.connectors import exchange
from hub.db import Rfc3339, rfc3339
from hub.openapi import ClosedView
from hub.permits.store import Proof
from hub.publishing.views import HolderRecord


class FiledProof(ClosedView):
    """What a department sees of a proof it filed: never whose it is."""

    id: str = Field(description="The hub's id of the proof", json_schema_extra={"format": "uuid"})
    proof_id: str = Field(min_length=1, max_length=128, description="Your own id of the proof")
    kind: str = Field(description="What it proves, e.g. employment, school-enrolment")
    valid_from: date
    valid_to: date | None = Field(description="null: open-ended")
    recorded_at: Rfc3339
    revoked_at: Rfc3339 | None = Field(description="When you revoked it; null while it counts")

    @classmethod
    def of(cls, proof: Proof) -> FiledProof:
        return cls(
            id=proof.id,
            proof_id=proof.source_proof_id,
            kind=proof.kind,
            valid_from=proof.valid_from,
            valid_to=proof.valid_to,
            recorded_at=rfc3339(proof.recorded_at),
            revoked_at=rfc3339(proof.revoked_at) if proof.revoked_at else None,
        )


class FeedPageView(ClosedView):
    records: list[HolderRecord] = Field(description="Oldest first, each as of its event")
    next: str = Field(
        pattern=f"^{exchange.CURSOR_ALPHABET}$", description="`after` of the next read"
    )
    has_more: bool = Field(description="true: read again now; false: caught up, poll later")


class DepartmentDeliveries(ClosedView):
    """`state` is `closed` (deliveries flow) or `open` (every send of its last round failed:
    one probe at a time goes, at `next_probe_at`); `backlog` counts pending deliveries."""

    department: Department
    state: Literal["closed", "open"]
    failed_rounds: int = Field(ge=0)
    open_since: Rfc3339 | None
    next_probe_at: Rfc3339 | None
    last_success_at: Rfc3339 | None
    last_failure_at: Rfc3339 | None
    last_error: str | None
    backlog: int = Field(ge=0)
    oldest_pending_age_seconds: int | None = Field(ge=0)
    dead_letters: int = Field(ge=0)


class DeadLetter(ClosedView):
    """A delivery that gave up. `waiting_behind`: the holder's later deliveries to the
    department, held back until this one is replayed and delivered."""

    event_seq: int = Field(ge=1)
    event_type: str
    department: Department
    permit_id: str
    attempts: int = Field(ge=0)
    last_error: str | None
    created_at: Rfc3339
    last_attempt_at: Rfc3339 | None
    waiting_behind: int = Field(ge=0)


class Replayed(ClosedView):
    replayed: int = Field(ge=0, description="Dead letters made pending again")


class FiledReport(ClosedView):
    """A third party's report as the office keeps it: on file for a registered person, or on
    the worklist (`open`) until they register."""

    id: str
    report_id: str
    status: Literal["on-file", "open", "registered"]
    report_due_on: date | None = Field(description="the last day the report was due [CF §6-8]")
    reported_late: bool
    declare_by: date | None = Field(description="the last day the person must declare [CF §10]")
