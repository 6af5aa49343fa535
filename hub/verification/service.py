"""Use cases of a tap at a service window (no FastAPI): the challenge, then the decision. Each
runs in the caller's unit of work, one short transaction; what the window agent needs off line
is in `hub.verification.offline`.

Reading the card record (BER-TLV decoding in Python: about 0.5 ms for a record with a 12 KB
photo) and checking the hub's signature over it (another 0.4 ms) would cost as much as the
rest of the tap's own work. Both depend only on the record's bytes, and a card presents the
same bytes at every tap until it is rewritten, so a record that decoded and verified is
remembered by its SHA-256 (`RecordMemo`). The card's signature over the challenge is checked
every time: that is the proof the card is not a copy.

What is disclosed on a grant is exactly what the exchange would send the department: the
holder record a look-up would give (`hub.publishing`), projected by the department's
agreement in force and validated against the holder-record version in use, both as this
process remembers them (`hub.publishing.terms`); without an agreement in force nothing is
disclosed, and the decision stands.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session

from hub.audit import Actor, AuditLog
from hub.auth.domain import Principal
from hub.card import layout
from hub.card.issuing import IssuingKeyCache
from hub.card.protocol import proves_possession
from hub.clock import Clock
from hub.permits.domain import PermitState
from hub.permits.identity import CitizenIdUnreadable, CitizenIdVault
from hub.permits.store import Permit, Registration
from hub.publishing.publisher import OnDemand, Publisher
from hub.publishing.records import RecordUnavailable
from hub.publishing.terms import Refusal
from hub.text import Text
from hub.verification import challenges, store
from hub.verification.domain import (
    Catalogue,
    Decision,
    Reason,
    Service,
    Standing,
    assess,
    audit_outcome,
    decision_of,
)

TAP_ACTION: Final = "verification.tap"


class UnknownService(LookupError):
    """A service code the catalogue does not list: a fault of the request, not a denial."""


def purpose_of(service: str) -> str:
    """The audit purpose of a decision: the service the holder asked for."""
    return f"service:{service}"


# --- challenges --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """What deciding a tap needs of the hub, and nothing else: the clock, the audit log, the
    key challenges are made and checked with, the service catalogue, the card-issuing keys,
    the publisher of holder records and the vault that opens a holder's sealed ID. Built
    once per process (`Hub.verification`)."""

    clock: Clock
    audit: AuditLog
    challenge_key: bytes
    catalogue: Catalogue
    issuing_keys: IssuingKeyCache
    publisher: Publisher
    vault: CitizenIdVault


def issue_challenge(desk: Verification, caller: Principal) -> challenges.Challenge:
    """A fresh challenge for the caller's next tap; good once, for CHALLENGE_TTL. Nothing is
    stored (hub.verification.challenges)."""
    return challenges.make(desk.challenge_key, caller.client_id, desk.clock.now())


# --- the card record ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)  # one object per memo entry for the collector, not two
class Vouched:
    """What the hub's signature on a record vouches for, as far as a tap needs it."""

    serial: str
    card_key: bytes
    kid: str
    issuing_key: ec.EllipticCurvePublicKey


class RecordMemo:
    """Records already decoded and verified, by the SHA-256 of their bytes.

    Safe because the outcome depends only on the bytes and on the issuing key named by their
    kid, which never changes: an entry is used only while `IssuingKeyCache` still gives the
    very key object it was verified with (so a hub with other keys, as in tests, re-checks).
    Bounded: when full it starts again, like the token cache."""

    def __init__(self, size: int = 50_000) -> None:
        self._size = size
        self._seen: dict[bytes, Vouched] = {}
        self._lock = threading.Lock()

    def check(self, session: Session, keys: IssuingKeyCache, data: bytes) -> Vouched | Reason:
        digest = hashlib.sha256(data).digest()
        seen = self._seen.get(digest)
        if seen is not None and keys.public_key(session, seen.kid) is seen.issuing_key:
            return seen
        try:
            signed = layout.decode(data)
        except (ValueError, OverflowError):  # MalformedRecord, or the BER-TLV library's own
            return Reason.RECORD_MALFORMED
        key = keys.public_key(session, signed.kid)
        if key is None or not signed.verify(key):
            return Reason.RECORD_FORGED
        vouched = Vouched(signed.record.card.serial, signed.record.card_key, signed.kid, key)
        with self._lock:
            if len(self._seen) >= self._size:
                self._seen.clear()
            self._seen[digest] = vouched
        return vouched


RECORDS: Final = RecordMemo()


