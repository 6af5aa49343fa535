"""Clock and working-day arithmetic.

Expected dates are worked out by hand from the State Council schedules as recorded in
chinese-calendar 1.11.0 (printed from the package before writing these tables), so a wrong
package upgrade or a wrong rule shows up as a failing row rather than being agreed with.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from hub.clock import (
    Deadline,
    FixedClock,
    HolidaySchedule,
    SystemClock,
    WorkingCalendar,
    WorkingDayCount,
    china_date,
)

D = date.fromisoformat

CALENDAR = WorkingCalendar()

# Made up for these tests, not the official 2027 schedule: New Year's Day and a Spring
# Festival week with one make-up Sunday.
SCHEDULE_2027 = HolidaySchedule(
    year=2027,
    holidays=frozenset({D("2027-01-01")} | {D("2027-02-06") + timedelta(i) for i in range(7)}),
    workdays=frozenset({D("2027-02-14")}),
)
CALENDAR_2027 = WorkingCalendar([SCHEDULE_2027])


def days(first: str, last: str) -> list[date]:
    start, end = D(first), D(last)
    return [start + timedelta(i) for i in range((end - start).days + 1)]


# --- the official calendar, as the package knows it ------------------------------------------

NATIONAL_DAY_2025 = [
    ("2025-09-27", False),  # Saturday
    ("2025-09-28", True),  # Sunday, make-up working day
    ("2025-09-29", True),
    ("2025-09-30", True),
    *((d.isoformat(), False) for d in days("2025-10-01", "2025-10-08")),
    ("2025-10-09", True),
    ("2025-10-10", True),
    ("2025-10-11", True),  # Saturday, make-up working day
    ("2025-10-12", False),  # Sunday
    ("2025-10-13", True),
]

# chinese-calendar 1.11.0 for 2026: Mid-autumn Fri 09-25..Sun 09-27, National Day
# Thu 10-01..Wed 10-07, make-up working days Sun 09-20 and Sat 10-10.
NATIONAL_DAY_2026 = [
    ("2026-09-19", False),  # Saturday
    ("2026-09-20", True),  # Sunday, make-up working day
    ("2026-09-24", True),
    ("2026-09-25", False),  # Friday, Mid-autumn Festival
    ("2026-09-26", False),
    ("2026-09-27", False),
    ("2026-09-28", True),
    ("2026-09-30", True),
    *((d.isoformat(), False) for d in days("2026-10-01", "2026-10-07")),
    ("2026-10-08", True),
    ("2026-10-09", True),
    ("2026-10-10", True),  # Saturday, make-up working day
    ("2026-10-11", False),  # Sunday
    ("2026-10-12", True),
]

SPRING_FESTIVAL_2026 = [
    ("2026-02-13", True),
    ("2026-02-14", True),  # Saturday, make-up working day
    *((d.isoformat(), False) for d in days("2026-02-15", "2026-02-23")),
    ("2026-02-24", True),
    ("2026-02-28", True),  # Saturday, make-up working day
    ("2026-03-01", False),  # Sunday
]


@pytest.mark.parametrize(
    ("day", "working"), NATIONAL_DAY_2025 + NATIONAL_DAY_2026 + SPRING_FESTIVAL_2026
)
def test_official_calendar(day: str, working: bool) -> None:
    assert CALENDAR.is_working_day(D(day)) is working


def test_2026_national_day_window_in_full() -> None:
    window = days("2026-09-20", "2026-10-15")
    off = {d for d in window if not CALENDAR.is_working_day(d)}
    weekend_work = {d for d in window if d.weekday() >= 5 and CALENDAR.is_working_day(d)}
    assert off == {
        *days("2026-09-25", "2026-09-27"),
        *days("2026-10-01", "2026-10-07"),
        D("2026-10-11"),  # the only ordinary weekend day in the window
    }
    assert weekend_work == {D("2026-09-20"), D("2026-10-10")}


@pytest.mark.parametrize(
    ("year", "known"), [(2003, False), (2004, True), (2025, True), (2026, True), (2027, False)]
)
def test_years_the_package_knows(year: int, known: bool) -> None:
    assert CALENDAR.is_known(year) is known


# --- deadlines -------------------------------------------------------------------------------

DEADLINES = [
    # start, n, due
    pytest.param("2025-11-06", 7, "2025-11-17", id="crosses-a-weekend"),
    pytest.param("2025-09-29", 7, "2025-10-15", id="national-day-2025"),
    pytest.param("2026-09-30", 7, "2026-10-15", id="national-day-2026"),
    pytest.param("2026-09-24", 7, "2026-10-12", id="mid-autumn-and-national-day-2026"),
    pytest.param("2026-02-12", 7, "2026-02-28", id="spring-festival-2026-due-on-make-up-saturday"),
    pytest.param("2025-10-10", 1, "2025-10-11", id="make-up-saturday-counts"),
    pytest.param("2025-09-26", 1, "2025-09-28", id="make-up-sunday-counts"),
    pytest.param("2025-10-03", 1, "2025-10-09", id="start-on-a-holiday"),
    pytest.param("2025-11-08", 1, "2025-11-10", id="start-on-a-weekend"),
    pytest.param("2026-12-24", 5, "2026-12-31", id="ends-before-the-unknown-year"),
]


@pytest.mark.parametrize(("start", "n", "due"), DEADLINES)
def test_add_working_days(start: str, n: int, due: str) -> None:
    assert CALENDAR.add_working_days(D(start), n) == Deadline(due=D(due), provisional=False)


@pytest.mark.parametrize(("start", "n", "due"), DEADLINES)
def test_counting_agrees_with_deadlines(start: str, n: int, due: str) -> None:
    """The due date is the n-th working day, so the day before it has only n - 1."""
    assert CALENDAR.working_days_between(D(start), D(due)) == WorkingDayCount(n, False)
    assert CALENDAR.working_days_between(D(start), D(due) - timedelta(1)).days == n - 1


@pytest.mark.parametrize("n", [0, -1])
def test_deadline_needs_at_least_one_working_day(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CALENDAR.add_working_days(D("2025-10-09"), n)


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        pytest.param("2025-09-30", "2025-10-08", 0, id="only-holidays"),
        pytest.param("2025-09-30", "2025-10-10", 2, id="across-national-day-2025"),
        pytest.param("2025-09-26", "2025-09-28", 1, id="weekend-with-make-up-sunday"),
        pytest.param("2026-02-13", "2026-02-24", 2, id="across-spring-festival-2026"),
        pytest.param("2025-10-09", "2025-10-09", 0, id="empty-interval"),
        pytest.param("2025-09-29", "2025-10-15", 7, id="reported-on-the-7th-day-on-time"),
        pytest.param("2025-09-29", "2025-10-16", 8, id="reported-on-the-8th-day-late"),
    ],
)
def test_working_days_between(start: str, end: str, count: int) -> None:
    assert CALENDAR.working_days_between(D(start), D(end)) == WorkingDayCount(count, False)


def test_working_days_between_rejects_swapped_dates() -> None:
    with pytest.raises(ValueError, match="before start"):
        CALENDAR.working_days_between(D("2025-10-15"), D("2025-09-29"))


# --- years the package does not know ---------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2027-01-01", True),  # Friday: no schedule, so Monday-Friday
        ("2027-01-02", False),  # Saturday
        ("2027-02-08", True),  # Monday
        ("2027-02-14", False),  # Sunday
    ],
)
def test_unknown_year_falls_back_to_monday_to_friday(day: str, working: bool) -> None:
    assert CALENDAR.is_working_day(D(day)) is working


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2027-01-01", False),  # configured holiday
        ("2027-01-04", True),
        ("2027-02-08", False),  # configured holiday on a Monday
        ("2027-02-13", False),  # Saturday after the holiday span
        ("2027-02-14", True),  # configured make-up Sunday
    ],
)
def test_configured_schedule_is_followed(day: str, working: bool) -> None:
    assert CALENDAR_2027.is_known(2027)
    assert CALENDAR_2027.is_working_day(D(day)) is working


@pytest.mark.parametrize(
    ("calendar", "start", "n", "expected"),
    [
        pytest.param(CALENDAR, "2027-03-01", 7, ("2027-03-10", True), id="2027-unconfigured"),
        pytest.param(CALENDAR, "2003-06-02", 5, ("2003-06-09", True), id="2003-before-package"),
        pytest.param(CALENDAR, "2026-12-24", 7, ("2027-01-04", True), id="into-2027"),
        pytest.param(CALENDAR_2027, "2026-12-24", 7, ("2027-01-05", False), id="into-2027-cfg"),
        pytest.param(CALENDAR, "2027-02-05", 3, ("2027-02-10", True), id="2027-spring"),
        pytest.param(CALENDAR_2027, "2027-02-05", 3, ("2027-02-16", False), id="2027-spring-cfg"),
    ],
)
def test_deadline_in_unknown_year(
    calendar: WorkingCalendar, start: str, n: int, expected: tuple[str, bool]
) -> None:
    due, provisional = expected
    assert calendar.add_working_days(D(start), n) == Deadline(D(due), provisional)


@pytest.mark.parametrize(
    ("calendar", "start", "end", "expected"),
    [
        pytest.param(CALENDAR, "2026-12-30", "2027-01-04", (3, True), id="unconfigured"),
        pytest.param(CALENDAR_2027, "2026-12-30", "2027-01-04", (2, False), id="configured"),
        pytest.param(CALENDAR, "2026-12-30", "2026-12-31", (1, False), id="stops-in-2026"),
    ],
)
def test_count_into_unknown_year(
    calendar: WorkingCalendar, start: str, end: str, expected: tuple[int, bool]
) -> None:
    assert calendar.working_days_between(D(start), D(end)) == WorkingDayCount(*expected)


def test_configured_schedule_replaces_the_package_for_its_year() -> None:
    """A staff correction is the whole year's schedule; the package is not consulted for it."""
    corrected = WorkingCalendar(
        [HolidaySchedule(2026, frozenset(days("2026-10-01", "2026-10-08")), frozenset())]
    )
    assert CALENDAR.is_working_day(D("2026-10-08"))
    assert not corrected.is_working_day(D("2026-10-08"))  # corrected to a holiday
    assert not corrected.is_working_day(D("2026-10-10"))  # no longer a make-up Saturday
    assert corrected.is_working_day(D("2026-02-16"))  # package holiday not in the correction
    assert corrected.is_working_day(D("2025-10-11"))  # other years still from the package
    assert corrected.add_working_days(D("2026-09-30"), 1) == Deadline(D("2026-10-09"), False)


