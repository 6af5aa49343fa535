"""Use cases of the permit lifecycle: one function per action, one transaction each.

Each change locks the permit row, checks the caller's version (so two windows cannot
overwrite each other), asks the domain's state machine, and writes the new state, a
`permit_event`, an `outbox` row and an audit entry together: nothing is published that was
not committed, and nothing committed goes unpublished.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub import bulk
from hub.audit import Actor, AuditLog
from hub.card.store import Card
from hub.clock import WorkingCalendar
from hub.db import json_value
from hub.ops import trace
from hub.permits import domain, jurisdictions
from hub.permits.identity import CitizenId, CitizenIdVault
from hub.permits.outbox import OUTBOX, permit_snapshot, snapshot_sql
from hub.permits.problems import (
    ADDRESS_REFUSED,
    PERMIT_NOT_FOUND,
    REGISTRATION_NOT_FOUND,
    REGISTRATION_REFUSED,
)
from hub.permits.store import (
    LIVE_STATES,
    Outbox,
    Permit,
    PermitEvent,
    Registration,
    ThirdPartyReport,
    registration_insert,
)
from hub.problems import DomainProblem, Problem, Stale, Text


class PermitNotFound(DomainProblem, LookupError):
    """No permit by this id. The id is not repeated to the caller: it may be a citizen ID
    typed in the wrong place."""

    def problem(self) -> Problem:
        return Problem(
            PERMIT_NOT_FOUND, Text("没有这个编号的居住证", "There is no permit by this id")
        )


class RegistrationNotFound(DomainProblem, LookupError):
    """No registration by this id (not repeated, as for a permit)."""

    def problem(self) -> Problem:
        return Problem(
            REGISTRATION_NOT_FOUND,
            Text("没有这个编号的居住登记", "There is no registration by this id"),
        )


REGISTRY_PURPOSE: Final = "registry"
"""The audit purpose of what acceptance offices do in the registry. Their duty is set by law
(公安机关负责居住登记、居住证受理、发放和管理 [CF §5]) and the registry scopes are theirs alone, so
no purpose is asked of the caller: the same for every route, whose audited action says what
was done or read."""


@dataclass(frozen=True)
class Lifecycle:
    """What the registry's use cases need of the process besides a session and the caller:
    the audit log every change is entered in, each jurisdiction's lifecycle rules (derived
    once per process) and the official working-day calendar deadlines are counted on. The
    composition root builds one (`Hub.lifecycle`); a test builds one from rules of its own."""

    audit: AuditLog
    rules_for: Callable[[str], domain.LifecycleRules]
    calendar: WorkingCalendar


class StaleWrite(Stale):
    """The caller changed a version of the permit that is no longer the current one."""

    wording = Text(
        "居住证已是第 {version} 版，请重新读取后再办理",
        "The permit is now at version {version}: read it again",
    )


# The card each action makes (the reason recorded on it) and what becomes of the live one.
NEW_CARD = {
    domain.Action.ISSUE: "first-issuance",
    domain.Action.REPLACE: "replacement",
    domain.Action.RENEW: "renewal",
}
CARD_ENDING = {
    domain.Action.REPLACE: "lost",
    domain.Action.CANCEL: "cancelled",
    domain.Action.SETTLE: "cancelled",
}


def _card_ending(action: domain.Action, fees: domain.CardFees) -> str:
    if action is domain.Action.RENEW:
        return "returned" if fees.old_card_returned_on_renewal else "superseded"
    return CARD_ENDING.get(action, "")


def facts_of(permit: Permit | sa.Row[Any]) -> domain.PermitFacts:
    return domain.PermitFacts(
        state=domain.PermitState(permit.state),
        residence_start=permit.residence_start,
        valid_from=permit.valid_from,
        expires_on=permit.expires_on,
        suspended_on=permit.suspended_on,
    )


def _lock(session: Session, permit_id: str) -> Permit:
    """The row lock serialises concurrent changes on PostgreSQL; SQLite's BEGIN IMMEDIATE
    already serialises every writer."""
    permit = session.exec(
        select(Permit).where(col(Permit.id) == permit_id).with_for_update()
    ).first()
    if permit is None:
        raise PermitNotFound(permit_id)
    return permit


def new_card_serial(jurisdiction: str, today: date) -> str:
    return f"{jurisdiction[:2].upper()}{today:%y}{secrets.token_hex(6).upper()}"


def _change_cards(
    session: Session,
    permit: Permit,
    action: domain.Action,
    today: date,
    fees: domain.CardFees,
) -> dict[str, Any]:
    """End the live card and make the new one, as the action requires, charging what the
    jurisdiction's fees say [CF §21]; say what happened."""
    change: dict[str, Any] = {}
    ending = _card_ending(action, fees)
    if ending and permit.card_serial:
        old = session.get(Card, permit.card_serial)
        if old is not None:
            old.status, old.ended_on = ending, today
            session.add(old)
        change["old_card"] = {"serial": permit.card_serial, "status": ending}
        permit.card_serial = None
    reason = NEW_CARD.get(action)
    if reason is not None:
        fee, cite = fees.charges[reason]
        serial = new_card_serial(permit.jurisdiction, today)
        session.add(
            Card(
                serial=serial,
                permit_id=permit.id,
                status="live",
                reason=reason,
                fee=fee,
                issued_on=today,
            )
        )
        permit.card_serial = serial
        change["new_card"] = {"serial": serial, "reason": reason, "fee": fee, "cite": cite}
    return change


