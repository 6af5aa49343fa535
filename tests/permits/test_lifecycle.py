"""The permit lifecycle, table-driven from the seeds' numbers ([IM], [CF §14-§22])."""

from __future__ import annotations

from datetime import date

import pytest

from hub.clock import WorkingCalendar
from hub.permits.domain import (
    TRANSITIONS,
    Action,
    AddressRules,
    LifecycleRules,
    MoveRefused,
    PermitFacts,
    PermitState,
    ResidenceChange,
    ResidencePeriod,
    Span,
    add_years,
    change_address,
    move,
    residence_on,
)
from hub.permits.jurisdictions import Period

RULES = LifecycleRules(settlement_years=3)
REGISTERED = date(2025, 3, 1)


def valid_permit(expires_on: date = date(2026, 10, 31)) -> PermitFacts:
    return PermitFacts(
        PermitState.VALID,
        residence_start=REGISTERED,
        valid_from=add_years(expires_on, -1),
        expires_on=expires_on,
    )


def suspended_permit(suspended_on: date = date(2026, 11, 1)) -> PermitFacts:
    return PermitFacts(
        PermitState.SUSPENDED,
        residence_start=REGISTERED,
        valid_from=date(2025, 11, 1),
        expires_on=date(2026, 10, 31),
        suspended_on=suspended_on,
    )


def refusal_code(facts: PermitFacts, action: Action, today: date) -> str:
    with pytest.raises(MoveRefused) as refused:
        move(facts, action, today, RULES)
    return refused.value.refusal.code


ILLEGAL = [
    (state, action)
    for state in PermitState
    for action in Action
    if (state, action) not in TRANSITIONS
]


@pytest.mark.parametrize(("state", "action"), ILLEGAL)
def test_every_move_outside_the_table_is_refused(state: PermitState, action: Action) -> None:
    facts = PermitFacts(state, residence_start=REGISTERED, expires_on=date(2026, 10, 31))
    assert refusal_code(facts, action, date(2026, 10, 15)) == "illegal-transition"


def test_cancelled_is_terminal() -> None:
    assert not [pair for pair in TRANSITIONS if pair[0] is PermitState.CANCELLED]


@pytest.mark.parametrize(
    ("issued_on", "expires_on"),
    [
        (date(2026, 11, 25), date(2027, 11, 25)),  # as printed: 2026.11.25-2027.11.25
        (date(2026, 10, 1), date(2027, 10, 1)),  # issued on a holiday: validity is calendar time
        (date(2024, 2, 29), date(2025, 2, 28)),  # no 29 Feb in 2025: the month's last day
        (date(2026, 12, 31), date(2027, 12, 31)),
    ],
)
def test_issuance_gives_one_year_of_validity(issued_on: date, expires_on: date) -> None:
    accepted = PermitFacts(PermitState.ACCEPTED, residence_start=REGISTERED)
    after = move(accepted, Action.ISSUE, issued_on, RULES).after
    assert (after.state, after.valid_from, after.expires_on) == (
        PermitState.VALID,
        issued_on,
        expires_on,
    )


@pytest.mark.parametrize(
    ("today", "outcome"),
    [
        (date(2026, 9, 30), "endorsement-window-not-open"),  # 31 days before expiry
        (date(2026, 10, 1), date(2027, 10, 31)),  # 30 days before, on National Day
        (date(2026, 10, 24), date(2027, 10, 31)),  # a Saturday
        (date(2026, 10, 31), date(2027, 10, 31)),  # the last valid day
        (date(2026, 11, 1), "permit-expired"),
    ],
)
def test_endorsement_only_in_the_30_days_before_expiry(today: date, outcome: object) -> None:
    if isinstance(outcome, str):
        assert refusal_code(valid_permit(), Action.ENDORSE, today) == outcome
    else:
        after = move(valid_permit(), Action.ENDORSE, today, RULES).after
        assert after.expires_on == outcome
        assert after.residence_start == REGISTERED


@pytest.mark.parametrize(
    ("today", "suspended"),
    [(date(2026, 10, 31), False), (date(2026, 11, 1), True), (date(2027, 3, 1), True)],
)
def test_not_endorsed_by_expiry_is_suspended(today: date, suspended: bool) -> None:
    if not suspended:
        assert refusal_code(valid_permit(), Action.SUSPEND, today) == "permit-not-expired"
        return
    after = move(valid_permit(), Action.SUSPEND, today, RULES).after
    assert after.state is PermitState.SUSPENDED
    assert after.suspended_on == date(2026, 11, 1)  # the day after the last valid day


