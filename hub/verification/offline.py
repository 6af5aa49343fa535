"""What a window agent needs to decide while the hub is out of reach, and its report after.

- **The status list**: every card serial that must be refused whatever the service (lost,
  replaced or cancelled cards, and the cards of suspended or cancelled permits), with the
  reason code the agent shows, signed by the hub's active card-issuing key as a compact JWS
  (ES256, `kid` in the header). The agent checks it with the issuing JWKS it already holds
  for card records, and must not decide by it after `next_update`.
- **Decisions made off line**: tap-decision documents (schema subject `tap-decision`), each
  with the agent's own `decision_id`, validated against the version in use, stored marked
  `offline` and audited. A repeated report changes nothing: the same id with the same content
  is a repeat; with other content (or from another window) the whole report is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from joserfc import jws
from joserfc.jwk import ECKey
from sqlmodel import Session

from hub.audit import Actor, AuditLog
from hub.auth.domain import Principal
from hub.card import issuing
from hub.clock import Clock
from hub.db import aware, rfc3339
from hub.permits.domain import PermitState
from hub.schemas import service as schemas_service
from hub.schemas.service import Registry
from hub.schemas.validation import Issue
from hub.verification import store
from hub.verification.domain import (
    STATUS_LIST_TTL,
    STATUS_LIST_TYPE,
    Catalogue,
    audit_outcome,
    refused_status,
)
from hub.verification.service import purpose_of

TAP_DECISION: Final = "tap-decision"
OFFLINE_PURPOSE: Final = "offline-verification"


@dataclass(frozen=True)
class Offline:
    """What the off-line side needs of the hub, and nothing else: the clock, the audit log,
    the schema registry reports are validated against, the service catalogue, the issuer the
    status list names and the password of the card-issuing keys that sign it. Built once per
    process (`Hub.offline`)."""

    clock: Clock
    audit: AuditLog
    schemas: Registry
    catalogue: Catalogue
    issuer: str
    card_key_password: bytes


# --- the status list ---------------------------------------------------------------------------


def status_list(session: Session, desk: Offline, caller: Principal) -> str:
    """The signed list as of now (a compact JWS), in one query; the fetch is audited with its
    size."""
    now = desk.clock.now()
    cards = {}
    for row in store.refused_cards(session):
        reason = refused_status(row.status, PermitState(row.state))
        if reason is not None:
            cards[row.serial] = reason.value
    payload = {
        "iss": desk.issuer,
        "issued_at": rfc3339(now),
        "next_update": rfc3339(now + STATUS_LIST_TTL),
        "cards": cards,
    }
    kid, private = issuing.active_signer(session, desk.card_key_password)
    header = {"alg": "ES256", "kid": kid, "typ": STATUS_LIST_TYPE}
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    token = jws.serialize_compact(header, body, ECKey.import_key(private))
    event = Actor.of(caller).did("verification.status-list", str(len(cards)), None, OFFLINE_PURPOSE)
    desk.audit.record(session, event, now)
    return token


# --- decisions made off line -------------------------------------------------------------------


class ReportInvalid(ValueError):
    """Documents that break the tap-decision schema or the hub's rules for a report, as
    (index in the report, issue); nothing of the report is stored."""

    def __init__(self, issues: list[tuple[int, Issue]], subject: str, version: int) -> None:
        super().__init__(f"{len(issues)} problem(s) in the report")
        self.issues, self.subject, self.version = issues, subject, version


class ReportConflict(Exception):
    """Decision ids reported before with other content, or by another window (indices into
    the report); nothing of the report is stored."""

    def __init__(self, indices: list[int]) -> None:
        super().__init__(f"{len(indices)} decision id(s) reported before with other content")
        self.indices = indices


@dataclass(frozen=True)
class Reported:
    """One offline decision as stored: the facts that make a repeat a repeat."""

    id: str
    card_serial: str
    service: str
    decision: str
    reasons: tuple[str, ...]
    decided_at: datetime


def report(
    session: Session, desk: Offline, caller: Principal, documents: Sequence[Any]
) -> list[bool]:
    """Store and audit the reported decisions not stored yet: True for each new one, False for
    a repeat. Raises SchemaNotInUse, ReportInvalid or ReportConflict.

    In a savepoint: two deliveries of one report may race past the "not stored yet" check on
    PostgreSQL; the loser's insert fails on the primary key, and it then compares again."""
    decisions = _parse(session, desk, caller, documents)
    try:
        with session.begin_nested():
            return _store(session, desk, caller, decisions)
    except sa.exc.IntegrityError:  # the other delivery committed first: its rows show now
        return _store(session, desk, caller, decisions)


