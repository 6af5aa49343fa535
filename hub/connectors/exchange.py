"""Use cases of the exchange with the departments (no FastAPI): proofs coming in, look-ups and
the changes feed going out.

- **Proofs** (`submit_proof`, `revoke_proof`): a department files the records it is the
  authority for ("以主管部门甄别为准" [NB]), as documents of its `proof.*` subject, validated
  against the schema registry. They land in the `proof` table through the same use case staff
  use (`applications.record_proof`), idempotent by (department, proof id), so eligibility reads
  them as records on file. Kinds eligibility does not know yet (health, civil affairs) are
  stored the same way here, so nothing a department sends is lost while the rules catch up.
- **Look-ups** (`look_up`): one holder on demand, under the department's agreement.
- **Feed** (`read_feed`): the pull side of the outbox, for departments that cannot receive
  webhooks: the holder record of every subscribed event, in `seq` order, behind an opaque
  cursor.

What goes out is always the holder record projected by the department's agreement and
validated against the holder-record version in use, exactly what the relay pushes; a
department without an agreement in force gets nothing, and is not even told whether a person
exists. Every exchange is audited with the keyed hash of the holder's ID (never the ID), the
refusals included: outcomes are returned, not raised, where the caller must still commit the
audit entry.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditLog
from hub.auth.domain import Department
from hub.clock import Clock
from hub.connectors.config import DepartmentLink
from hub.connectors.problems import PROOF_INVALID, PROOF_NOT_OWNED
from hub.db import INT_MAX, aware
from hub.permits import applications, eligibility
from hub.permits.identity import (
    CitizenId,
    CitizenIdVault,
    InvalidCitizenId,
    citizen_id_problem,
    parse_citizen_id,
)
from hub.permits.store import LIVE_STATES, Permit, PermitEvent, Proof, Registration
from hub.problems import (
    VALIDATION_FAILED,
    DomainProblem,
    FieldError,
    Problem,
    ProblemType,
    Text,
)
from hub.publishing.publisher import OnDemand, Publisher
from hub.publishing.records import RecordUnavailable
from hub.publishing.terms import Refusal, read_agreement_in_force, read_version_in_use
from hub.schemas import domain, service
from hub.schemas.service import Registry
from hub.schemas.store import Agreement, SchemaVersion
from hub.schemas.validation import Issue

PROOF_PURPOSE: Final = "proof-on-file"
FEED_PURPOSE: Final = "changes-feed"
"""Audit purpose of a feed read refused before an agreement (and its purpose) was found."""

PROOF_SUBJECTS: Final[Mapping[str, Department]] = {
    "proof.employment": Department.HR_SOCIAL_SECURITY,
    "proof.social-insurance": Department.HR_SOCIAL_SECURITY,
    "proof.rental-registration": Department.HOUSING,
    "proof.school-enrolment": Department.EDUCATION,
    "proof.health-service": Department.HEALTH,
    "proof.civil-affairs": Department.CIVIL_AFFAIRS,
}
"""Which department is the authority for each proof subject: the only one that may file it."""

FEED_LIMIT_MAX: Final = 500
SCAN_MIN: Final = 1_000
SCAN_MAX: Final = 5_000
"""Events examined per feed read: enough to fill a page for a department that subscribes to
few types, bounded so one read stays cheap; the cursor moves past what was examined."""

SETTLE: Final = timedelta(seconds=30)
"""How long a gap in event numbers holds the feed back. On PostgreSQL a sequence hands out
numbers at INSERT and transactions commit in any order, so event 41 may become visible after
event 42: a cursor that moved past 42 would skip 41 forever. The feed therefore stops before a
gap while the event after it is younger than this; an older gap is a rolled-back transaction
(sequences are not transactional) and is passed. SQLite serialises writers, so it has no such
gaps. A transaction that writes events for longer than this could still be overtaken."""


# --- outcomes and refusals ---------------------------------------------------------------------


class ProofNotYours(DomainProblem):
    """The caller's department is not the authority for this subject (or kind)."""

    def __init__(self, subject: str, department: Department, kind: str | None = None) -> None:
        super().__init__(f"{department.value} may not file {kind or subject}")
        self.subject, self.department, self.kind = subject, department, kind
        self.at(f"{PROOF}/kind" if kind else "/subject")

    def problem(self) -> Problem:
        what, who = self.kind or self.subject, self.department.value
        return Problem(
            PROOF_NOT_OWNED,
            Text(f"{who} 不能报送 {what}", f"{who} does not file {what}"),
            errors=self.field_errors(Text("不是本部门主管的证明", "not your department's")),
        )