def record_event(
    session: Session,
    audit: AuditLog,
    permit: Permit,
    event_type: str,
    payload: dict[str, Any],
    actor: Actor,
    now: datetime,
) -> PermitEvent:
    """The event, its outbox row and its audit entry, in the caller's transaction."""
    event = PermitEvent(
        permit_id=permit.id,
        type=event_type,
        payload=payload,
        state_after=permit.state,
        actor_client_id=actor.client_id,
        at=now,
    )
    session.add(event)
    session.flush()
    assert event.seq is not None
    outbox = Outbox(
        event_seq=event.seq,
        permit_id=permit.id,
        created_at=now,
        snapshot=permit_snapshot(permit),
        trace_id=trace.current_trace_id(),
    )
    session.add(outbox)
    audit.record(
        session,
        actor.did(f"permit.{event_type}", permit.state, permit.citizen_id_hash, REGISTRY_PURPOSE),
        now,
    )
    return event


def perform(
    session: Session,
    lifecycle: Lifecycle,
    permit_id: str,
    action: domain.Action,
    *,
    expected_version: int,
    actor: Actor,
    now: datetime,
    today: date,
    details: dict[str, Any] | None = None,
) -> tuple[Permit, PermitEvent]:
    """Apply one lifecycle action under the rules of the permit's jurisdiction; raise
    PermitNotFound, StaleWrite or MoveRefused."""
    permit = _lock(session, permit_id)
    if permit.version != expected_version:
        raise StaleWrite(permit.version)
    rules = lifecycle.rules_for(permit.jurisdiction)
    transition = domain.move(facts_of(permit), action, today, rules)
    return _commit_transition(
        session,
        lifecycle.audit,
        permit,
        transition,
        rules.card_fees,
        actor=actor,
        now=now,
        today=today,
        details=details,
    )


def _commit_transition(
    session: Session,
    audit: AuditLog,
    permit: Permit,
    transition: domain.Transition,
    fees: domain.CardFees,
    *,
    actor: Actor,
    now: datetime,
    today: date,
    details: dict[str, Any] | None,
) -> tuple[Permit, PermitEvent]:
    after = transition.after
    permit.state = after.state.value
    permit.valid_from, permit.expires_on = after.valid_from, after.expires_on
    permit.suspended_on, permit.residence_start = after.suspended_on, after.residence_start
    card_change = _change_cards(session, permit, transition.action, today, fees)
    payload = _event_payload(transition, today, {**card_change, **(details or {})})
    if after.state is domain.PermitState.CANCELLED:
        permit.cancel_reason = str((details or {}).get("reason", transition.action.value))
    permit.version += 1
    permit.updated_at = now
    session.add(permit)
    event = record_event(session, audit, permit, transition.action.value, payload, actor, now)
    return permit, event


