"""Statistics for assessment [NB 四(二)][NN 五(三)]: what the registry, the windows and the
exchange did, by jurisdiction and month (China time), computed by SQL over the stored facts:
one grouped query per figure, none reading a row per holder into Python.

Months are those of the civil calendar in China: a date column as it is, a stored UTC time
shifted to Asia/Shanghai by the database itself (`china_month`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any, ClassVar, Final

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlmodel import Field, Session, SQLModel, col

from hub.audit import Actor, AuditEntry, AuditLog
from hub.card.store import Card
from hub.clock import china_day_start
from hub.connectors.store import Delivery
from hub.permits.store import Permit, PermitEvent, Registration
from hub.verification.store import DECISIONS

ACTION: Final = "statistics.read"
LOOKUP: Final = "exchange.lookup"
COUNTED_EXCHANGE: Final = (LOOKUP, "exchange.feed")
COUNTED_ACTIONS: Final = ("application.assess", *COUNTED_EXCHANGE)
"""The audited actions the statistics count, indexed by time (ix_audit_log_counted, a partial
index: the other actions add nothing to it)."""
TAPS: Final = "taps"
PUSHES: Final = "pushes"
LATE_SHOWN: Final = 200
"""The late issuances listed by name (receipt number); the count covers all of them."""


class _PerDialect(FunctionElement[Any]):
    """A function of one argument written for each database: `templates[dialect]`, the
    argument's SQL in place of {}."""

    inherit_cache = True
    templates: ClassVar[Mapping[str, str]] = {}


@compiles(_PerDialect)
def _per_dialect(element: _PerDialect, compiler: SQLCompiler, **kw: Any) -> str:
    (argument,) = list(element.clauses)
    return element.templates[compiler.dialect.name].format(compiler.process(argument, **kw))


class china_month(_PerDialect):
    """'YYYY-MM' of a stored UTC time, in China."""

    type = sa.String()
    inherit_cache = True
    templates: ClassVar[Mapping[str, str]] = {
        "postgresql": "to_char(({}) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')",
        "sqlite": "strftime('%Y-%m', {}, '+8 hours')",
    }


class date_month(_PerDialect):
    """'YYYY-MM' of a date column."""

    type = sa.String()
    inherit_cache = True
    templates: ClassVar[Mapping[str, str]] = {
        "postgresql": "to_char({}, 'YYYY-MM')",
        "sqlite": "strftime('%Y-%m', {})",
    }


class text_date(_PerDialect):
    """An ISO date held as text (an event's `on`), comparable with a date column (SQLite keeps
    dates as ISO text already)."""

    type = sa.Date()
    inherit_cache = True
    templates: ClassVar[Mapping[str, str]] = {"postgresql": "CAST({} AS DATE)", "sqlite": "{}"}