THE_PROOF: Final = Text("证明文件", "the proof")


class DocumentInvalid(DomainProblem, ValueError):
    """A submitted document (a proof, a report) breaks its schema (or a rule the schema cannot
    state); every issue, with pointers into the document and no value from it."""

    def __init__(
        self,
        issues: list[Issue],
        schema: SchemaVersion,
        where: str = "/proof",
        kind: ProblemType = PROOF_INVALID,
        noun: Text = THE_PROOF,
    ) -> None:
        super().__init__(f"{len(issues)} problem(s) in the document")
        self.issues, self.subject, self.version = issues, schema.subject, schema.version
        self.where, self.kind, self.noun = where, kind, noun

    def problem(self) -> Problem:
        count, subject, version = len(self.issues), self.subject, self.version
        return Problem(
            self.kind,
            Text(
                f"{self.noun.zh}有 {count} 处不符合 {subject} 第 {version} 版",
                f"{count} issue(s) in {self.noun.en} against {subject} version {version}",
            ),
            errors=[issue.field_error(self.where) for issue in self.issues],
            extensions={"subject": subject, "schema_version": version},
        )


class ProofNotFound(LookupError):
    """No proof with this id from the caller's department (another's is never shown)."""


class CursorInvalid(ValueError):
    """A feed cursor the hub did not issue."""


@dataclass(frozen=True)
class Found:
    record: dict[str, Any]
    agreement: Agreement


@dataclass(frozen=True)
class HolderNotFound:
    """The department may look people up, and this person has no permit here."""


@dataclass(frozen=True)
class FeedPage:
    records: list[dict[str, Any]]
    last_examined: int
    """The `seq` the next read starts after: the last event looked at, whether sent or not."""
    has_more: bool
    agreement: Agreement

    @property
    def next(self) -> str:
        return encode_cursor(self.last_examined)