def test_two_schedules_for_one_year_are_rejected() -> None:
    with pytest.raises(ValueError, match="two holiday schedules configured for 2027"):
        WorkingCalendar([SCHEDULE_2027, HolidaySchedule(2027, frozenset(), frozenset())])


# --- schedules from configuration ------------------------------------------------------------


def test_schedule_from_mapping() -> None:
    schedule = HolidaySchedule.from_mapping(
        2027,
        {
            "holidays": [
                "2027-01-01",
                *(d.isoformat() for d in days("2027-02-06", "2027-02-11")),
                D("2027-02-12"),  # TOML's unquoted dates arrive as date objects
            ],
            "workdays": ["2027-02-14"],
        },
    )
    assert schedule == SCHEDULE_2027


def test_schedule_from_mapping_without_workdays() -> None:
    schedule = HolidaySchedule.from_mapping(2027, {"holidays": ["2027-01-01"]})
    assert schedule == HolidaySchedule(2027, frozenset({D("2027-01-01")}), frozenset())


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        pytest.param(
            {"holidays": ["2027-01-01", "2026-12-31"]},
            "2027 schedule: holidays entry 2026-12-31 is not in 2027",
            id="date-from-another-year",
        ),
        pytest.param(
            {"workdays": ["2028-02-14"]},
            "2027 schedule: workdays entry 2028-02-14 is not in 2027",
            id="workday-from-another-year",
        ),
        pytest.param(
            {"holidays": ["next monday"]},
            "2027 schedule: holidays entry 'next monday' is not an ISO date (YYYY-MM-DD)",
            id="not-a-date",
        ),
        pytest.param(
            {"holidays": ["2027-02-30"]},
            "2027 schedule: holidays entry '2027-02-30' is not an ISO date (YYYY-MM-DD)",
            id="impossible-date",
        ),
        pytest.param(
            {"holidays": [datetime(2027, 1, 1, 9, 0)]},
            "2027 schedule: holidays entry datetime.datetime(2027, 1, 1, 9, 0) is not an ISO date",
            id="datetime-not-a-date",
        ),
        pytest.param(
            {"holidays": [20270101]},
            "2027 schedule: holidays entry 20270101 is not an ISO date",
            id="number",
        ),
        pytest.param(
            {"holidays": "2027-01-01"},
            "2027 schedule: holidays must be a list of ISO dates, not a string",
            id="string-not-list",
        ),
        pytest.param(
            {"holiday": ["2027-01-01"]},
            "2027 schedule: unknown keys ['holiday']; expected 'holidays' and 'workdays'",
            id="typo-in-key",
        ),
        pytest.param(
            {"holidays": ["2027-01-01"], "workdays": ["2027-01-01"]},
            "2027 schedule: 2027-01-01 listed as both holiday and workday",
            id="both",
        ),
    ],
)
def test_schedule_from_mapping_rejects(mapping: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        HolidaySchedule.from_mapping(2027, mapping)


def test_schedule_constructor_checks_years_too() -> None:
    with pytest.raises(ValueError, match="holidays entry 2026-10-01 is not in 2027"):
        HolidaySchedule(2027, frozenset({D("2026-10-01")}), frozenset())


# --- clocks ----------------------------------------------------------------------------------

EVENING_UTC = datetime(2026, 11, 25, 17, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "china"),
    [
        (datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC), "2026-11-25"),
        (datetime(2026, 11, 25, 16, 0, tzinfo=UTC), "2026-11-26"),
        (EVENING_UTC, "2026-11-26"),
        (datetime(2026, 11, 26, 1, 30, tzinfo=timezone(timedelta(hours=8))), "2026-11-26"),
        (datetime(2026, 11, 25, 12, 30, tzinfo=timezone(timedelta(hours=-5))), "2026-11-26"),
    ],
)
def test_china_date(moment: datetime, china: str) -> None:
    assert china_date(moment) == D(china)


