"""The permit lifecycle as an explicit state machine, and the residence-period arithmetic.

Pure rules: no framework, no storage, no clock reads. Every move is looked up in one table of
(state, action) -> (state, guard); a pair not in the table is an illegal move, and a guard that
refuses names the rule and its seed, so the registry can answer with a precise 409 problem.
The numbers come from the jurisdiction's configuration through `LifecycleRules`.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol

from hub.clock import Deadline, WorkingCalendar
from hub.permits.problems import REFUSAL_TITLES, REFUSED
from hub.problems import DomainProblem, Problem, Text


class PermitState(StrEnum):
    ACCEPTED = "accepted"  # application accepted, card not yet issued
    VALID = "valid"
    SUSPENDED = "suspended"  # not endorsed by expiry: functions suspended
    CANCELLED = "cancelled"  # terminal


class Action(StrEnum):
    ISSUE = "issue"
    ENDORSE = "endorse"  # on a suspended permit this is the restoration
    SUSPEND = "suspend"
    CHANGE_ADDRESS = "change-address"
    REPLACE = "replace"  # lost card: the old serial is dead at once
    RENEW = "renew"  # damaged card: the old card is returned
    CANCEL = "cancel"
    SETTLE = "settle"  # household registration here: the permit is collected


def add_months(day: date, months: int) -> date:
    """The corresponding day `months` later (or earlier), or the month's last day where there
    is none: Civil Code art. 202 on periods counted in months."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))


@dataclass(frozen=True)
class Span:
    """A span of calendar days or months, as the seeds count windows and grace periods."""

    amount: int
    unit: Literal["days", "months"]

    def after(self, day: date) -> date:
        """The last day of the span that starts after `day` (the start day never counts)."""
        if self.unit == "days":
            return day + timedelta(days=self.amount)
        return add_months(day, self.amount)

    def before(self, day: date) -> date:
        """The first day of the span that ends on `day`."""
        if self.unit == "days":
            return day - timedelta(days=self.amount)
        return add_months(day, -self.amount)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"


class DueAfter(Protocol):
    """A reporting period that may count working days (jurisdictions.Period is one)."""

    def due_after(self, start: date, calendar: WorkingCalendar) -> Deadline: ...


@dataclass(frozen=True)
class CardFees:
    """What each new card costs, by the reason it is made ("free", or "card-cost": the
    production cost, 工本费), with the rule that says so; the defaults are [CF §21]: the first
    card is free, a replacement (lost) or a renewal (damaged) pays; on renewal the old card is
    returned [CF §18]."""

    charges: Mapping[str, tuple[str, str]] = field(
        default_factory=lambda: {
            "first-issuance": ("free", "[CF §21]"),
            "replacement": ("card-cost", "[CF §21]"),
            "renewal": ("card-cost", "[CF §21]"),
        }
    )
    old_card_returned_on_renewal: bool = True


@dataclass(frozen=True)
class LifecycleRules:
    """The jurisdiction's numbers the lifecycle needs, each with the seed it comes from.

    The defaults are Inner Mongolia's [IM][CF §20]; `restoration_grace=None` means a late
    endorsement always restarts residence (the national rule, NAT §10).
    """

    validity_years: int = 1
    extends_years: int = 1
    endorsement_window: Span = Span(30, "days")
    restoration_grace: Span | None = Span(30, "days")
    settlement_years: int | None = None
    cite_validity: str = "[IM][CF §20]"
    cite_endorsement: str = "[IM][CF §20]"
    cite_restoration: str = "[IM][CF §20]"
    cite_settlement: str = "[CF §22]"
    card_fees: CardFees = field(default_factory=lambda: CardFees())


@dataclass(frozen=True)
class PermitFacts:
    """What the rules need to know about one permit; `expires_on` is its last valid day."""

    state: PermitState
    residence_start: date
    valid_from: date | None = None
    expires_on: date | None = None
    suspended_on: date | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a move is not allowed: a stable code, the rule in both languages, and its seed."""

    code: str
    zh: str
    en: str
    cite: str

    def __post_init__(self) -> None:
        if self.code not in REFUSAL_TITLES:
            raise ValueError(f"refusal code {self.code!r} has no entry in REFUSAL_TITLES")


class MoveRefused(DomainProblem):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.en)
        self.refusal = refusal

    def problem(self) -> Problem:
        refusal = self.refusal
        return Problem(
            REFUSED[refusal.code],
            Text(refusal.zh, refusal.en),
            extensions={"reason": refusal.code, "cite": refusal.cite},
        )


@dataclass(frozen=True)
class Transition:
    """The outcome of a legal move: the new facts, and whether residence continuity broke."""

    action: Action
    before: PermitState
    after: PermitFacts
    residence_restarted: bool = False


Guard = Callable[[PermitFacts, date, LifecycleRules], Refusal | None]


def add_years(day: date, years: int) -> date:
    """The corresponding day `years` later, or the month's last day where there is none
    (29 February -> 28 February): Civil Code art. 202 on periods counted in years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def validity(valid_from: date, rules: LifecycleRules) -> tuple[date, date]:
    """First and last valid day of a permit issued (or restored) on `valid_from`.

    The start day is not counted and the period ends on the corresponding day (Civil Code
    art. 201-202), as permits print it: issued 2026-11-25, valid to 2027-11-25.
    """
    return valid_from, add_years(valid_from, rules.validity_years)