# --- proofs in ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """What the exchange's use cases need of the hub, and nothing else: the clock, the audit
    log, the schema registry proofs are validated against, the vault that keys and seals
    citizen IDs, and the publisher of holder records (with each department's link). Built
    once per process (`Hub.exchange`)."""

    clock: Clock
    audit: AuditLog
    schemas: Registry
    vault: CitizenIdVault
    publisher: Publisher


def submit_proof(
    session: Session,
    desk: Exchange,
    actor: Actor,
    department: Department,
    subject: str,
    version: int | None,
    document: Any,
) -> tuple[Proof, bool]:
    """File a department's proof; True if it is new, False if the same was filed before.

    The arguments are the members of a submission (`subject`, `schema_version`, `proof`), and
    each refusal is a problem about one of them: ProofNotYours (checked first: a department
    learns nothing about subjects it does not own), service.SchemaNotInUse or VersionRetired,
    a 422 for a version that does not exist, DocumentInvalid, a refused citizen ID (born in
    the future: the schema's format cannot know today) and applications.ProofConflict (the
    proof id was filed with other content).
    """
    if PROOF_SUBJECTS.get(subject) is not department:
        raise ProofNotYours(subject, department)
    try:
        chosen = document_version(session, subject, version)
        row, issues = service.validate(session, desk.schemas, subject, chosen.version, document)
    except (service.SchemaNotInUse, service.VersionRetired) as refused:
        raise refused.at(SCHEMA_VERSION) from None
    issues = issues or unreadable(document, _PROOF_READS, {"valid_to": "date"})
    if issues:
        raise DocumentInvalid(issues, row)
    kind = str(document["kind"])
    owner = eligibility.PROOF_KINDS.get(kind)
    if owner is None or department.value not in owner.owners:
        raise ProofNotYours(subject, department, kind)  # e.g. a business licence from HR
    valid_from = date.fromisoformat(document["valid_from"])
    valid_to = date.fromisoformat(document["valid_to"]) if document.get("valid_to") else None
    if valid_to is not None and valid_to < valid_from:
        raise DocumentInvalid([_ENDS_BEFORE_IT_STARTS], row)
    try:
        citizen_id = parse_citizen_id(document["citizen_id"], today=desk.clock.today())
    except InvalidCitizenId as error:
        raise citizen_id_problem(error, f"{PROOF}/citizen_id") from None
    id_hash = desk.vault.lookup_hash(citizen_id)
    data = applications.ProofInput(
        citizen_id_hash=id_hash,
        kind=kind,
        source_department=department.value,
        source_proof_id=str(document["proof_id"]),
        valid_from=valid_from,
        valid_to=valid_to,
        details=dict(document["details"]),
    )
    now = desk.clock.now()
    try:
        proof, new = _store(session, desk, data, actor, now)
    except applications.ProofConflict as conflict:
        raise conflict.at(f"{PROOF}/proof_id") from None
    outcome = f"stored:{kind}" if new else f"repeat:{kind}"
    desk.audit.record(session, actor.did("exchange.proof", outcome, id_hash, PROOF_PURPOSE), now)
    return proof, new


_PROOF_READS: Final = {
    "kind": "text",
    "proof_id": "text",
    "citizen_id": "text",
    "valid_from": "date",
    "details": "object",
}
PROOF: Final = "/proof"
"""Where a submission holds the proof document: the prefix of the pointers into it."""
SCHEMA_VERSION: Final = "/schema_version"
"""Where a submission names the version its proof is validated against."""

_ENDS_BEFORE_IT_STARTS: Final = Issue(
    "/valid_to", "valid_to", "must not be before valid_from", "不得早于 valid_from"
)
"""A rule JSON Schema cannot state between two fields."""


_READS: Final[dict[str, tuple[Callable[[Any], bool], str, str]]] = {
    "text": (
        lambda value: isinstance(value, str) and value != "",
        "a non-empty string",
        "非空字符串",
    ),
    "object": (lambda value: isinstance(value, dict), "an object", "对象"),
    "date": (lambda value: _is_date(value), "a date (YYYY-MM-DD)", "日期（YYYY-MM-DD）"),
}


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def unreadable(
    document: Any, needed: Mapping[str, str], optional: Mapping[str, str] | None = None
) -> list[Issue]:
    """Each member the hub reads (a path such as "person/name", and what it reads it as:
    "text", "object" or "date") that the document lacks or holds as something else.

    The version in use promises these only as long as governance keeps them required: a later
    version may ask for less than the hub reads, and such a document is then refused here,
    with a pointer, instead of failing further in."""
    issues = []
    for path, reads in [*needed.items(), *(optional or {}).items()]:
        value: Any = document
        for name in path.split("/"):
            value = value.get(name) if isinstance(value, dict) else None
        if value is None and optional and path in optional:
            continue
        check, en, zh = _READS[reads]
        if not check(value):
            issues.append(
                Issue(f"/{path}", "hub-reads", f"the hub reads it as {en}", f"平台按{zh}读取")
            )
    return issues


def document_version(session: Session, subject: str, version: int | None) -> SchemaVersion:
    """The version a submitted document is checked against: the one asked for, or the one in
    use; SchemaNotInUse or VersionRetired otherwise."""
    if version is None:
        found = service.exchangeable_version(session, subject)
        if found is None:
            raise service.SchemaNotInUse(subject, None)
        return found
    try:
        row = service.version_of(session, subject, version)
    except service.SubjectNotFound:
        raise service.SchemaNotInUse(subject, version) from None
    except service.VersionNotFound:
        raise Problem(
            VALIDATION_FAILED,
            errors=[FieldError(Text("该版本不存在", "no such version"), pointer=SCHEMA_VERSION)],
        ) from None
    if row.state == domain.VersionState.DRAFT:
        raise service.SchemaNotInUse(subject, version)
    return row  # RETIRED: service.validate refuses it


def _store(
    session: Session,
    desk: Exchange,
    data: applications.ProofInput,
    actor: Actor,
    now: datetime,
) -> tuple[Proof, bool]:
    """Through `record_proof`, the registry's own use case for proofs on file.

    In a savepoint: on PostgreSQL two deliveries of one proof may race past the "not filed
    yet" check; the loser's insert fails on the unique (department, proof id), and it then
    finds the winner's row and compares it like any repeat.
    """
    try:
        with session.begin_nested():
            stored = applications.record_proof(session, desk.audit, data, actor=actor, now=now)
            session.flush()
            return stored
    except sa.exc.IntegrityError:
        existing = _filed(session, data.source_department, data.source_proof_id)
        if existing is None:
            raise
        applications.check_repeat(existing, data)
        return existing, False


def _filed(session: Session, department: str, proof_id: str, *, lock: bool = False) -> Proof | None:
    query = select(Proof).where(
        col(Proof.source_department) == department, col(Proof.source_proof_id) == proof_id
    )
    return session.exec(query.with_for_update() if lock else query).first()


def own_proof(
    session: Session, desk: Exchange, actor: Actor, department: Department, proof_id: str
) -> Proof:
    """The caller's own proof (ProofNotFound for anyone else's); the read is audited."""
    proof = _filed(session, department.value, proof_id)
    if proof is None:
        raise ProofNotFound(proof_id)
    event = actor.did("exchange.proof.read", "found", proof.citizen_id_hash, PROOF_PURPOSE)
    desk.audit.record(session, event, desk.clock.now())
    return proof


def revoke_proof(
    session: Session, desk: Exchange, actor: Actor, department: Department, proof_id: str
) -> Proof:
    """Withdraw the caller's proof: it stays on file (what was relied on, and when, can be
    shown) but no longer counts (`applications.proofs_on_file` skips revoked rows). Revoking
    again changes nothing. ProofNotFound for a proof of another department."""
    proof = _filed(session, department.value, proof_id, lock=True)
    if proof is None:
        raise ProofNotFound(proof_id)
    now = desk.clock.now()
    outcome = "already-revoked"
    if proof.revoked_at is None:
        proof.revoked_at = now
        session.add(proof)
        session.flush()
        outcome = "revoked"
    event = actor.did("exchange.proof.revoke", outcome, proof.citizen_id_hash, PROOF_PURPOSE)
    desk.audit.record(session, event, now)
    return proof


# --- what goes out -----------------------------------------------------------------------------


def look_up(
    session: Session,
    desk: Exchange,
    actor: Actor,
    department: Department,
    citizen_id: CitizenId,
    purpose: str,
) -> Found | HolderNotFound | Refusal:
    """One holder's record now, by the department's agreement, with the facts of the live
    permit (else of the latest one). The look-up is audited with the caller's purpose and its
    outcome (found, not-found, refused), refusals included: the caller must commit them.
    Without an agreement in force nothing about the person is even queried."""
    today, now = desk.clock.today(), desk.clock.now()
    id_hash = desk.vault.lookup_hash(citizen_id)

    def audited(outcome: str) -> None:
        desk.audit.record(session, actor.did("exchange.lookup", outcome, id_hash, purpose), now)

    agreement = desk.publisher.agreement_in_force(session, department, today)
    if isinstance(agreement, Refusal):
        audited("refused")
        return agreement
    live_first = sa.case((col(Permit.state).in_(LIVE_STATES), 0), else_=1)
    found = session.exec(
        select(Permit, Registration)
        .join(Registration, col(Registration.id) == col(Permit.registration_id))
        .where(col(Permit.citizen_id_hash) == id_hash)
        .order_by(live_first, col(Permit.accepted_on).desc(), col(Permit.updated_at).desc())
        .limit(1)
    ).first()
    if found is None:
        audited("not-found")
        return HolderNotFound()
    permit, registration = found
    request = OnDemand("lookup", f"lookup-{uuid.uuid4()}", now, today)
    view = desk.publisher.on_demand(
        session, request, agreement, permit, registration, citizen_id.value
    )
    audited("found")
    return Found(view, agreement)


# --- the changes feed --------------------------------------------------------------------------

_CURSOR_PREFIX: Final = "v1:"
CURSOR_ALPHABET: Final = r"[A-Za-z0-9_-]{1,64}"
"""What a cursor may look like (base64url, bounded): the feed API's pattern for `after`."""
_CURSOR_TEXT: Final = re.compile(CURSOR_ALPHABET)
_CURSOR_SEQ: Final = re.compile(r"0|[1-9][0-9]{0,9}")