def _event_payload(
    transition: domain.Transition, today: date, details: Mapping[str, Any]
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "on": today.isoformat(),
        "from_state": transition.before.value,
        **details,
    }
    if transition.residence_restarted:
        payload["residence_restarted_on"] = transition.after.residence_start.isoformat()
    return payload


PERMIT: sa.Table = Permit.__table__  # type: ignore[attr-defined]
EVENT: sa.Table = PermitEvent.__table__  # type: ignore[attr-defined]

FACT_FIELDS = [field.name for field in fields(domain.PermitFacts)]


def _stored_fact(value: Any) -> Any:
    return value.value if isinstance(value, domain.PermitState) else value


CLAIM_COLUMNS = (
    col(Permit.id),
    col(Permit.jurisdiction),
    col(Permit.citizen_id_hash),
    col(Permit.state),
    col(Permit.residence_start),
    col(Permit.valid_from),
    col(Permit.expires_on),
    col(Permit.suspended_on),
)
"""What `perform_claimed` needs of each permit; claim rows with these, under a row lock."""


def perform_claimed(
    session: Session,
    lifecycle: Lifecycle,
    claimed: Sequence[sa.Row[Any]],
    action: domain.Action,
    *,
    actor: Actor,
    now: datetime,
    today: date,
    details: Mapping[str, Any],
) -> list[tuple[str, domain.MoveRefused]]:
    """`perform` for many permits at once, for jobs: the same state machine and the same
    writes (state, event, outbox row, audit entry per permit), as a handful of set-based
    statements instead of five per permit, so a sweep over a million permits takes seconds
    per hundred thousand rather than minutes.

    `claimed` are rows of CLAIM_COLUMNS that the caller has locked in this transaction, so
    no version check is needed. Actions that change cards are refused (they need `perform`).
    Returns the permits the state machine refused, untouched, with the refusal.
    """
    if action in NEW_CARD or action in CARD_ENDING:
        raise ValueError(f"{action} changes cards: use perform()")
    moves, refused = [], []
    for row in claimed:
        before = facts_of(row)
        try:
            moves.append(
                (
                    row,
                    before,
                    domain.move(before, action, today, lifecycle.rules_for(row.jurisdiction)),
                )
            )
        except domain.MoveRefused as refusal:
            refused.append((row.id, refusal))
    if not moves:
        return refused
    changed = [
        name
        for name in FACT_FIELDS
        if any(getattr(t.after, name) != getattr(before, name) for _, before, t in moves)
    ]
    permits = [
        {"id": row.id, **{name: _stored_fact(getattr(t.after, name)) for name in changed}}
        for row, _, t in moves
    ]
    bulk.update_rows(
        session, PERMIT, "id", permits, constants={"updated_at": now}, increment=["version"]
    )
    payloads: dict[tuple[Any, ...], dict[str, Any]] = {}

    def payload(transition: domain.Transition) -> dict[str, Any]:
        """Most moves of a batch share one payload: build it once."""
        restart = transition.residence_restarted and transition.after.residence_start
        key = (transition.before, restart)
        if key not in payloads:
            payloads[key] = _event_payload(transition, today, details)
        return payloads[key]

    events = [
        {"permit_id": row.id, "payload": payload(t), "state_after": t.after.state.value}
        for row, _, t in moves
    ]
    written = bulk.insert_rows(
        session,
        EVENT,
        events,
        constants={"type": action.value, "actor_client_id": actor.client_id, "at": now},
        returning=["seq", "permit_id"],
    )
    # The snapshot is the permit row as just updated, built by the database: in Python it
    # cost a tenth of the sweep's time.
    bulk.insert_rows(
        session,
        OUTBOX,
        [{"event_seq": new.seq, "permit_id": new.permit_id} for new in written],
        constants={"created_at": now, "trace_id": trace.current_trace_id()},
        computed={"snapshot": snapshot_sql(session.get_bind().dialect)},
        join="JOIN permit ON permit.id = v.permit_id",
    )
    entries = [
        actor.did(
            f"permit.{action.value}", t.after.state.value, row.citizen_id_hash, REGISTRY_PURPOSE
        )
        for row, _, t in moves
    ]
    lifecycle.audit.record_many(session, entries, now)
    return refused


