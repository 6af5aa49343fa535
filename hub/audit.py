"""Append-only, hash-chained audit log, in several chains.

Each row carries an HMAC over its content, its position in its chain and the previous row's
MAC, so altering, deleting or inserting a row breaks its chain at that row; because the MAC is
keyed (a key derived from the master secret), someone with write access to the database alone
cannot re-forge a chain after tampering. Each chain has a head row in `audit_head` (its length
and last MAC): the lock that serialises that chain's appenders (a row lock on PostgreSQL;
SQLite serialises every writer anyway), and what reveals rows cut off its tail. A head cannot
reveal a tail cut off together with the head rewound; a signed checkpoint kept outside the
database can (hub.checkpoints).

Why several chains: one head serialised every audited write of every process. A transaction's
entries go to one chain, picked by a hash of its first entry's subject (the holder) or, without
one, its actor, so writers for different holders rarely meet, and a transaction never holds two
heads (two transactions cannot deadlock on them). `seq` orders entries across chains (the
database assigns it); a chain's order is `position`. Chain 1 starts at GENESIS, so a log
written before the split is chain 1 as it stands; every other chain starts at a hash only the
key makes, so a chain's first rows cannot be passed off as another's.

Times are stored in UTC and MACed as naive UTC with microseconds, so the chain does not depend
on the database's session time zone. Text is MACed as it will be stored: neither database keeps
U+0000 (PostgreSQL's text refuses it, SQLite's json_extract cuts the string there) and no driver
can send a lone surrogate, so those become U+FFFD before the MAC is made. An entry is never lost
over a stray character in a caller's purpose, and a verifier never sees a false break.
"""

from __future__ import annotations

import dataclasses
import hmac
import itertools
import json
import re
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm.util import identity_key
from sqlmodel import Field, Session, SQLModel, col, select

from hub import bulk
from hub.clock import naive_utc
from hub.ops import metrics

if TYPE_CHECKING:
    from sqlalchemy.sql.type_api import _ResultProcessorType

    from hub.auth.domain import Principal

GENESIS = "0" * 64  # where chain 1 starts
FIRST_CHAIN = 1
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once: bulk appends
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # U+0000 and lone surrogates
_STORED_NUL = "\\u0000"  # how the encoder writes U+0000 (the other controls: \u00XX too)


class _StoredTime(sa.types.TypeDecorator[datetime]):
    """`timestamptz` that hands back a stored value it cannot read instead of raising.

    SQLite lets raw SQL put any value in any column (`at = 'yesterday'`); the hub only ever
    writes times, so such a row must fail its MAC and be reported, not crash the verifier.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def result_processor(
        self, dialect: Dialect, coltype: Any
    ) -> _ResultProcessorType[datetime] | None:
        parse = super().result_processor(dialect, coltype)
        if parse is None:
            return None

        def tolerant(value: Any) -> Any:
            try:
                return parse(value)
            except (TypeError, ValueError):
                return value

        return tolerant


_COUNTED = sa.text("action IN ('application.assess', 'exchange.lookup', 'exchange.feed')")


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    # A holder's entries (the audit search by holder, the holder's access report) without
    # reading the whole log.
    # What the statistics count, by time, from a partial index the other actions add nothing
    # to (hub.statistics.COUNTED_ACTIONS).
    __table_args__ = (
        sa.Index("ix_audit_log_subject", "subject", "seq"),
        sa.Index(
            "ix_audit_log_counted",
            "action",
            "at",
            sqlite_where=_COUNTED,
            postgresql_where=_COUNTED,
        ),
        # Not unique: a partitioned table's unique index must hold its time (hub.partitions).
        # A position is taken under its head's row lock, and every walk checks the sequence.
        sa.Index("ix_audit_log_chain_position", "chain", "position"),
    )

    # Assigned by the database on insert (every row read has one): the order across chains.
    seq: int = Field(default=None, primary_key=True)
    chain: int = Field(default=FIRST_CHAIN, sa_type=sa.SmallInteger)
    position: int = Field(sa_type=sa.BigInteger)
    at: datetime = Field(sa_type=_StoredTime())
    actor_client_id: str = Field(max_length=128)
    actor_department: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=64)
    subject: str | None = Field(default=None, max_length=128)
    purpose: str | None = Field(default=None, max_length=256)
    outcome: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    row_hash: str = Field(max_length=64)


AUDIT_LOG: sa.Table = AuditEntry.__table__  # type: ignore[attr-defined]


class AuditHead(SQLModel, table=True):
    """A chain's head: `id` is the chain, `seq` its length (the position of its last row)."""

    __tablename__ = "audit_head"

    id: int = Field(default=FIRST_CHAIN, primary_key=True)
    seq: int = 0
    row_hash: str = Field(default=GENESIS, max_length=64)