@dataclass(frozen=True)
class Period:
    """Whole months, `first` to `last` included, as 'YYYY-MM'."""

    first: str
    last: str

    @property
    def start_day(self) -> date:
        return date.fromisoformat(f"{self.first}-01")

    @property
    def end_day(self) -> date:
        """The first day after the period."""
        year, month = map(int, self.last.split("-"))
        return date(year + month // 12, month % 12 + 1, 1)

    @property
    def start(self) -> datetime:
        return china_day_start(self.start_day)

    @property
    def end(self) -> datetime:
        return china_day_start(self.end_day)


@dataclass
class Figures:
    """Each figure's rows: dictionaries of their dimensions and a `count` (or shares)."""

    period: Period
    jurisdictions: tuple[str, ...]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


Rows = list[dict[str, Any]]
DELIVERIES: Final[sa.Table] = Delivery.__table__  # type: ignore[attr-defined]


class ArchivedCount(SQLModel, table=True):
    """What retention (hub.retention) took out of the tables a figure counts, counted first
    on that figure's dimensions, so the statistics of an archived month stay as they were.
    `dimensions` is the figure's row without its count, as JSON (the figures differ in
    their dimensions); its jurisdiction and month are columns too, to choose by."""

    __tablename__ = "statistics_archived"
    __table_args__ = (sa.Index("ix_statistics_archived_figure_month", "figure", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    figure: str = Field(max_length=32)
    jurisdiction: str | None = Field(default=None, max_length=64)
    month: str = Field(max_length=7)
    dimensions: str = Field(sa_type=sa.Text)
    count: int = Field(sa_type=sa.BigInteger)


ARCHIVED: Final[sa.Table] = ArchivedCount.__table__  # type: ignore[attr-defined]
ROLL_UPS: Final = {"verification_decision": TAPS, "delivery": PUSHES}
"""The figure counting each table retention archives."""


def roll_up(session: Session, table: str, source: sa.Table, start: datetime, end: datetime) -> Rows:
    """The counts, on the dimensions of the figure over `table`, of the rows of `source`
    (rows of `table` kept apart to be archived) whose time falls in [start, end), as rows of
    statistics_archived. Deliveries never delivered (dead letters) count in no figure."""
    if ROLL_UPS[table] == TAPS:
        when = source.c.decided_at
        query = _tap_counts(source, when >= start, when < end)
    else:
        when = source.c.created_at
        query = _push_counts(source, when >= start, when < end, source.c.delivered_at.is_not(None))
    rows = []
    for row in _rows(session, query):
        count = row.pop("count")
        rows.append(
            {
                "figure": ROLL_UPS[table],
                "jurisdiction": row["jurisdiction"],
                "month": row["month"],
                "dimensions": json.dumps(row, ensure_ascii=False),
                "count": count,
            }
        )
    return rows


def keep_counts(session: Session, counts: Rows) -> int:
    """Store counts from roll_up; returns how many rows they count."""
    if counts:
        session.execute(sa.insert(ARCHIVED), counts)
    return sum(count["count"] for count in counts)


def _rows(session: Session, query: sa.Select[*tuple[Any, ...]]) -> Rows:
    return [dict(row._mapping) for row in session.execute(query)]


def _events(
    session: Session, period: Period, served: Sequence[str], *, kind: str, restoring: bool | None
) -> Rows:
    """Events of one type by jurisdiction and month; for endorsements, restorations (of a
    suspended permit) apart from the yearly ones."""
    month = china_month(col(PermitEvent.at)).label("month")
    query: sa.Select[*tuple[Any, ...]] = (
        sa.select(
            col(Permit.jurisdiction).label("jurisdiction"), month, sa.func.count().label("count")
        )
        .join(Permit, col(Permit.id) == col(PermitEvent.permit_id))
        .where(
            col(PermitEvent.type) == kind,
            col(PermitEvent.at) >= period.start,
            col(PermitEvent.at) < period.end,
            col(Permit.jurisdiction).in_(served),
        )
        .group_by(col(Permit.jurisdiction), month)
        .order_by(col(Permit.jurisdiction), month)
    )
    if restoring is not None:
        from_state = PermitEvent.payload["from_state"].as_string()
        suspended = sa.func.coalesce(from_state, "") == "suspended"
        query = query.where(suspended if restoring else sa.not_(suspended))
    return _rows(session, query)


def _registrations(session: Session, period: Period, served: Sequence[str]) -> Rows:
    registered = date_month(col(Registration.registered_on)).label("month")
    return _rows(
        session,
        sa.select(
            col(Registration.jurisdiction).label("jurisdiction"),
            registered,
            sa.func.count().label("count"),
        )
        .where(
            col(Registration.registered_on) >= period.start_day,
            col(Registration.registered_on) < period.end_day,
            col(Registration.jurisdiction).in_(served),
        )
        .group_by(col(Registration.jurisdiction), registered)
        .order_by(col(Registration.jurisdiction), registered),
    )


def _accepted(session: Session, period: Period, served: Sequence[str]) -> Rows:
    accepted = date_month(col(Permit.accepted_on)).label("month")
    return _rows(
        session,
        sa.select(
            col(Permit.jurisdiction).label("jurisdiction"), accepted, sa.func.count().label("count")
        )
        .where(
            col(Permit.accepted_on) >= period.start_day,
            col(Permit.accepted_on) < period.end_day,
            col(Permit.jurisdiction).in_(served),
        )
        .group_by(col(Permit.jurisdiction), accepted)
        .order_by(col(Permit.jurisdiction), accepted),
    )


def _by_state(session: Session, period: Period, served: Sequence[str]) -> Rows:
    """Permits by state now (a state is not a monthly flow)."""
    return _rows(
        session,
        sa.select(
            col(Permit.jurisdiction).label("jurisdiction"),
            col(Permit.state).label("state"),
            sa.func.count().label("count"),
        )
        .where(col(Permit.jurisdiction).in_(served))
        .group_by(col(Permit.jurisdiction), col(Permit.state))
        .order_by(col(Permit.jurisdiction), col(Permit.state)),
    )


def _refusals(session: Session, period: Period, served: Sequence[str]) -> Rows:
    """Refused applications by reason: each is an audit entry (application.assess, outcome
    refused:<reason>) whose subject is the applicant's keyed hash, the registration's too."""
    month = china_month(col(AuditEntry.at)).label("month")
    reason = sa.func.substr(col(AuditEntry.outcome), len("refused:") + 1).label("reason")
    where = registration_of_subject()
    return _rows(
        session,
        sa.select(
            col(Registration.jurisdiction).label("jurisdiction"),
            month,
            reason,
            sa.func.count().label("count"),
        )
        .select_from(AuditEntry)
        .join(Registration, where)
        .where(
            col(AuditEntry.action) == "application.assess",
            col(AuditEntry.at) >= period.start,
            col(AuditEntry.at) < period.end,
            col(Registration.jurisdiction).in_(served),
        )
        .group_by(col(Registration.jurisdiction), month, reason)
        .order_by(col(Registration.jurisdiction), month, reason),
    )


def registration_of_subject() -> ColumnElement[bool]:
    """The applicant's latest registration (the one the refused application was on)."""
    later = sa.orm.aliased(Registration)
    newer = (
        sa.select(sa.literal(1))
        .where(
            col(later.citizen_id_hash) == col(Registration.citizen_id_hash),
            col(later.created_at) > col(Registration.created_at),
        )
        .exists()
    )
    return sa.and_(col(Registration.citizen_id_hash) == col(AuditEntry.subject), sa.not_(newer))


def _issues(period: Period, served: Sequence[str]) -> sa.Select[*tuple[Any, ...]]:
    """Issue events in the period, with their permits, for the columns a figure adds."""
    return (
        sa.select()
        .select_from(PermitEvent)
        .join(Permit, col(Permit.id) == col(PermitEvent.permit_id))
        .where(
            col(PermitEvent.type) == "issue",
            col(PermitEvent.at) >= period.start,
            col(PermitEvent.at) < period.end,
            col(Permit.jurisdiction).in_(served),
        )
    )


def _late() -> sa.ColumnElement[bool]:
    """Issued after the deadline [CF §17]: the event's day (China) after the permit's due day."""
    return text_date(PermitEvent.payload["on"].as_string()) > col(Permit.issue_due_on)


def _issuance(session: Session, period: Period, served: Sequence[str]) -> Rows:
    """Issued within the deadline [CF §17] or late, by month of issue."""
    month = china_month(col(PermitEvent.at)).label("month")
    base, late = _issues(period, served), _late()
    counts = _rows(
        session,
        base.add_columns(
            col(Permit.jurisdiction).label("jurisdiction"),
            month,
            sa.func.count().label("issued"),
            sa.func.sum(sa.case((late, 1), else_=0)).label("late"),
        )
        .group_by(col(Permit.jurisdiction), month)
        .order_by(col(Permit.jurisdiction), month),
    )
    for row in counts:
        row["late"] = int(row["late"] or 0)
        row["on_time"] = row["issued"] - row["late"]
        row["on_time_share"] = round(row["on_time"] / row["issued"], 4)
    return counts


def _issued_late(session: Session, period: Period, served: Sequence[str]) -> Rows:
    """The late issuances by receipt number, the first LATE_SHOWN of them."""
    listed = _rows(
        session,
        _issues(period, served)
        .add_columns(
            col(Permit.jurisdiction).label("jurisdiction"),
            col(Permit.receipt_number).label("receipt_number"),
            col(Permit.issue_due_on).label("issue_due_on"),
            PermitEvent.payload["on"].as_string().label("issued_on"),
        )
        .where(_late())
        .order_by(col(PermitEvent.at))
        .limit(LATE_SHOWN),
    )
    for row in listed:
        row["issue_due_on"] = row["issue_due_on"].isoformat()
    return listed


def _tap_counts(source: sa.Table, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Decisions at windows by jurisdiction, month, department, service and decision, of the
    decisions in `source` (the table, or a month of it being archived)."""
    month = china_month(source.c.decided_at).label("month")
    place: sa.ColumnElement[Any] = col(Permit.jurisdiction).label("jurisdiction")
    dimensions: tuple[sa.ColumnElement[Any], ...] = (
        place,
        month,
        source.c.department.label("department"),
        source.c.service.label("service"),
        source.c.decision.label("decision"),
    )
    return (
        sa.select(*dimensions, sa.func.count().label("count"))
        .select_from(source)
        .outerjoin(Card, col(Card.serial) == source.c.card_serial)
        .outerjoin(Permit, col(Permit.id) == col(Card.permit_id))
        .where(*where)
        .group_by(*dimensions)
        .order_by(*dimensions)
    )


def _taps(session: Session, period: Period, served: Sequence[str]) -> Rows:
    """Decisions at windows by department, service and decision; a card the hub does not
    know (a forgery, a misread) counts under no jurisdiction."""
    decided_at = DECISIONS.c.decided_at
    live = _tap_counts(
        DECISIONS,
        decided_at >= period.start,
        decided_at < period.end,
        sa.or_(col(Permit.jurisdiction).in_(served), col(Permit.jurisdiction).is_(None)),
    )
    return _with_archived(session, TAPS, _rows(session, live), period, served)


def _push_counts(source: sa.Table, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Holder records delivered by push, by jurisdiction, month of delivery and department,
    of the deliveries in `source` (the table, or a month of it being archived)."""
    dimensions: tuple[sa.ColumnElement[Any], ...] = (
        col(Permit.jurisdiction).label("jurisdiction"),
        china_month(source.c.delivered_at).label("month"),
        source.c.department.label("department"),
    )
    return (
        sa.select(*dimensions, sa.func.count().label("count"))
        .select_from(source)
        .join(Permit, col(Permit.id) == source.c.permit_id)
        .where(*where)
        .group_by(*dimensions)
        .order_by(*dimensions)
    )


def _pushes(session: Session, period: Period, served: Sequence[str]) -> Rows:
    """Holder records delivered to each department by push, by month of delivery."""
    delivered_at = DELIVERIES.c.delivered_at
    live = _push_counts(
        DELIVERIES,
        delivered_at >= period.start,
        delivered_at < period.end,
        col(Permit.jurisdiction).in_(served),
    )
    return _with_archived(session, PUSHES, _rows(session, live), period, served)


def _with_archived(
    session: Session, figure: str, live: Rows, period: Period, served: Sequence[str]
) -> Rows:
    """A figure's rows counted in the database, plus what retention archived of it (added
    row by row on the same dimensions), so an archived month keeps its statistics."""
    archived = ARCHIVED.c
    rows = session.execute(
        sa.select(archived.dimensions, archived.count).where(
            archived.figure == figure,
            archived.month >= period.first,
            archived.month <= period.last,
            sa.or_(archived.jurisdiction.in_(served), archived.jurisdiction.is_(None)),
        )
    ).all()
    merged = {tuple(row[key] for key in row if key != "count"): row for row in live}
    for dimensions, count in rows:
        values = json.loads(dimensions)
        key = tuple(values.values())
        if key in merged:
            merged[key]["count"] += count
        else:
            merged[key] = {**values, "count": count}
    # In order of the dimensions, a missing one (a card nobody was issued) last, on both
    # databases (SQLite would put it first).
    return sorted(merged.values(), key=lambda row: [(v is None, v) for v in row.values()][:-1])


def _exchange_reads(session: Session, period: Period, served: Sequence[str]) -> Rows:
    """Look-ups that found a holder and holder records read from the feed, by department and
    month, hub-wide: a feed page spans jurisdictions, and counts name no one."""
    month = china_month(col(AuditEntry.at)).label("month")
    outcome = col(AuditEntry.outcome)
    records = sa.case(
        (col(AuditEntry.action) == LOOKUP, sa.case((outcome == "found", 1), else_=0)),
        else_=sa.case((outcome.regexp_match("^[0-9]+$"), sa.cast(outcome, sa.Integer)), else_=0),
    )
    dimensions: tuple[sa.ColumnElement[Any], ...] = (
        month,
        col(AuditEntry.actor_department).label("department"),
        col(AuditEntry.action).label("channel"),
    )
    rows = _rows(
        session,
        sa.select(*dimensions, sa.func.sum(records).label("count"))
        .where(
            col(AuditEntry.action).in_(COUNTED_EXCHANGE),
            col(AuditEntry.at) >= period.start,
            col(AuditEntry.at) < period.end,
        )
        .group_by(*dimensions)
        .order_by(*dimensions),
    )
    for row in rows:
        row["count"] = int(row["count"] or 0)
        row["channel"] = "look-up" if row["channel"] == LOOKUP else "feed"
    return rows


Figure = Callable[[Session, Period, Sequence[str]], Rows]
FIGURES: Final[dict[str, Figure]] = {
    "registrations": _registrations,
    "applications_accepted": _accepted,
    "applications_refused": _refusals,
    "permits_by_state": _by_state,
    "issuance": _issuance,
    "issued_late": _issued_late,
    "endorsements": partial(_events, kind="endorse", restoring=False),
    "restorations": partial(_events, kind="endorse", restoring=True),
    "suspensions": partial(_events, kind="suspend", restoring=None),
    "cancellations": partial(_events, kind="cancel", restoring=None),
    "taps": _taps,
    "pushes": _pushes,
    "exchange_reads": _exchange_reads,
}
"""Each figure by name: one grouped query each (bench/statistics.py times them one by one)."""


def compute(
    session: Session, period: Period, served: Sequence[str], only: Sequence[str] = tuple(FIGURES)
) -> Figures:
    """The figures named in `only` (every one by default) over the period for the
    jurisdictions served."""
    figures = Figures(period, tuple(served))
    for name in only:
        figures.tables[name] = FIGURES[name](session, period, served)
    return figures


def record_read(
    session: Session, audit: AuditLog, actor: Actor, period: Period, now: datetime
) -> None:
    """Aggregates disclose no one; the late list names receipt numbers, so the read is on
    record (no holder subject: it is a list, not a person)."""
    purpose = f"assessment {period.first}..{period.last}"
    audit.record(session, actor.did(ACTION, "read", None, purpose), now)


CSV_COLUMNS: Final = (
    "figure",
    "jurisdiction",
    "channel",
    "month",
    "department",
    "service",
    "decision",
    "reason",
    "state",
    "count",
    "issued",
    "on_time",
    "late",
    "on_time_share",
    "receipt_number",
    "issue_due_on",
    "issued_on",
)


def as_csv(figures: Figures) -> str:
    """One long table: a row per figure's row, its dimensions in their columns."""
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=CSV_COLUMNS, extrasaction="raise", lineterminator="\r\n"
    )
    writer.writeheader()
    for name, rows in figures.tables.items():
        for row in rows:
            writer.writerow({"figure": name, **_safe(row)})
    return out.getvalue()


def _safe(row: dict[str, Any]) -> dict[str, Any]:
    """A cell a spreadsheet would read as a formula is quoted (OWASP CSV injection)."""
    return {
        key: f"'{value}" if isinstance(value, str) and value[:1] in "=+-@\t\r" else value
        for key, value in row.items()
    }