def audit_disclosure(
    session: Session,
    audit: AuditLog,
    what: str,
    holders: Sequence[str],
    *,
    actor: Actor,
    now: datetime,
) -> None:
    """Every read of personal data is audited [CF §28, §30]: one `<what>.read` entry per holder
    a read disclosed, the keyed hash of their ID as subject, in the read's transaction."""
    events = [
        actor.did(f"{what}.read", "disclosed", holder, REGISTRY_PURPOSE) for holder in holders
    ]
    audit.record_many(session, events, now)


def permit_of(session: Session, permit_id: str) -> Permit:
    """The permit by its id; PermitNotFound if there is none."""
    permit = session.get(Permit, permit_id)
    if permit is None:
        raise PermitNotFound(permit_id)
    return permit


def read_permit(
    session: Session, audit: AuditLog, permit_id: str, what: str, *, actor: Actor, now: datetime
) -> Permit:
    """The permit, for a read of `what` (its view, events, residence) that is audited; raise
    PermitNotFound."""
    permit = permit_of(session, permit_id)
    audit_disclosure(session, audit, what, [permit.citizen_id_hash], actor=actor, now=now)
    return permit


def events_of(
    session: Session, permit_id: str, *, after: int = 0, limit: int | None = None
) -> list[PermitEvent]:
    """The permit's events after the `seq` given, oldest first, at most `limit`."""
    permit_of(session, permit_id)
    query = select(PermitEvent).where(
        col(PermitEvent.permit_id) == permit_id, col(PermitEvent.seq) > after
    )
    return list(session.exec(query.order_by(col(PermitEvent.seq)).limit(limit)).all())


def view(permit: Permit) -> dict[str, Any]:
    """The registry's view of a permit (no citizen ID, clear or hashed)."""
    facts = asdict(facts_of(permit))
    return {
        "id": permit.id,
        "jurisdiction": permit.jurisdiction,
        "receipt_number": permit.receipt_number,
        "accepted_on": permit.accepted_on.isoformat(),
        "issue_due_on": permit.issue_due_on.isoformat(),
        "card_serial": permit.card_serial,
        "cancel_reason": permit.cancel_reason,
        "version": permit.version,
        **{key: json_value(value) for key, value in facts.items()},
        "allowed_actions": [a.value for a in domain.allowed_actions(facts_of(permit).state)],
    }


# --- residence registration ---------------------------------------------------------------


@dataclass(frozen=True)
class Declarant:
    """Someone declaring for another [CF §10]: a guardian or trustee of a minor under 16, or of
    an elderly person of limited mobility or a disabled person."""

    relation: str
    citizen_id: CitizenId
    because: str  # minor, elderly-limited-mobility, disabled


@dataclass(frozen=True)
class RegistrationInput:
    """The fields of [CF §11]; sex and date of birth are read from the ID number."""

    citizen_id: CitizenId
    name: str
    ethnicity: str
    household_address: str
    household_region: str
    current_address: str
    current_region: str
    reason: str
    workplace: str | None
    contact: str
    arrived_on: date
    temporary_permit_since: date | None = None
    declarant: Declarant | None = None


class RegistrationRefused(DomainProblem):
    """A registration the rules do not allow, naming the field a person must correct."""

    def __init__(self, pointer: str, zh: str, en: str, cite: str | None = None) -> None:
        super().__init__(en)
        self.zh, self.en, self.cite = zh, en, cite
        self.at(pointer)

    def problem(self) -> Problem:
        text = Text(self.zh, self.en)
        return Problem(
            REGISTRATION_REFUSED,
            text,
            errors=self.field_errors(text),
            extensions={"cite": self.cite} if self.cite else {},
        )