def endorsement_window(expires_on: date, rules: LifecycleRules) -> tuple[date, date]:
    """Endorsement is possible in the `endorsement_window` before expiry, and on it."""
    return rules.endorsement_window.before(expires_on), expires_on


def _always(facts: PermitFacts, today: date, rules: LifecycleRules) -> Refusal | None:
    return None


def _endorsement_open(facts: PermitFacts, today: date, rules: LifecycleRules) -> Refusal | None:
    assert facts.expires_on is not None
    opens, closes = endorsement_window(facts.expires_on, rules)
    if today < opens:
        return Refusal(
            "endorsement-window-not-open",
            f"签注须在有效期满前 {rules.endorsement_window} 内办理，最早 {opens.isoformat()}",
            f"Endorsement is possible only in the {rules.endorsement_window} before expiry, "
            f"from {opens.isoformat()}",
            rules.cite_endorsement,
        )
    if today > closes:
        return Refusal(
            "permit-expired",
            "居住证已过期，应先中止，再以签注恢复",
            "The permit has expired: it is suspended first and restored by endorsement",
            rules.cite_restoration,
        )
    return None


def _expired(facts: PermitFacts, today: date, rules: LifecycleRules) -> Refusal | None:
    assert facts.expires_on is not None
    if today <= facts.expires_on:
        return Refusal(
            "permit-not-expired",
            f"居住证有效期至 {facts.expires_on.isoformat()}，尚未到期",
            f"The permit is valid until {facts.expires_on.isoformat()} and cannot be suspended",
            rules.cite_restoration,
        )
    return None


def _settlement_due(facts: PermitFacts, today: date, rules: LifecycleRules) -> Refusal | None:
    years = rules.settlement_years
    if years is None:
        return Refusal(
            "settlement-not-configured",
            "本地未规定凭居住年限落户",
            "This jurisdiction has no settlement rule by years of residence",
            rules.cite_settlement,
        )
    if add_years(facts.residence_start, years) > today:
        return Refusal(
            "settlement-residence-too-short",
            f"连续居住未满 {years} 年",
            f"Continuous residence is shorter than {years} years",
            rules.cite_settlement,
        )
    return None


TRANSITIONS: Mapping[tuple[PermitState, Action], tuple[PermitState, Guard]] = {
    (PermitState.ACCEPTED, Action.ISSUE): (PermitState.VALID, _always),
    (PermitState.ACCEPTED, Action.CANCEL): (PermitState.CANCELLED, _always),
    (PermitState.VALID, Action.ENDORSE): (PermitState.VALID, _endorsement_open),
    (PermitState.VALID, Action.SUSPEND): (PermitState.SUSPENDED, _expired),
    (PermitState.VALID, Action.CHANGE_ADDRESS): (PermitState.VALID, _always),
    (PermitState.VALID, Action.REPLACE): (PermitState.VALID, _always),
    (PermitState.VALID, Action.RENEW): (PermitState.VALID, _always),
    (PermitState.VALID, Action.CANCEL): (PermitState.CANCELLED, _always),
    (PermitState.VALID, Action.SETTLE): (PermitState.CANCELLED, _settlement_due),
    (PermitState.SUSPENDED, Action.ENDORSE): (PermitState.VALID, _always),
    (PermitState.SUSPENDED, Action.CHANGE_ADDRESS): (PermitState.SUSPENDED, _always),
    (PermitState.SUSPENDED, Action.REPLACE): (PermitState.SUSPENDED, _always),
    (PermitState.SUSPENDED, Action.RENEW): (PermitState.SUSPENDED, _always),
    (PermitState.SUSPENDED, Action.CANCEL): (PermitState.CANCELLED, _always),
}


def allowed_actions(state: PermitState) -> list[Action]:
    return [action for (source, action) in TRANSITIONS if source is state]


def move(facts: PermitFacts, action: Action, today: date, rules: LifecycleRules) -> Transition:
    """Apply `action` on `today`, or raise MoveRefused naming the rule."""
    entry = TRANSITIONS.get((facts.state, action))
    if entry is None:
        allowed = ", ".join(allowed_actions(facts.state)) or "none"
        raise MoveRefused(
            Refusal(
                "illegal-transition",
                f"状态为“{facts.state.value}”的居住证不能办理“{action.value}”",
                f"A permit in state {facts.state.value!r} cannot {action.value!r} "
                f"(allowed: {allowed})",
                "[CF §14-§23]",
            )
        )
    target, guard = entry
    refusal = guard(facts, today, rules)
    if refusal is not None:
        raise MoveRefused(refusal)
    return _apply(facts, action, target, today, rules)