def encode_cursor(seq: int) -> str:
    """Opaque to departments (they must not compute positions), stable (the same position is
    always the same text), versioned (the scheme can change without breaking old cursors)."""
    raw = f"{_CURSOR_PREFIX}{seq}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(text: str) -> int:
    """The position `encode_cursor` wrote; CursorInvalid for anything it would not write,
    a position past the range of event numbers (`INT_MAX`) included."""
    if _CURSOR_TEXT.fullmatch(text) is None:
        raise CursorInvalid(text)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorInvalid(text) from None
    digits = raw.removeprefix(_CURSOR_PREFIX)
    if digits == raw or _CURSOR_SEQ.fullmatch(digits) is None:
        raise CursorInvalid(text)
    seq = int(digits)
    if seq > INT_MAX or encode_cursor(seq) != text:  # one text per position
        raise CursorInvalid(text)
    return seq


def _examine(
    rows: Sequence[sa.Row[Any]],
    after: int,
    link: DepartmentLink,
    limit: int,
    scanned_all: bool,
    now: datetime,
) -> tuple[list[int], int, bool]:
    """From events after `after` in `seq` order: the subscribed ones for the page, the last
    one examined and whether more may follow now. Stops before a gap that may still fill
    (see SETTLE) and, once the page is full, at the next subscribed event."""
    chosen: list[int] = []
    last = after
    for row in rows:
        if row.seq != last + 1 and now - aware(row.at) < SETTLE:
            return chosen, last, False  # an earlier number may still commit: wait for it
        if link.subscribes_to(row.type):
            if len(chosen) == limit:
                return chosen, last, True
            chosen.append(row.seq)
        last = row.seq
    return chosen, last, not scanned_all