def _age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _check_declarant(
    data: RegistrationInput, rules: jurisdictions.Registration, today: date
) -> None:
    declarant = data.declarant
    if declarant is None:
        return
    proxy = rules.proxy
    if proxy is None:
        raise RegistrationRefused(
            "/declarant", "本地未规定代为申报", "No one may declare for another here"
        )
    if declarant.relation not in proxy.by:
        raise RegistrationRefused(
            "/declarant/relation",
            f"只有{'、'.join(proxy.by)}可以代为申报",
            f"Only a {' or '.join(proxy.by)} may declare for another",
            proxy.cite,
        )
    if declarant.because == "minor":
        age = _age_on(data.citizen_id.birth_date, today)
        if age >= proxy.minors_under_years:
            raise RegistrationRefused(
                "/declarant/because",
                f"被申报人已满 {proxy.minors_under_years} 周岁",
                f"The person is {age}, not under {proxy.minors_under_years}",
                proxy.cite,
            )
    elif declarant.because not in proxy.also_for:
        raise RegistrationRefused(
            "/declarant/because",
            "不属于可代为申报的情形",
            f"{declarant.because!r} is not a case for declaring on another's behalf",
            proxy.cite,
        )


def _check_dates(data: RegistrationInput, rules: jurisdictions.Registration, today: date) -> None:
    """Dates a person could not have lived: before their birth (read from the ID number), in
    the future, or a temporary permit (暂住证) that starts after the arrival it leads up to."""
    born = data.citizen_id.birth_date
    if data.arrived_on > today:
        raise RegistrationRefused("/arrived_on", "到达日期晚于今天", "The arrival is in the future")
    if data.arrived_on < born:
        raise RegistrationRefused(
            "/arrived_on", "到达日期早于出生日期", "The arrival is before the date of birth"
        )
    since = data.temporary_permit_since
    if since is None:
        return
    pointer = "/temporary_permit_since"
    if rules.temporary_permit_years_count is None:
        raise RegistrationRefused(
            pointer,
            "本地暂住证年限不计入居住年限",
            "Years under a temporary-residence permit do not count here",
        )
    if since < born:
        raise RegistrationRefused(
            pointer, "暂住证起始日期早于出生日期", "The temporary permit starts before the birth"
        )
    if since > today:
        raise RegistrationRefused(
            pointer, "暂住证起始日期晚于今天", "The temporary permit starts in the future"
        )
    if since > data.arrived_on:
        raise RegistrationRefused(
            pointer, "暂住证起始日期晚于到达日期", "The temporary permit starts after the arrival"
        )


def _declaration(
    place: jurisdictions.Jurisdiction,
    calendar: WorkingCalendar,
    arrived_on: date,
    declared_on: date,
    *,
    temporary_permit_since: date | None,
) -> domain.Declaration:
    """The declaration judged on `calendar` by the place's rules (see domain.declaration)."""
    declare_within = place.registration.declare_within
    return domain.declaration(
        arrived_on=arrived_on,
        declared_on=declared_on,
        deadline=declare_within.within.due_after(arrived_on, calendar) if declare_within else None,
        registration_required=place.application.residence.registration_required,
        temporary_permit_since=temporary_permit_since,
    )