AUDIT_HEAD: sa.Table = AuditHead.__table__  # type: ignore[attr-defined]
# Core statements, built once: the audit is on the path of every audited request.
_ADVANCE = (
    sa.update(AUDIT_HEAD)
    .where(AUDIT_HEAD.c.id == sa.bindparam("audit_chain"))
    .values(seq=AUDIT_HEAD.c.seq + sa.bindparam("count"))
    .returning(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.row_hash)
)
_SET_HASH_TEXT = "UPDATE audit_head SET row_hash = :head_hash WHERE id = :audit_chain"
_SET_HASH = sa.text(_SET_HASH_TEXT)
_OPEN_CHAIN = sa.text(
    "INSERT INTO audit_head (id, seq, row_hash) VALUES (:audit_chain, 0, :genesis)"
    " ON CONFLICT (id) DO NOTHING"
)
_CHAIN_MEMO = "audit_chain"  # session.info: the chain this transaction appends to


def chain_genesis(key: bytes, chain: int) -> str:
    """The hash chain `chain` starts from (its first row's prev_hash)."""
    if chain == FIRST_CHAIN:
        return GENESIS
    return hmac.digest(key, f"audit-chain:{chain}".encode(), "sha256").hex()


@dataclass(frozen=True)
class AuditEvent:
    """What happened. `subject` is a keyed hash (SubjectHasher) of a citizen ID or an opaque,
    non-personal identifier such as a client id; never a clear citizen ID."""

    actor_client_id: str
    action: str
    outcome: str
    actor_department: str | None = None
    subject: str | None = None
    purpose: str | None = None


@dataclass(frozen=True)
class Actor:
    """Who asked: an OAuth client (an acceptance office's system, a department, governance
    staff) or the hub itself (its scheduler, its command line)."""

    client_id: str
    department: str

    @classmethod
    def of(cls, caller: Principal) -> Actor:
        """The verified caller of a request, as the audit log names it."""
        return cls(caller.client_id, caller.department.value)

    def did(self, action: str, outcome: str, subject: str | None, purpose: str) -> AuditEvent:
        """The audit entry of this actor's action (on a holder: subject is the keyed ID
        hash)."""
        return AuditEvent(
            actor_client_id=self.client_id,
            actor_department=self.department,
            action=action,
            outcome=outcome,
            subject=subject,
            purpose=purpose,
        )


def _fields(event: AuditEvent) -> dict[str, str | None]:
    return {
        "actor_client_id": event.actor_client_id,
        "actor_department": event.actor_department,
        "action": event.action,
        "subject": event.subject,
        "purpose": event.purpose,
        "outcome": event.outcome,
    }


