"""The verified holder record the hub publishes (subject `holder-record`), built from the
registry's rows.

Permit facts are those *after the event* (the snapshot its outbox row took in the same
transaction), so a record about an issuance says "valid" even if the permit was cancelled
before the record went out; personal data is the registration as on file when the record is
built, the latest a department can have.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final

from hub.db import json_value, rfc3339
from hub.permits.outbox import PERMIT_FIELDS
from hub.permits.store import Registration
from hub.problems import DomainProblem, Problem, Text
from hub.publishing.problems import RECORD_UNAVAILABLE

log = logging.getLogger(__name__)

HOLDER_RECORD: Final = "holder-record"
"""The subject of the record every department receives."""

HOLDER_FIELDS: Final = (
    "name",
    "sex",
    "ethnicity",
    "birth_date",
    "household_region",
    "household_address",
    "current_region",
    "current_address",
    "workplace",
    "contact",
)


class RecordUnavailable(DomainProblem):
    """A holder record cannot be produced: no holder-record version in use, a sealed ID the
    vault cannot open, or a projection that breaks the schema. A fault of the hub, never of
    the caller; nothing is sent rather than something wrong or incomplete."""

    def __init__(self, text: Text, event: str | None = None) -> None:
        super().__init__(text.en)
        self.text, self.event = text, event

    def problem(self) -> Problem:
        """Logged in full (event numbers and pointers, never personal data); the caller is
        told only that the hub failed, and which event if it was one."""
        log.error("holder record unavailable: %s", self.text.en)
        extensions = {"event": self.event} if self.event else {}
        return Problem(
            RECORD_UNAVAILABLE,
            Text("平台暂时无法生成该记录，已记录此故障", "The hub could not produce the record"),
            extensions=extensions,
        )


def holder_record(
    *,
    schema_uri: str,
    schema_version: int,
    event_seq: int,
    event_type: str,
    at: datetime,
    snapshot: dict[str, Any],
    registration: Registration,
    citizen_id: str,
) -> dict[str, Any]:
    """The whole record; each department gets its agreement's projection of it."""
    permit = {name: snapshot.get(name) for name in PERMIT_FIELDS}
    holder = {name: json_value(getattr(registration, name)) for name in HOLDER_FIELDS}
    event: dict[str, Any] = {"id": str(event_seq), "type": event_type, "at": rfc3339(at)}
    if snapshot.get("version"):
        event["permit_version"] = snapshot["version"]
    return {
        "$schema": schema_uri,
        "schema_version": schema_version,
        "event": event,
        "permit": permit,
        "holder": {"citizen_id": citizen_id, **holder},
    }