def register(
    session: Session,
    lifecycle: Lifecycle,
    vault: CitizenIdVault,
    places: Mapping[str, jurisdictions.Jurisdiction],
    data: RegistrationInput,
    *,
    actor: Actor,
    now: datetime,
    today: date,
) -> Registration:
    """Record a residence registration with its lateness against the declaration deadline and
    the day registered residence counts from (provisional where the deadline ran into a year
    without a known holiday schedule: `settle_declaration` recomputes it later)."""
    place = jurisdictions.jurisdiction_for(places, data.current_region)
    if place is None:
        raise RegistrationRefused(
            "/current_region",
            f"行政区划 {data.current_region} 不在本平台服务范围内",
            f"Division {data.current_region} is not served by this hub",
        )
    _check_dates(data, place.registration, today)
    _check_declarant(data, place.registration, today)
    declared = _declaration(
        place,
        lifecycle.calendar,
        data.arrived_on,
        today,
        temporary_permit_since=data.temporary_permit_since,
    )
    registration = Registration(
        id=str(uuid.uuid4()),
        jurisdiction=place.code,
        citizen_id_hash=vault.lookup_hash(data.citizen_id),
        citizen_id_sealed=vault.seal(data.citizen_id),
        name=data.name,
        sex=data.citizen_id.sex.value,
        ethnicity=data.ethnicity,
        birth_date=data.citizen_id.birth_date,
        household_address=data.household_address,
        household_region=data.household_region,
        current_address=data.current_address,
        current_region=data.current_region,
        reason=data.reason,
        workplace=data.workplace,
        contact=data.contact,
        arrived_on=data.arrived_on,
        registered_on=today,
        declaration_due_on=declared.due,
        declared_late=declared.late,
        declaration_provisional=declared.provisional,
        residence_start=declared.residence_start,
        imported_from_temporary_permit=data.temporary_permit_since is not None,
        declarant_relation=data.declarant.relation if data.declarant else None,
        declarant_id_hash=(
            vault.lookup_hash(data.declarant.citizen_id) if data.declarant else None
        ),
        created_at=now,
    )
    outcome = "late" if registration.declared_late else "registered"
    lifecycle.audit.record(
        session,
        actor.did("registration.create", outcome, registration.citizen_id_hash, REGISTRY_PURPOSE),
        now,
        alongside=registration_insert(session.get_bind().dialect, registration),
    )
    _settle_worklist(session, registration, now)
    return registration


_REPORTS: sa.Table = ThirdPartyReport.__table__  # type: ignore[attr-defined]
_SETTLE_WORKLIST = (  # built once: a Core statement caches its compiled form by its own key
    sa.update(_REPORTS)
    .where(
        _REPORTS.c.citizen_id_hash == sa.bindparam("holder"),
        _REPORTS.c.jurisdiction == sa.bindparam("place"),
        _REPORTS.c.status == "open",
    )
    .values(status="registered", resolved_at=sa.bindparam("at"))
)


def _settle_worklist(session: Session, registration: Registration, now: datetime) -> None:
    """The person registered: the reports about them there leave the office's worklist
    (hub.permits.reports), in the registration's own transaction."""
    session.connection().execute(
        _SETTLE_WORKLIST,
        {
            "holder": registration.citizen_id_hash,
            "place": registration.jurisdiction,
            "at": now,
        },
    )


RESIDENCE_CORRECTED = "residence-corrected"


def settle_declaration(
    session: Session,
    lifecycle: Lifecycle,
    place: jurisdictions.Jurisdiction,
    registration: Registration,
    *,
    actor: Actor,
    now: datetime,
    today: date,
) -> bool:
    """Judge a provisional declaration again on the calendar; False while its deadline still runs
    into a year the calendar does not know. Once known, the registration's deadline, lateness
    and residence start are replaced, and a live permit whose residence started where the
    registration's did (no restart since) moves with it, by a "residence-corrected" event and
    its outbox row. The caller holds the registration's row lock."""
    imported = registration.residence_start if registration.imported_from_temporary_permit else None
    declared = _declaration(
        place,
        lifecycle.calendar,
        registration.arrived_on,
        registration.registered_on,
        temporary_permit_since=imported,
    )
    if declared.provisional:
        return False
    was = registration.residence_start
    registration.declaration_due_on, registration.declared_late = declared.due, declared.late
    registration.declaration_provisional = False
    registration.residence_start = declared.residence_start
    session.add(registration)
    outcome = "late" if declared.late else "on-time"
    event = actor.did(
        "registration.settle", outcome, registration.citizen_id_hash, REGISTRY_PURPOSE
    )
    lifecycle.audit.record(session, event, now)
    if declared.residence_start == was:
        return True
    permits = session.exec(
        select(Permit)
        .where(
            col(Permit.registration_id) == registration.id,
            col(Permit.state).in_(LIVE_STATES),
            col(Permit.residence_start) == was,
        )
        .with_for_update()
    ).all()
    payload = {
        "on": today.isoformat(),
        "residence_start": declared.residence_start.isoformat(),
        "was": was.isoformat(),
        "declaration_due_on": declared.due.isoformat() if declared.due else None,
        "declared_late": declared.late,
    }
    for permit in permits:
        permit.residence_start = declared.residence_start
        permit.version += 1
        permit.updated_at = now
        session.add(permit)
        record_event(session, lifecycle.audit, permit, RESIDENCE_CORRECTED, payload, actor, now)
    return True