@pytest.mark.parametrize(
    ("restored_on", "continuous"),
    [
        (date(2026, 11, 2), True),
        (date(2026, 12, 1), True),  # 30 days after suspension
        (date(2026, 12, 2), False),  # 31 days
        (date(2027, 6, 30), False),
    ],
)
def test_restoration_within_30_days_keeps_residence_continuous(
    restored_on: date, continuous: bool
) -> None:
    transition = move(suspended_permit(), Action.ENDORSE, restored_on, RULES)
    after = transition.after
    assert after.state is PermitState.VALID and after.suspended_on is None
    assert after.valid_from == restored_on
    assert after.expires_on == add_years(restored_on, 1)
    assert transition.residence_restarted is (not continuous)
    assert after.residence_start == (REGISTERED if continuous else restored_on)


@pytest.mark.parametrize(
    ("residence_start", "today", "settles"),
    [
        (date(2023, 11, 26), date(2026, 11, 25), False),  # one day short of three years
        (date(2023, 11, 25), date(2026, 11, 25), True),
        (date(2020, 1, 1), date(2026, 11, 25), True),
    ],
)
def test_settlement_after_three_continuous_years(
    residence_start: date, today: date, settles: bool
) -> None:
    facts = PermitFacts(PermitState.VALID, residence_start, date(2026, 1, 1), date(2026, 12, 31))
    if settles:
        assert move(facts, Action.SETTLE, today, RULES).after.state is PermitState.CANCELLED
    else:
        assert refusal_code(facts, Action.SETTLE, today) == "settlement-residence-too-short"


def test_settlement_needs_a_configured_rule() -> None:
    facts = valid_permit()
    with pytest.raises(MoveRefused) as refused:
        move(facts, Action.SETTLE, date(2026, 10, 1), LifecycleRules())
    assert refused.value.refusal.code == "settlement-not-configured"


@pytest.mark.parametrize(
    ("rule", "moved_on", "reported_on", "due", "late"),
    [
        # [IM]: 30 calendar days, holidays included.
        ("im", date(2026, 9, 1), date(2026, 10, 1), date(2026, 10, 1), False),
        ("im", date(2026, 9, 1), date(2026, 10, 2), date(2026, 10, 1), True),
        # [CF §19]: 7 working days. Across a weekend: Fri 20 Nov -> Tue 1 Dec.
        ("cf", date(2026, 11, 20), date(2026, 12, 1), date(2026, 12, 1), False),
        ("cf", date(2026, 11, 20), date(2026, 12, 2), date(2026, 12, 1), True),
        # Across National Day 2026 (1-7 Oct off) and the make-up Saturday 10 Oct.
        ("cf", date(2026, 9, 28), date(2026, 10, 13), date(2026, 10, 13), False),
        ("cf", date(2026, 9, 28), date(2026, 10, 14), date(2026, 10, 13), True),
        # Across Spring Festival 2026 (15-23 Feb off) to the make-up Saturday 28 Feb.
        ("cf", date(2026, 2, 12), date(2026, 2, 28), date(2026, 2, 28), False),
    ],
)
def test_address_change_deadline(
    rule: str, moved_on: date, reported_on: date, due: date, late: bool
) -> None:
    address = {
        "im": AddressRules(Period(amount=30, unit="days"), None, "[IM]"),
        "cf": AddressRules(Period(amount=7, unit="working-days"), None, "[CF §19]"),
    }[rule]
    change = change_address(
        valid_permit(date(2027, 1, 31)),
        moved_on=moved_on,
        reported_on=reported_on,
        address=address,
        calendar=WorkingCalendar(),
        rules=RULES,
    )
    assert (change.due, change.overdue, change.provisional) == (due, late, False)
    start = change.transition.after.residence_start
    assert start == (reported_on if late else REGISTERED)
    assert change.transition.after.state is PermitState.VALID


def test_an_address_deadline_in_an_unknown_year_is_provisional() -> None:
    change = change_address(
        valid_permit(date(2027, 3, 31)),
        moved_on=date(2026, 12, 28),
        reported_on=date(2027, 1, 4),
        address=AddressRules(Period(amount=7, unit="working-days"), None, "[CF §19]"),
        calendar=WorkingCalendar(),
        rules=RULES,
    )
    assert change.provisional and change.due == date(2027, 1, 6) and not change.overdue