def _parse(
    session: Session, desk: Offline, caller: Principal, documents: Sequence[Any]
) -> list[Reported]:
    version = schemas_service.exchangeable_version(session, TAP_DECISION)
    if version is None:
        raise schemas_service.SchemaNotInUse(TAP_DECISION, None)
    desk.schemas.remember(session, version)
    validator = desk.schemas.validators.get(TAP_DECISION, version.version)  # compiled once
    issues: list[tuple[int, Issue]] = []
    parsed = []
    for index, document in enumerate(documents):
        found = validator.errors(document) or _rules(desk, caller, document)
        issues.extend((index, issue) for issue in found)
        if not found:
            parsed.append(
                Reported(
                    id=str(document["decision_id"]).lower(),
                    card_serial=str(document["card_serial"]),
                    service=str(document["service_code"]),
                    decision=str(document["decision"]),
                    reasons=tuple(document["reasons"]),
                    decided_at=_instant(document["decided_at"]),
                )
            )
    if issues:
        raise ReportInvalid(issues, TAP_DECISION, version.version)
    return parsed


def _instant(text: str) -> datetime:
    """An RFC 3339 date-time the schema accepted (`t` and `z` may be lower case there, not
    for fromisoformat), in UTC: SQLite keeps a time's digits and drops its offset."""
    return datetime.fromisoformat(text.upper()).astimezone(UTC)


def _rules(desk: Offline, caller: Principal, document: dict[str, Any]) -> list[Issue]:
    """What the schema cannot say: a report is of decisions made off line, by the caller's
    own department, for services of the catalogue, of cards the hub could have issued."""
    issues = []
    if document["offline"] is not True:
        issues.append(Issue("/offline", "const", "must be true", "须为 true"))
    if document.get("department", caller.department.value) != caller.department.value:
        issues.append(Issue("/department", "const", "must be your department", "须为本部门"))
    if document["service_code"] not in desk.catalogue.services:
        issues.append(
            Issue("/service_code", "enum", "not a service of the catalogue", "不是服务目录中的服务")
        )
    if len(document["card_serial"]) > store.SERIAL_MAX:
        issues.append(
            Issue(
                "/card_serial",
                "maxLength",
                f"at most {store.SERIAL_MAX} characters",
                f"最多 {store.SERIAL_MAX} 个字符",
            )
        )
    return issues


def _store(
    session: Session, desk: Offline, caller: Principal, decisions: list[Reported]
) -> list[bool]:
    earlier = store.decisions_by_id(session, {item.id for item in decisions})
    new: dict[str, Reported] = {}
    fresh, conflicts = [], []
    for index, item in enumerate(decisions):
        row = earlier.get(item.id)
        if row is not None:
            same = row.client_id == caller.client_id and _stored(row) == item
        elif item.id in new:  # twice in this report
            same = new[item.id] == item
        else:
            new[item.id] = item
            same = True
        fresh.append(row is None and new[item.id] is item)
        if not same:
            conflicts.append(index)
    if conflicts:
        raise ReportConflict(conflicts)
    now = desk.clock.now()
    store.add_decisions(session, [_row(item, caller, now) for item in new.values()])
    holders = store.holders_of_cards(session, {item.card_serial for item in new.values()})
    actor = Actor.of(caller)
    events = [
        actor.did(
            "verification.offline",
            audit_outcome(item.decision, item.reasons),
            holders.get(item.card_serial),
            purpose_of(item.service),
        )
        for item in new.values()
    ]
    desk.audit.record_many(session, events, now)
    return fresh


def _stored(row: Any) -> Reported:
    return Reported(
        id=row.id,
        card_serial=row.card_serial,
        service=row.service,
        decision=row.decision,
        reasons=tuple(row.reasons),
        decided_at=aware(row.decided_at),
    )


def _row(item: Reported, caller: Principal, now: datetime) -> dict[str, Any]:
    return {
        "id": item.id,
        "client_id": caller.client_id,
        "department": caller.department.value,
        "service": item.service,
        "card_serial": item.card_serial,
        "decision": item.decision,
        "reasons": list(item.reasons),
        "offline": True,
        "decided_at": item.decided_at,
        "recorded_at": now,
    }