def read_registration(
    session: Session, audit: AuditLog, registration_id: str, *, actor: Actor, now: datetime
) -> Registration:
    """The registration, for a read that is audited; raise RegistrationNotFound."""
    registration = session.get(Registration, registration_id)
    if registration is None:
        raise RegistrationNotFound(registration_id)
    subject = [registration.citizen_id_hash]
    audit_disclosure(session, audit, "registration", subject, actor=actor, now=now)
    return registration


def registration_view(registration: Registration, vault: CitizenIdVault) -> dict[str, Any]:
    """What a window sees: the ID masked, never in clear."""
    citizen_id = vault.open(registration.citizen_id_sealed)
    hidden = {"citizen_id_hash", "citizen_id_sealed", "declarant_id_hash"}
    fields = registration.model_dump(exclude=hidden)
    fields["citizen_id"] = citizen_id.masked()
    return {key: json_value(value) for key, value in fields.items()}


# --- address change and residence ----------------------------------------------------------


class AddressRefused(DomainProblem):
    def __init__(self, pointer: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en
        self.at(pointer)

    def problem(self) -> Problem:
        text = Text(self.zh, self.en)
        return Problem(ADDRESS_REFUSED, text, errors=self.field_errors(text))


def change_address(
    session: Session,
    lifecycle: Lifecycle,
    place: jurisdictions.Jurisdiction,
    permit_id: str,
    *,
    expected_version: int,
    moved_on: date,
    new_address: str,
    new_region: str,
    actor: Actor,
    now: datetime,
    today: date,
) -> tuple[Permit, PermitEvent]:
    """Report a move within the permit's area [IM: 30 days; CF §19: 7 working days, and a
    month unreported restarts residence]; a move elsewhere needs a new registration."""
    permit = _lock(session, permit_id)
    if permit.version != expected_version:
        raise StaleWrite(permit.version)
    if not place.permit_valid_in(new_region):
        raise AddressRefused(
            "/new_region",
            f"新居住地 {new_region} 不在本证有效范围内，请重新办理居住登记",
            f"{new_region} is outside the permit's area: register the residence anew",
        )
    rules = lifecycle.rules_for(place.code)
    address = place.address_rules()
    details: dict[str, Any] = {"moved_on": moved_on.isoformat(), "new_region": new_region}
    if address is None:  # no document we hold sets a time limit: record, never late
        transition = domain.move(facts_of(permit), domain.Action.CHANGE_ADDRESS, today, rules)
    else:
        change = domain.change_address(
            facts_of(permit),
            moved_on=moved_on,
            reported_on=today,
            address=address,
            calendar=lifecycle.calendar,
            rules=rules,
        )
        transition = change.transition
        details |= {
            "due": change.due.isoformat(),
            "overdue": change.overdue,
            "provisional": change.provisional,
            "cite": address.cite,
        }
    registration = session.get(Registration, permit.registration_id)
    assert registration is not None
    registration.current_address, registration.current_region = new_address, new_region
    session.add(registration)
    return _commit_transition(
        session,
        lifecycle.audit,
        permit,
        transition,
        rules.card_fees,
        actor=actor,
        now=now,
        today=today,
        details=details,
    )


def residence_of(session: Session, permit: Permit, day: date) -> domain.ResidencePeriod | None:
    """Continuous residence on `day`, from the permit's history: the start its registration
    gave (`residence_start` of the acceptance, replaced by a later correction of it) and each
    restart since."""
    start: date | None = None
    restarts: list[date] = []
    for event in events_of(session, permit.id):
        if "residence_start" in event.payload:
            start = date.fromisoformat(event.payload["residence_start"])
        if "residence_restarted_on" in event.payload:
            restarts.append(date.fromisoformat(event.payload["residence_restarted_on"]))
    starts = ([start] if start else []) + restarts
    changes = [domain.ResidenceChange(begun, begun) for begun in starts]
    return domain.residence_on(changes, day)