def test_fixed_clock_today_is_the_date_in_china() -> None:
    clock = FixedClock(EVENING_UTC)
    assert clock.now() == EVENING_UTC
    assert clock.now().date() == D("2026-11-25")
    assert clock.today() == D("2026-11-26")


def test_fixed_clock_normalises_to_utc() -> None:
    clock = FixedClock(datetime(2026, 11, 26, 1, 30, tzinfo=timezone(timedelta(hours=8))))
    assert clock.now() == EVENING_UTC
    assert clock.now().tzinfo is UTC


def test_fixed_clock_advance_and_set() -> None:
    clock = FixedClock(EVENING_UTC)
    clock.advance(timedelta(hours=1))
    assert clock.now() == datetime(2026, 11, 25, 18, 30, tzinfo=UTC)
    clock.advance(timedelta(days=7))
    assert clock.today() == D("2026-12-03")
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2027, 1, 1, tzinfo=UTC)
    assert clock.today() == D("2027-01-01")


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2026, 11, 25, 17, 30)
    with pytest.raises(ValueError, match="naive datetime"):
        FixedClock(naive)
    clock = FixedClock(EVENING_UTC)
    with pytest.raises(ValueError, match="naive datetime"):
        clock.set(naive)
    assert clock.now() == EVENING_UTC
    with pytest.raises(ValueError, match="naive datetime"):
        china_date(naive)


def test_system_clock_is_aware_utc() -> None:
    clock = SystemClock()
    before = datetime.now(UTC)
    now = clock.now()
    after = datetime.now(UTC)
    assert now.tzinfo is UTC
    assert before <= now <= after
    assert clock.today() in {china_date(before), china_date(after)}