def test_a_report_before_the_move_is_refused() -> None:
    with pytest.raises(MoveRefused) as refused:
        change_address(
            valid_permit(),
            moved_on=date(2026, 10, 10),
            reported_on=date(2026, 10, 9),
            address=AddressRules(Period(amount=30, unit="days"), None, "[IM]"),
            calendar=WorkingCalendar(),
            rules=RULES,
        )
    assert refused.value.refusal.code == "moved-after-report"


def test_residence_on_any_date() -> None:
    changes = [
        ResidenceChange(effective_on=date(2024, 5, 1), start=date(2021, 5, 1)),  # old 暂住证
        ResidenceChange(effective_on=date(2026, 12, 2), start=date(2026, 12, 2)),  # late restore
    ]
    assert residence_on(changes, date(2024, 4, 30)) is None
    before = residence_on(changes, date(2026, 12, 1))
    assert before == ResidencePeriod(date(2021, 5, 1), (date(2026, 12, 1) - date(2021, 5, 1)).days)
    assert before.whole_years == 5
    after = residence_on(changes, date(2027, 12, 1))
    assert after is not None and after.start == date(2026, 12, 2) and after.whole_years == 0


@pytest.mark.parametrize(
    ("start", "day", "years"),
    [
        (date(2023, 11, 25), date(2026, 11, 24), 2),
        (date(2023, 11, 25), date(2026, 11, 25), 3),
        (date(2024, 2, 29), date(2025, 2, 28), 1),
        (date(2024, 2, 29), date(2025, 2, 27), 0),
    ],
)
def test_whole_years(start: date, day: date, years: int) -> None:
    assert ResidencePeriod(start, (day - start).days).whole_years == years


@pytest.mark.parametrize(
    ("reported_on", "overdue", "restarted"),
    [
        (date(2026, 10, 13), False, False),  # within 7 working days
        (date(2026, 10, 20), True, False),  # overdue, but within a month of the move
        (date(2026, 10, 28), True, False),  # one month after 28 Sep: still counted
        (date(2026, 10, 29), True, True),  # over a month late: residence restarts
    ],
)
def test_chifeng_restarts_residence_only_after_a_month(
    reported_on: date, overdue: bool, restarted: bool
) -> None:
    """[CF §19]: report within 7 working days; a month unreported restarts residence."""
    change = change_address(
        valid_permit(date(2027, 1, 31)),
        moved_on=date(2026, 9, 28),
        reported_on=reported_on,
        address=AddressRules(Period(amount=7, unit="working-days"), Span(1, "months"), "[CF §19]"),
        calendar=WorkingCalendar(),
        rules=RULES,
    )
    assert change.overdue is overdue
    assert change.transition.residence_restarted is restarted
    assert change.transition.after.residence_start == (reported_on if restarted else REGISTERED)


@pytest.mark.parametrize(
    ("rules", "restored_on", "continuous"),
    [
        (LifecycleRules(restoration_grace=None), date(2026, 11, 2), False),  # national rule
        (LifecycleRules(restoration_grace=Span(1, "months")), date(2026, 12, 1), True),
        (LifecycleRules(restoration_grace=Span(1, "months")), date(2026, 12, 2), False),
    ],
)
def test_restoration_grace_by_jurisdiction(
    rules: LifecycleRules, restored_on: date, continuous: bool
) -> None:
    transition = move(suspended_permit(), Action.ENDORSE, restored_on, rules)
    assert transition.residence_restarted is (not continuous)


def test_a_window_of_one_month_before_expiry() -> None:
    """NAT §10: endorsement in the month before the full year."""
    rules = LifecycleRules(endorsement_window=Span(1, "months"))
    assert refusal_code_with(valid_permit(date(2027, 3, 31)), date(2027, 2, 27), rules)
    after = move(valid_permit(date(2027, 3, 31)), Action.ENDORSE, date(2027, 2, 28), rules).after
    assert after.expires_on == date(2028, 3, 31)


def refusal_code_with(facts: PermitFacts, today: date, rules: LifecycleRules) -> str:
    with pytest.raises(MoveRefused) as refused:
        move(facts, Action.ENDORSE, today, rules)
    return refused.value.refusal.code