# --- taps --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tap:
    challenge_id: uuid.UUID
    service: str
    record: bytes
    card_signature: bytes


@dataclass(frozen=True)
class Examined:
    """What a tap found: the reasons to deny and, once the card is known, whose it is."""

    reasons: list[Reason]
    serial: str | None = None
    permit: Permit | None = None
    registration: Registration | None = None


@dataclass(frozen=True)
class TapDecision:
    tap_id: str
    decision: Decision
    reasons: list[Reason]
    service: Service
    decided_at: datetime
    holder: dict[str, Any] | None = None


def tap(session: Session, desk: Verification, caller: Principal, request: Tap) -> TapDecision:
    """Decide a tap, record the decision and audit it. Denials are answers, not errors:
    the challenge stays consumed and the audit entry commits with them."""
    service = desk.catalogue.services.get(request.service)
    if service is None:
        raise UnknownService(request.service)
    now, today = desk.clock.now(), desk.clock.today()
    tap_id = str(uuid.uuid4())
    found = examine(session, desk, caller, service, request, now, today)
    decision = decision_of(found.reasons)
    holder = None
    if decision is Decision.GRANT and found.permit and found.registration:
        holder = disclosed(session, desk, caller, found.permit, found.registration, tap_id, now)
    row = {
        "id": tap_id,
        "client_id": caller.client_id,
        "department": caller.department.value,
        "service": service.code,
        "card_serial": found.serial,
        "decision": decision.value,
        "reasons": [reason.value for reason in found.reasons],
        "offline": False,
    }
    subject = found.permit.citizen_id_hash if found.permit else None
    outcome = audit_outcome(decision, found.reasons)
    event = Actor.of(caller).did(TAP_ACTION, outcome, subject, purpose_of(service.code))
    desk.audit.record(session, event, now, alongside=store.decision_insert(session, row, now))
    return TapDecision(tap_id, decision, found.reasons, service, now, holder)


def examine(
    session: Session,
    desk: Verification,
    caller: Principal,
    service: Service,
    request: Tap,
    now: datetime,
    today: date,
) -> Examined:
    """The checks of a tap in their order (see hub.verification.domain)."""
    challenge = challenges.check(desk.challenge_key, caller.client_id, request.challenge_id, now)
    if isinstance(challenge, Reason):
        return Examined([challenge])
    if not store.use_challenge(session, challenge, caller.client_id, now):
        return Examined([Reason.CHALLENGE_USED])
    nonce = challenge.nonce
    vouched = RECORDS.check(session, desk.issuing_keys, request.record)
    if isinstance(vouched, Reason):
        return Examined([vouched])
    serial = vouched.serial
    found = store.card_with_permit(session, serial)
    if found is None:
        return Examined([Reason.CARD_UNKNOWN], serial)
    card, permit, registration = found
    if card.public_key is None:  # made, but never personalised
        return Examined([Reason.CARD_UNKNOWN], serial, permit)
    if card.public_key != vouched.card_key:
        return Examined([Reason.CARD_KEY_MISMATCH], serial, permit)
    if not proves_possession(card.public_key, nonce, request.card_signature):
        return Examined([Reason.CARD_NOT_GENUINE], serial, permit)
    standing = Standing(
        card_status=card.status,
        permit_state=PermitState(permit.state),
        expires_on=permit.expires_on,
        residence_start=permit.residence_start,
        jurisdiction=permit.jurisdiction,
    )
    reasons = assess(service, caller.department, standing, today)
    return Examined(reasons, serial, permit, registration)


def disclosed(
    session: Session,
    desk: Verification,
    caller: Principal,
    permit: Permit,
    registration: Registration,
    tap_id: str,
    now: datetime,
) -> dict[str, Any] | None:
    """The holder record as the caller's department's agreement in force lets it see it;
    None without one. Raises RecordUnavailable when the hub cannot build it."""
    department, today = caller.department, desk.clock.today()
    agreement = desk.publisher.agreement_in_force(session, department, today)
    if isinstance(agreement, Refusal):
        return None
    try:
        citizen_id = desk.vault.open(registration.citizen_id_sealed).value
    except CitizenIdUnreadable as unreadable:
        raise RecordUnavailable(
            Text(
                f"核验 {tap_id} 的身份证号无法解密",
                f"the citizen ID of tap {tap_id} cannot be read ({unreadable})",
            ),
        ) from None
    request = OnDemand("tap", f"tap-{tap_id}", now, today)
    return desk.publisher.on_demand(session, request, agreement, permit, registration, citizen_id)