def _apply(
    facts: PermitFacts, action: Action, target: PermitState, today: date, rules: LifecycleRules
) -> Transition:
    changes: dict[str, Any] = {}  # one copy of the facts: the sweep makes a million moves
    restarted = False
    if action is Action.ISSUE:
        changes["valid_from"], changes["expires_on"] = validity(today, rules)
    elif action is Action.SUSPEND:
        assert facts.expires_on is not None
        changes["suspended_on"] = facts.expires_on + timedelta(days=1)
    elif action is Action.ENDORSE and facts.state is PermitState.VALID:
        assert facts.expires_on is not None
        changes["expires_on"] = add_years(facts.expires_on, rules.extends_years)
    elif action is Action.ENDORSE:  # restoration of a suspended permit
        assert facts.suspended_on is not None
        valid_from, expires_on = validity(today, rules)
        grace = rules.restoration_grace
        restarted = grace is None or today > grace.after(facts.suspended_on)
        changes = {
            "valid_from": valid_from,
            "expires_on": expires_on,
            "suspended_on": None,
            "residence_start": today if restarted else facts.residence_start,
        }
    after = replace(facts, state=target, **changes)
    return Transition(action, facts.state, after, residence_restarted=restarted)


@dataclass(frozen=True)
class AddressRules:
    """Report a move within `report_within` [IM: 30 days; CF §19: 7 working days]; reported
    later than `restart_after` the move (CF §19: one month), residence counts from the report.
    Where no such threshold is configured, the reporting deadline is the threshold."""

    report_within: DueAfter
    restart_after: Span | None
    cite: str


@dataclass(frozen=True)
class AddressChange:
    transition: Transition
    due: date
    overdue: bool  # the duty to report was breached
    provisional: bool  # the deadline ran into a year without a known holiday schedule


def change_address(
    facts: PermitFacts,
    *,
    moved_on: date,
    reported_on: date,
    address: AddressRules,
    calendar: WorkingCalendar,
    rules: LifecycleRules,
) -> AddressChange:
    """Record a move; reported too late, residence counts from the report [CF §19]."""
    if reported_on < moved_on:
        raise MoveRefused(
            Refusal(
                "moved-after-report",
                "迁入日期晚于申报日期",
                "The move date is after the date it was reported",
                address.cite,
            )
        )
    transition = move(facts, Action.CHANGE_ADDRESS, reported_on, rules)
    deadline = address.report_within.due_after(moved_on, calendar)
    threshold = address.restart_after.after(moved_on) if address.restart_after else deadline.due
    if reported_on > threshold:
        after = replace(transition.after, residence_start=reported_on)
        transition = replace(transition, after=after, residence_restarted=True)
    return AddressChange(transition, deadline.due, reported_on > deadline.due, deadline.provisional)


@dataclass(frozen=True)
class Declaration:
    """A residence registration judged against its declaration deadline [CF §10], and the day
    its registered residence counts from."""

    due: date | None  # None where no document we hold sets a deadline
    late: bool
    provisional: bool  # the deadline ran into a year without a known holiday schedule
    residence_start: date


def declaration(
    *,
    arrived_on: date,
    declared_on: date,
    deadline: Deadline | None,
    registration_required: bool,
    temporary_permit_since: date | None,
) -> Declaration:
    """Where residence counts from, for a registration declared on `declared_on`.

    The conditions count *registered* residence ("办理暂住登记已满半年" [CF §2][IM] 二(三)), so a
    self-declared arrival counts only when the declaration met its deadline; a late one counts
    from the day it was declared, as a late address report does [CF §19], and so does one with no
    deadline to meet: otherwise an arrival claimed years back would earn those years. Years
    under a temporary-residence permit (暂住证) are the documented exception [CF §32][IM] 二(五);
    where the rules count residence without registration (`registration_required` false), the
    arrival counts.
    """
    late = deadline is not None and declared_on > deadline.due
    if temporary_permit_since is not None:
        start = temporary_permit_since
    elif not registration_required or (deadline is not None and not late):
        start = arrived_on
    else:
        start = declared_on
    return Declaration(
        due=deadline.due if deadline else None,
        late=late,
        provisional=deadline is not None and deadline.provisional,
        residence_start=start,
    )


@dataclass(frozen=True)
class ResidencePeriod:
    start: date
    days: int

    @property
    def whole_years(self) -> int:
        """Completed years, counted as `add_years` counts them (29 February -> 28 February)."""
        end = self.start + timedelta(days=self.days)
        years = end.year - self.start.year
        return years - 1 if add_years(self.start, years) > end else years


@dataclass(frozen=True)
class ResidenceChange:
    """From `effective_on`, continuous residence counts from `start` (registration, an
    imported temporary-residence start, a late restoration or a late address report)."""

    effective_on: date
    start: date


def residence_on(changes: list[ResidenceChange], day: date) -> ResidencePeriod | None:
    """The continuous residence in force on `day`, or None before the holder was registered."""
    in_force = [change for change in changes if change.effective_on <= day]
    if not in_force:
        return None
    latest = max(in_force, key=lambda change: change.effective_on)
    return ResidencePeriod(latest.start, max((day - latest.start).days, 0))
