"""Use cases of applying for a permit and of recording department proofs (service layer).

Split from service.py, which holds the lifecycle of an existing permit. An application is
assessed against the jurisdiction's rules and the proofs on file; accepted, it becomes a
permit in state `accepted` with a receipt number and an issuance deadline [CF §16-§17].
Every assessment is audited, the refused ones included.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditLog
from hub.permits import eligibility
from hub.permits.jurisdictions import ConditionKind, Jurisdiction
from hub.permits.problems import CLAIM_INVALID, PERMIT_EXISTS, PROOF_CONFLICT
from hub.permits.service import (
    REGISTRY_PURPOSE,
    Lifecycle,
    RegistrationNotFound,
    audit_disclosure,
    record_event,
)
from hub.permits.store import LIVE_STATES, Permit, Proof, Registration
from hub.problems import DomainProblem, Problem, Text


class PermitExists(DomainProblem):
    """One person, one permit [CF §17]: the holder already has a live permit."""

    def __init__(self, permit_id: str) -> None:
        super().__init__(permit_id)
        self.permit_id = permit_id

    def problem(self) -> Problem:
        return Problem(
            PERMIT_EXISTS,
            Text("一人一证：此人已持有有效居住证", "One person, one permit: a live one exists"),
            extensions={"permit_id": self.permit_id, "cite": "[CF §17]"},
        )


class ProofInvalid(DomainProblem, ValueError):
    """A proof the registry cannot record as sent, in both languages, naming the field."""

    def __init__(self, pointer: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en
        self.at(pointer)

    def problem(self) -> Problem:
        text = Text(self.zh, self.en)
        return Problem(CLAIM_INVALID, text, errors=self.field_errors(text))


@dataclass(frozen=True)
class Claim:
    """What the applicant brings to the window."""

    condition: ConditionKind | None
    form: str | None
    exemption: str | None
    materials: frozenset[str]


def proofs_on_file(session: Session, citizen_id_hash: str) -> list[eligibility.ProofOnFile]:
    query = select(Proof).where(
        col(Proof.citizen_id_hash) == citizen_id_hash, col(Proof.revoked_at).is_(None)
    )
    return [
        eligibility.ProofOnFile(
            kind=proof.kind,
            source_department=proof.source_department,
            valid_from=proof.valid_from,
            valid_to=proof.valid_to,
            details=proof.details,
        )
        for proof in session.exec(query)
    ]


def _receipt_number(place: Jurisdiction, today: date) -> str:
    return f"{place.code[:2].upper()}{today:%Y%m%d}{secrets.token_hex(4).upper()}"


def apply_for_permit(
    session: Session,
    lifecycle: Lifecycle,
    places: Mapping[str, Jurisdiction],
    registration_id: str,
    claim: Claim,
    *,
    actor: Actor,
    now: datetime,
    today: date,
) -> tuple[eligibility.Outcome, Permit | None]:
    """Assess the application; on acceptance create the permit, its event and outbox row.

    Raises RegistrationNotFound, eligibility.ClaimInvalid (nothing to assess: nothing audited)
    and PermitExists."""
    registration = session.get(Registration, registration_id)
    if registration is None:
        raise RegistrationNotFound(registration_id)
    place: Jurisdiction = places[registration.jurisdiction]
    facts = eligibility.ApplicationFacts(
        household_region=registration.household_region,
        residence_region=registration.current_region,
        residence_start=registration.residence_start,
        claimed_condition=claim.condition,
        claimed_form=claim.form,
        exemption=claim.exemption,
        materials_presented=claim.materials,
        proofs=proofs_on_file(session, registration.citizen_id_hash),
    )
    outcome = eligibility.assess(place, facts, today)
    if not isinstance(outcome, eligibility.Accepted):
        kind = "incomplete" if isinstance(outcome, eligibility.Incomplete) else outcome.code
        event = actor.did(
            "application.assess", f"refused:{kind}", registration.citizen_id_hash, REGISTRY_PURPOSE
        )
        lifecycle.audit.record(session, event, now)
        return outcome, None
    live = session.exec(
        select(Permit.id).where(
            col(Permit.citizen_id_hash) == registration.citizen_id_hash,
            col(Permit.state).in_(LIVE_STATES),
        )
    ).first()
    if live is not None:
        raise PermitExists(live)
    deadline = place.issuance.deadline.within.due_after(today, lifecycle.calendar)
    permit = Permit(
        id=str(uuid.uuid4()),
        registration_id=registration.id,
        jurisdiction=place.code,
        citizen_id_hash=registration.citizen_id_hash,
        state="accepted",
        receipt_number=_receipt_number(place, today),
        accepted_on=today,
        issue_due_on=deadline.due,
        residence_start=outcome.residence_start or registration.residence_start,
        updated_at=now,
    )
    session.add(permit)
    try:
        session.flush()  # the partial unique index is the arbiter between two windows
    except sa.exc.IntegrityError:
        raise PermitExists("(concurrent application)") from None
    payload = {
        "on": today.isoformat(),
        "receipt_number": permit.receipt_number,
        "issue_due_on": deadline.due.isoformat(),
        "condition": outcome.condition,
        "form": outcome.form,
        "met_by": outcome.met_by,
        "exemption": outcome.exemption,
        "residence_start": permit.residence_start.isoformat(),
    }
    record_event(session, lifecycle.audit, permit, "accept", payload, actor, now)
    return outcome, permit


def overdue_issuance(
    session: Session,
    audit: AuditLog,
    today: date,
    *,
    after: tuple[date, str] | None,
    limit: int,
    actor: Actor,
    now: datetime,
) -> tuple[list[Permit], bool]:
    """A page of the accepted permits past their issuance deadline [CF §17], oldest deadline
    first (then by id), after the (deadline, id) of the page before; whether more follow. The
    read is audited for each holder listed."""
    query = select(Permit).where(col(Permit.state) == "accepted", col(Permit.issue_due_on) < today)
    if after is not None:
        query = query.where(sa.tuple_(col(Permit.issue_due_on), col(Permit.id)) > sa.tuple_(*after))
    ordered = query.order_by(col(Permit.issue_due_on), col(Permit.id)).limit(limit + 1)
    permits = list(session.exec(ordered).all())
    page = permits[:limit]
    holders = [permit.citizen_id_hash for permit in page]
    audit_disclosure(session, audit, "permit.overdue", holders, actor=actor, now=now)
    return page, len(permits) > limit


@dataclass(frozen=True)
class ProofInput:
    citizen_id_hash: str
    kind: str
    source_department: str
    source_proof_id: str
    valid_from: date
    valid_to: date | None
    details: dict[str, Any]


class ProofConflict(DomainProblem):
    """The department's proof id was recorded before with other content. The id is not
    repeated to the caller: a social-insurance number is the citizen ID."""

    def problem(self) -> Problem:
        text = Text(
            "该证明编号已登记为其他内容", "This proof id was recorded before with other content"
        )
        return Problem(
            PROOF_CONFLICT, text, errors=self.field_errors(Text("编号已使用", "already used"))
        )


def check_repeat(existing: Proof, data: ProofInput) -> None:
    """A proof filed again under its (department, proof id) must carry exactly what was filed;
    ProofConflict otherwise. The one rule for repeats, whoever files them."""
    same = (
        existing.citizen_id_hash,
        existing.kind,
        existing.valid_from,
        existing.valid_to,
        existing.details,
    ) == (data.citizen_id_hash, data.kind, data.valid_from, data.valid_to, data.details)
    if not same:
        raise ProofConflict(data.source_proof_id)


def record_proof(
    session: Session, audit: AuditLog, data: ProofInput, *, actor: Actor, now: datetime
) -> tuple[Proof, bool]:
    """Record a proof on file, idempotent by (department, proof id); True if it is new.

    Staff record proofs now; department connectors will call the same use case.
    """
    kind = eligibility.PROOF_KINDS.get(data.kind)
    if kind is None:
        known = sorted(eligibility.PROOF_KINDS)
        raise ProofInvalid(
            "/kind",
            f"没有“{data.kind}”这种证明；可登记的证明：{'、'.join(known)}",
            f"There is no proof kind {data.kind!r}; the kinds: {', '.join(known)}",
        )
    if data.source_department not in kind.owners:
        owners = sorted(kind.owners)
        raise ProofInvalid(
            "/source_department",
            f"{data.kind} 证明由 {'、'.join(owners)} 出具，不由 {data.source_department} 出具",
            f"A {data.kind} proof comes from {', '.join(owners)}, not {data.source_department}",
        )
    if data.valid_to is not None and data.valid_to < data.valid_from:
        raise ProofInvalid("/valid_to", "有效期截止日早于起始日", "valid_to is before valid_from")
    existing = session.exec(
        select(Proof).where(
            col(Proof.source_department) == data.source_department,
            col(Proof.source_proof_id) == data.source_proof_id,
        )
    ).first()
    if existing is not None:
        check_repeat(existing, data)
        return existing, False
    proof = Proof(
        id=str(uuid.uuid4()),
        citizen_id_hash=data.citizen_id_hash,
        kind=data.kind,
        source_department=data.source_department,
        source_proof_id=data.source_proof_id,
        valid_from=data.valid_from,
        valid_to=data.valid_to,
        details=data.details,
        recorded_by=actor.client_id,
        recorded_at=now,
    )
    session.add(proof)
    audit.record(
        session, actor.did("proof.record", data.kind, data.citizen_id_hash, "eligibility"), now
    )
    return proof, True