def _stored(moment: datetime) -> datetime:
    """The time as written: an aware UTC value (a naive one is taken to be UTC already).

    PostgreSQL reads a naive value into `timestamptz` in the *session* time zone, so a server
    or role set to Asia/Shanghai would shift it by eight hours and break the row's MAC.
    SQLite keeps the wall-clock digits, which are UTC either way.
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _mac(key: bytes, entry: Entry) -> str:
    return _mac_of(key, entry.position, entry.at, _event_of(entry), entry.prev_hash)


def _event_of(entry: Entry) -> AuditEvent:
    return AuditEvent(
        actor_client_id=entry.actor_client_id,
        action=entry.action,
        outcome=entry.outcome,
        actor_department=entry.actor_department,
        subject=entry.subject,
        purpose=entry.purpose,
    )


def _message(position: int, at: datetime, event: AuditEvent, prev_hash: str) -> str:
    content = [
        position,
        naive_utc(at).isoformat(timespec="microseconds"),
        event.actor_client_id,
        event.actor_department,
        event.action,
        event.subject,
        event.purpose,
        event.outcome,
        prev_hash,
    ]
    return _ENCODER.encode(content)


def _mac_of(key: bytes, position: int, at: datetime, event: AuditEvent, prev_hash: str) -> str:
    return hmac.digest(key, _message(position, at, event, prev_hash).encode(), "sha256").hex()


def _storable(event: AuditEvent) -> AuditEvent:
    """The event with U+0000 and lone surrogates replaced by U+FFFD in every text field."""
    changes = {
        name: _UNSTORABLE.sub("\ufffd", value)
        for name, value in _fields(event).items()
        if value is not None
    }
    return dataclasses.replace(event, **changes)


def _sealed(
    key: bytes, position: int, at: datetime, event: AuditEvent, prev_hash: str
) -> tuple[AuditEvent, str]:
    """The event as it will be stored, and its MAC over exactly that.

    The check costs no pass of its own on the append path: the MAC's JSON text shows U+0000 as
    an escape, and a lone surrogate fails the UTF-8 encoding the MAC needs anyway (a literal
    backslash-u0000 only takes the slow path, where nothing changes).
    """
    message = _message(position, at, event, prev_hash)
    if _STORED_NUL not in message:
        try:
            return event, hmac.digest(key, message.encode(), "sha256").hex()
        except UnicodeEncodeError:
            pass
    stored = _storable(event)
    return stored, _mac_of(key, position, at, stored, prev_hash)


@dataclass(frozen=True)
class AuditLog:
    """Writes and checks the chains with the audit key (Keyring.derive("audit-chain")).
    `chains`: how many this process appends to (settings.audit_chains); every chain in the
    database is verified, however many that is."""

    key: bytes
    chains: int = 1

    def open_chains(self, session: Session) -> None:
        """Give chains 1..`chains` their heads, where missing (a new installation, or more
        chains configured); a chain opened by its first append is opened the same way."""
        for chain in range(FIRST_CHAIN, self.chains + 1):
            self._open(session, chain)

    def _open(self, session: Session, chain: int) -> None:
        session.execute(
            _OPEN_CHAIN, {"audit_chain": chain, "genesis": chain_genesis(self.key, chain)}
        )

    def _chain_for(self, session: Session, event: AuditEvent) -> int:
        """The chain of this transaction: picked by its first entry, kept for the rest."""
        session.connection()  # begins the transaction, if none has begun
        transaction = session.get_transaction()
        held = session.info.get(_CHAIN_MEMO)
        if held is not None and held[0]() is transaction:
            return int(held[1])
        spread_by = (event.subject or event.actor_client_id).encode()
        chain = zlib.crc32(spread_by) % self.chains + FIRST_CHAIN
        # A weak reference: the transaction refers to the session, and a strong one here made
        # every audited session a cycle, freed only by the collector's full collections.
        session.info[_CHAIN_MEMO] = (weakref.ref(transaction), chain)
        return chain

    def record(
        self,
        session: Session,
        event: AuditEvent,
        at: datetime,
        *,
        alongside: bulk.Insert | None = None,
    ) -> dict[str, Any]:
        """Append one entry within the caller's transaction, so it commits with what it
        records; returns its row as written (as record_many does: no AuditEntry is built for
        a caller that, on every audited request, has no use for one). `alongside`: rows the
        audited action writes, sent with the entry (see record_many)."""
        (written,) = self.record_many(session, [event], at, alongside=alongside)
        return written

    def record_many(
        self,
        session: Session,
        events: Sequence[AuditEvent],
        at: datetime,
        *,
        alongside: bulk.Insert | None = None,
    ) -> list[dict[str, Any]]:
        """Append `events` in order within the caller's transaction; returns the rows as
        written (text as stored, see the module docstring; all but their common time, `at`).
        Two statements however many there are (the head advanced; the rows inserted with the
        head's new MAC set, one data-modifying WITH on PostgreSQL, two statements on SQLite,
        where a statement costs no round trip), so a job
        that changes a million permits writes its million entries at bulk speed, and a request
        that audits one thing pays two round trips for it. On PostgreSQL the `alongside` INSERT
        (its rows bound by a name other than "rows") joins the second statement, so a request
        that writes one row and audits it pays no more; on SQLite it runs just before.

        The head is advanced by an UPDATE ... RETURNING and never read through the session's
        identity map: the UPDATE's row lock (BEGIN IMMEDIATE on SQLite) makes concurrent
        appenders queue, and RETURNING gives the committed values even when the session still
        holds an AuditHead loaded in an earlier transaction.
        """
        if not events:
            return []
        metrics.AUDIT_APPENDS.inc(len(events))
        chain = self._chain_for(session, events[0])
        # Core statements on the session's connection: through session.execute they would take
        # the ORM's bulk-update path and autoflush (a third of a registration's CPU, profiled
        # under load); what the session holds pending is flushed by its next query or commit.
        connection = session.connection()
        advance = {"count": len(events), "audit_chain": chain}
        advanced = connection.execute(_ADVANCE, advance).first()
        if advanced is None:  # a chain this database has no head for yet
            self._open(session, chain)
            advanced = connection.execute(_ADVANCE, advance).one()
        first = advanced.seq - len(events) + 1
        stored, previous = _stored(at), advanced.row_hash
        rows = []
        for position, event in enumerate(events, start=first):
            written, mac = _sealed(self.key, position, stored, event, previous)
            rows.append(
                {
                    "chain": chain,
                    "position": position,
                    **_fields(written),
                    "prev_hash": previous,
                    "row_hash": mac,
                }
            )
            previous = mac
        dialect = connection.dialect
        append = bulk.Insert.of(dialect, AUDIT_LOG, rows, constants={"at": stored})
        if dialect.name == "postgresql":  # one round trip for all
            along = [] if alongside is None else [alongside]
            items = [f"alongside AS ({insert.text})" for insert in along]
            items.append(f"appended AS ({append.text})")
            text = f"WITH {', '.join(items)} {_SET_HASH_TEXT}"
            parameters = {"head_hash": previous, "audit_chain": chain, **append.parameters}
            for insert in along:
                parameters.update(insert.parameters)
            connection.execute(append.bound(text, *along), parameters)
        else:
            if alongside is not None:
                connection.execute(alongside.bound(), alongside.parameters)
            connection.execute(append.bound(), append.parameters)
            connection.execute(_SET_HASH, {"head_hash": previous, "audit_chain": chain})
        loaded = session.identity_map.get(identity_key(AuditHead, chain))
        if loaded is not None:
            session.expire(loaded)
        return rows

    def verify(self, session: Session, progress: Progress | None = None) -> VerifyReport:
        """Check every chain, one after the other, in this session (`hub audit verify` checks
        them in parallel: hub.audit_verify)."""
        return self.walk(session, chains_in(session), progress)

    def walk(
        self,
        session: Session,
        chains: Sequence[int],
        progress: Progress | None = None,
        starts: Mapping[int, Start] | None = None,
    ) -> VerifyReport:
        """Check these chains, one after the other; a chain in `starts` from there on."""
        starts = starts or {}
        return VerifyReport.joined(
            [self.verify_chain(session, chain, progress, starts.get(chain)) for chain in chains]
        )

    def verify_chain(
        self,
        session: Session,
        chain: int,
        progress: Progress | None = None,
        start: Start | None = None,
    ) -> VerifyReport:
        """Check one chain as one consistent state, without holding up appenders; from
        `start` on when given (the rows up to it vouched for by a signed checkpoint).

        Head and rows come from a single statement (the head and every row outer-joined to one
        constant row, so rows are still read when the head is gone): under PostgreSQL's READ
        COMMITTED each statement has its own snapshot, so reading them separately lets an
        append that commits in between look like a deleted or inserted row. Rows are streamed,
        since the log only grows.
        """
        anchor = sa.select(sa.literal(1).label("one")).subquery()
        statement = (
            sa.select(*_HEAD_COLUMNS, *AUDIT_LOG.c)
            .select_from(anchor)
            .outerjoin(AUDIT_HEAD, AUDIT_HEAD.c.id == chain)
            .outerjoin(
                AUDIT_LOG,
                sa.and_(
                    AUDIT_LOG.c.chain == chain,
                    AUDIT_LOG.c.position > (start.position if start else 0),
                ),
            )
            .order_by(AUDIT_LOG.c.position)
            .execution_options(yield_per=5_000)
        )
        # Rows, not entities: building an AuditEntry per row cost more than checking its MAC.
        result = session.execute(statement)
        try:
            rows = iter(result)
            first = next(rows)  # the constant row makes one at least
            head = None
            if first.head_id is not None:
                head = AuditHead(id=first.head_id, seq=first.head_length, row_hash=first.head_hash)
            if first.seq is None:
                return check_chain(self.key, [], head, chain=chain, start=start)
            entries = cast("Iterator[Entry]", itertools.chain([first], rows))
            if progress is not None:
                entries = _reported(entries, progress)
            return check_chain(self.key, entries, head, chain=chain, start=start)
        finally:
            result.close()

    def wrote(self, entry: AuditEntry) -> bool:
        """The entry's MAC holds under this log's key: the hub wrote it with this master
        secret (hub.keycheck asks this of a database made before it kept a check value)."""
        return _genuine(self.key, entry)


@dataclass(frozen=True)
class Start:
    """Where an incremental walk of a chain starts: a row the chain is known to run through
    (its position and MAC, from a signed checkpoint)."""

    position: int
    row_hash: str


class Entry(Protocol):
    """What a chain's walk reads of a row: an AuditEntry, or a row of its columns."""

    @property
    def position(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def actor_client_id(self) -> str: ...
    @property
    def actor_department(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def row_hash(self) -> str: ...


_HEAD_COLUMNS = (
    AUDIT_HEAD.c.id.label("head_id"),
    AUDIT_HEAD.c.seq.label("head_length"),
    AUDIT_HEAD.c.row_hash.label("head_hash"),
)

Progress = Callable[[int], None]
"""Told, every PROGRESS_ROWS rows a walk reads, that it read that many more."""
PROGRESS_ROWS = 10_000


def _reported(entries: Iterator[Entry], progress: Progress) -> Iterator[Entry]:
    for read, entry in enumerate(entries, start=1):
        if read % PROGRESS_ROWS == 0:
            progress(PROGRESS_ROWS)
        yield entry


def heads(session: Session) -> list[tuple[int, int, str]]:
    """Every chain's head, (chain, length, last MAC) by chain, in one statement (one
    consistent state)."""
    rows = session.execute(
        sa.select(AUDIT_HEAD.c.id, AUDIT_HEAD.c.seq, AUDIT_HEAD.c.row_hash).order_by(
            AUDIT_HEAD.c.id
        )
    ).all()
    return [(int(chain), int(length), str(mac)) for chain, length, mac in rows]


def chains_in(session: Session) -> list[int]:
    """Every chain of the log: chain 1, those with a head, and any whose rows have lost it."""
    heads = session.exec(select(AuditHead.id)).all()
    headless = session.exec(
        select(col(AuditEntry.chain))
        .where(col(AuditEntry.chain).not_in(select(AuditHead.id)))
        .distinct()
    ).all()
    return sorted({FIRST_CHAIN, *heads, *headless})


class FindingKind(StrEnum):
    """How the chain was broken, as far as the rows can tell (a row replaced wholesale is
    indistinguishable from one deleted and another inserted in its place, and is reported as
    both)."""

    ALTERED = "altered"
    DELETED = "deleted"
    INSERTED = "inserted"
    # Only a checkpoint kept outside the database can show these (hub.checkpoints).
    TRUNCATED = "truncated"
    FORKED = "forked"


@dataclass(frozen=True)
class Finding:
    """One break, over the rows at positions `first`..`last` of `chain` (one row when they
    are equal; a run of rows broken the same way is one finding). A head that disagrees is
    named by its length, and a head that is gone by 0."""

    kind: FindingKind
    first: int
    last: int
    explanation: str
    chain: int = FIRST_CHAIN

    @property
    def rows(self) -> str:
        return _rows_named(self.first, self.last)

    def __str__(self) -> str:
        return f"{self.rows}: {self.kind.value} ({self.explanation})"


@dataclass(frozen=True)
class VerifyReport:
    """`rows_checked` counts the rows read; `findings` every break, in the order of the rows."""

    rows_checked: int
    findings: tuple[Finding, ...] = ()
    chains: int = 1

    @property
    def intact(self) -> bool:
        return not self.findings

    @classmethod
    def joined(cls, reports: Sequence[VerifyReport]) -> VerifyReport:
        """The report of several chains' walks, findings in chain order."""
        return cls(
            sum(report.rows_checked for report in reports),
            tuple(finding for report in reports for finding in report.findings),
            sum(report.chains for report in reports),
        )


def _genuine(key: bytes, row: Entry) -> bool:
    """The row's MAC holds. A value of the wrong type (SQLite stores what it is given) cannot
    have been written by the hub, so it fails the check rather than the verifier."""
    try:
        return hmac.compare_digest(_mac(key, row), str(row.row_hash))
    except (AttributeError, TypeError, ValueError):
        return False


def _rows_named(first: int, last: int) -> str:
    return f"row {first}" if first == last else f"rows {first}..{last}"


def _with_following(
    entries: Iterable[Entry], last: str | None
) -> Iterator[tuple[Entry, str | None]]:
    """Each row with the hash the chain expects it to have: the next row's prev_hash, or the
    head's for the last row. One row of look-ahead, so a long log is never held in memory."""
    rows = iter(entries)
    current = next(rows, None)
    while current is not None:
        following = next(rows, None)
        yield current, following.prev_hash if following is not None else last
        current = following


class _Findings:
    """The findings of one walk, a run of consecutive rows broken the same way kept as one."""

    def __init__(self, chain: int) -> None:
        self.chain = chain
        self.found: list[Finding] = []

    def add(self, kind: FindingKind, first: int, last: int, explanation: str) -> None:
        previous = self.found[-1] if self.found else None
        if (
            previous is not None
            and (previous.kind, previous.explanation) == (kind, explanation)
            and previous.last + 1 == first
        ):
            self.found[-1] = dataclasses.replace(previous, last=last)
        else:
            self.found.append(Finding(kind, first, last, explanation, self.chain))


def check_chain(
    key: bytes,
    entries: Iterable[Entry],
    head: AuditHead | None,
    *,
    chain: int = FIRST_CHAIN,
    start: Start | None = None,
) -> VerifyReport:
    """Walk one chain (rows in position order) and name every row where it breaks.

    A row whose own MAC fails is *altered* when its successor (or the head) still links to it,
    and *inserted* when not (a row the hub never wrote, or one replaced wholesale). The walk
    goes on from the last row the chain runs through (a genuine or an altered one), so one
    break hides no other: a genuine row is where it re-synchronises, since its MAC vouches
    for its position and its predecessor's hash. Rows missing before a genuine row or before the
    head are *deleted*, named as a range.
    """
    findings = _Findings(chain)
    # The last row the chain runs through, and how many rows were read.
    chain_seq, chain_hash = (
        (start.position, start.row_hash) if start else (0, chain_genesis(key, chain))
    )
    checked = 0

    def missing_before(seq: int, where: str) -> None:
        if seq > chain_seq + 1:
            findings.add(FindingKind.DELETED, chain_seq + 1, seq - 1, f"missing {where}")

    for row, following in _with_following(entries, head.row_hash if head else None):
        checked += 1
        if _genuine(key, row):
            missing_before(row.position, f"before row {row.position}")
            if row.position == chain_seq + 1 and row.prev_hash != chain_hash:
                findings.add(
                    FindingKind.DELETED,
                    chain_seq,
                    chain_seq,
                    f"replaced by a row that row {row.position} does not follow",
                )
        elif following == row.row_hash:
            missing_before(row.position, f"before row {row.position}")
            findings.add(FindingKind.ALTERED, row.position, row.position, "content changed")
        else:
            findings.add(FindingKind.INSERTED, row.position, row.position, "not written by the hub")
            continue
        chain_seq, chain_hash = row.position, row.row_hash
    if head is None:  # the migration seeds the head row, so it was deleted
        findings.add(FindingKind.DELETED, 0, 0, "the chain head is gone")
    elif head.seq > chain_seq:
        missing_before(head.seq + 1, "at the end")
    elif head.seq != chain_seq or head.row_hash != chain_hash:
        findings.add(FindingKind.ALTERED, head.seq, head.seq, "the chain head does not match")
    return VerifyReport(checked, tuple(findings.found))