def read_feed(
    session: Session, desk: Exchange, actor: Actor, department: Department, after: int, limit: int
) -> FeedPage | Refusal:
    """One page of the department's changes feed: the projected holder record of each event
    after `after` that it subscribes to, oldest first, at most `limit`.

    The events take two queries whatever the page size: the numbers and types to examine,
    then the page's events with their outbox snapshots, permits and registrations. Permit
    facts are those the outbox kept at the event (the permit as it is now if an older row has
    none); personal data is the registration as on file. The read is audited once, with the
    agreement's purpose and the number of records; a refusal is audited too, and returned for
    the caller to commit.
    """
    if not 1 <= limit <= FEED_LIMIT_MAX:
        raise ValueError(f"limit must be 1..{FEED_LIMIT_MAX}")
    today, now = desk.clock.today(), desk.clock.now()

    def audited(outcome: str, purpose: str, subject: str | None = None) -> None:
        desk.audit.record(session, actor.did("exchange.feed", outcome, subject, purpose), now)

    link = desk.publisher.departments.get(department)
    if link is None or not link.pulls:
        audited("refused", FEED_PURPOSE)
        return Refusal(
            "pull-not-enabled",
            f"{department.value} 未开通变更数据拉取",
            f"{department.value} has no changes feed (its link does not pull)",
        )
    agreement = read_agreement_in_force(session, link, department, today)
    if isinstance(agreement, Refusal):
        audited("refused", FEED_PURPOSE)
        return agreement
    scan = min(SCAN_MAX, max(SCAN_MIN, 4 * limit))
    examined = session.execute(
        sa.select(col(PermitEvent.seq), col(PermitEvent.type), col(PermitEvent.at))
        .where(col(PermitEvent.seq) > after)
        .order_by(col(PermitEvent.seq))
        .limit(scan)
    ).all()
    chosen, last, has_more = _examine(examined, after, link, limit, len(examined) < scan, now)
    records = _records(session, desk.publisher, agreement, chosen, today) if chosen else []
    subject = f"permit_event:{chosen[0]}..{chosen[-1]}" if chosen else None
    audited(str(len(records)), agreement.purpose, subject)
    return FeedPage(records, last, has_more, agreement)


def _records(
    session: Session, publisher: Publisher, agreement: Agreement, seqs: Sequence[int], today: date
) -> list[dict[str, Any]]:
    version = read_version_in_use(session, publisher.schemas)
    built = publisher.event_records(session, version, seqs)
    out = []
    for seq in sorted(built):
        record = built[seq]
        if isinstance(record, RecordUnavailable):
            raise record
        out.append(publisher.for_department(version, agreement, record, today, str(seq)))
    return out
