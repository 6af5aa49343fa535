"""Time and working days, injected so that deadlines are testable and never guessed silently.

Policy deadlines ("within 7 working days", "within 30 days") are Chinese civil dates that follow
the State Council's holiday schedule, including make-up working weekends (调休). The schedule is
published late in the year before, so the `chinese-calendar` package always lags: a deadline that
runs into a year it does not know is computed from a schedule staff configured, or else from
Monday-Friday and flagged *provisional* so callers can recompute it once the schedule is known.
"""

from __future__ import annotations

import functools
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

# No type stubs. pyproject.toml also ignores the module, which makes a bare ignore "unused" there.
import chinese_calendar  # type: ignore[import-untyped, unused-ignore]

CHINA = ZoneInfo("Asia/Shanghai")
"""Deadlines are civil dates in China, whatever time zone the server runs in."""

_SCHEDULE_KEYS = frozenset({"holidays", "workdays"})


def _require_aware(moment: datetime) -> datetime:
    """A naive datetime would be read in the server's local zone and shift dates silently."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no time zone; pass an aware one")
    return moment


def naive_utc(moment: datetime) -> datetime:
    """A time as both databases give it back comparable: SQLite drops the zone, so times are
    compared in naive UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def china_date(moment: datetime) -> date:
    """The civil date in China at `moment`: 17:30 UTC is already the next day in Beijing."""
    return _require_aware(moment).astimezone(CHINA).date()


def china_day_start(day: date) -> datetime:
    """The instant a civil day begins in China, in UTC (as the database keeps times)."""
    return datetime(day.year, day.month, day.day, tzinfo=CHINA).astimezone(UTC)


class Clock(Protocol):
    """Where code asks for the time, so tests and demos can fix it instead of patching datetime."""

    def now(self) -> datetime:
        """The current instant, timezone-aware in UTC."""
        ...

    def today(self) -> date:
        """Today's civil date in China, always derived from `now()` so the two never disagree."""
        return china_date(self.now())

    def epoch_seconds(self) -> int:
        """Whole seconds since the epoch, as JWT claims count time."""
        return int(self.now().timestamp())


class SystemClock(Clock):
    """The real clock, for production."""

    def now(self) -> datetime:
        """Real time in UTC."""
        return datetime.now(UTC)

    def epoch_seconds(self) -> int:
        """Without building a datetime: every guarded request asks for it."""
        return int(time.time())


class FixedClock(Clock):
    """A clock that moves only when told to, for tests and reproducible demos."""

    def __init__(self, moment: datetime) -> None:
        self._moment = _require_aware(moment).astimezone(UTC)

    def now(self) -> datetime:
        """The instant last set, normalised to UTC like the real clock."""
        return self._moment

    def set(self, moment: datetime) -> None:
        """Jump to `moment`, e.g. to the eve of a deadline."""
        self._moment = _require_aware(moment).astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        """Let time pass, e.g. past a deadline."""
        self._moment += delta


@dataclass(frozen=True)
class HolidaySchedule:
    """One year's official schedule, for years the package does not know or gets wrong.

    It replaces the package for its whole year, so it must be the complete published schedule, not
    a patch: `holidays` are the official days off, `workdays` the make-up working days (调休), and
    every other day follows Monday-Friday.
    """

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]

    def __post_init__(self) -> None:
        for kind, days in (("holidays", self.holidays), ("workdays", self.workdays)):
            for day in sorted(days):
                if day.year != self.year:
                    entry = f"{kind} entry {day.isoformat()}"
                    raise ValueError(f"{self.year} schedule: {entry} is not in {self.year}")
        both = sorted(self.holidays & self.workdays)
        if both:
            listed = ", ".join(day.isoformat() for day in both)
            raise ValueError(f"{self.year} schedule: {listed} listed as both holiday and workday")

    @classmethod
    def from_mapping(
        cls, year: int, mapping: Mapping[str, Iterable[str | date]]
    ) -> HolidaySchedule:
        """Build from configuration, e.g. a TOML table, naming the bad entry if there is one.

        Entries are ISO dates (`"2027-01-01"`) or dates (TOML's unquoted dates); a missing key
        means none of that kind, and an unknown key is rejected since it is most likely a typo.
        """
        unknown = sorted(set(mapping) - _SCHEDULE_KEYS)
        if unknown:
            raise ValueError(
                f"{year} schedule: unknown keys {unknown}; expected 'holidays' and 'workdays'"
            )
        return cls(
            year=year,
            holidays=frozenset(_parse_days(year, "holidays", mapping.get("holidays", ()))),
            workdays=frozenset(_parse_days(year, "workdays", mapping.get("workdays", ()))),
        )


def _parse_days(year: int, kind: str, entries: Iterable[str | date]) -> list[date]:
    """Staff edit these by hand, so every error names the year, the list and the entry."""
    if isinstance(entries, str):
        raise ValueError(f"{year} schedule: {kind} must be a list of ISO dates, not a string")
    return [_parse_day(year, kind, entry) for entry in entries]


def _parse_day(year: int, kind: str, entry: object) -> date:
    """A datetime is not a civil date, so it is refused even though it subclasses date."""
    if isinstance(entry, date) and not isinstance(entry, datetime):
        return entry
    if isinstance(entry, str):
        try:
            return date.fromisoformat(entry)
        except ValueError:
            pass
    raise ValueError(f"{year} schedule: {kind} entry {entry!r} is not an ISO date (YYYY-MM-DD)")


@functools.cache
def _package_knows(year: int) -> bool:
    """The package raises NotImplementedError outside its data (2004-2026 in 1.11.0)."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


@functools.lru_cache(maxsize=8192)
def _package_workday(day: date) -> bool:
    """Cached: the package re-validates its whole holiday table on every call (~45 µs)."""
    return bool(chinese_calendar.is_workday(day))


@dataclass(frozen=True)
class Deadline:
    """A due date; `provisional` means some day was judged by Monday-Friday alone."""

    due: date
    provisional: bool


@dataclass(frozen=True)
class WorkingDayCount:
    """A count of working days; `provisional` means some day was judged by Monday-Friday alone."""

    days: int
    provisional: bool


class WorkingCalendar:
    """Working days per the official schedule, with configured years overriding the package."""

    def __init__(self, schedules: Iterable[HolidaySchedule] = ()) -> None:
        self._schedules: dict[int, HolidaySchedule] = {}
        for schedule in schedules:
            if schedule.year in self._schedules:
                raise ValueError(f"two holiday schedules configured for {schedule.year}")
            self._schedules[schedule.year] = schedule

    def is_known(self, year: int) -> bool:
        """False means days of `year` are guessed as Monday-Friday and results are provisional."""
        return year in self._schedules or _package_knows(year)

    def is_working_day(self, day: date) -> bool:
        """Whether offices work on `day`; ask `is_known(day.year)` whether this is a guess."""
        schedule = self._schedules.get(day.year)
        if schedule is not None:
            if day in schedule.workdays:
                return True
            return day not in schedule.holidays and day.weekday() < 5
        if _package_knows(day.year):
            return _package_workday(day)
        return day.weekday() < 5

    def add_working_days(self, start: date, n: int) -> Deadline:
        """The n-th working day after `start`: "within n working days" of an event on `start`.

        The start day itself never counts, whether or not it is a working day.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1 working day, got {n}")
        day, remaining, provisional = start, n, False
        while remaining:
            day += timedelta(days=1)
            provisional = provisional or not self.is_known(day.year)
            if self.is_working_day(day):
                remaining -= 1
        return Deadline(due=day, provisional=provisional)

    def working_days_between(self, start: date, end: date) -> WorkingDayCount:
        """Working days in (start, end], e.g. from moving to reporting, to decide lateness.

        `end` before `start` is rejected rather than counted as zero: it is almost certainly a
        swapped pair, and zero would make every late report look on time.
        """
        if end < start:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        days = [start + timedelta(days=i) for i in range(1, (end - start).days + 1)]
        return WorkingDayCount(
            days=sum(1 for day in days if self.is_working_day(day)),
            provisional=any(not self.is_known(day.year) for day in days),
        )


def load_holiday_schedules(directory: Path) -> list[HolidaySchedule]:
    """Read the schedules staff added as `<year>.toml` files (keys `holidays`, `workdays`).

    A missing directory means none; a bad file raises ValueError naming the file and entry,
    so the hub refuses to start rather than compute deadlines from a schedule it misread.
    """
    if not directory.is_dir():
        return []
    schedules = []
    for path in sorted(directory.glob("*.toml")):
        if not (path.stem.isdigit() and len(path.stem) == 4):
            raise ValueError(f"{path}: name the file after its year, e.g. 2027.toml")
        try:
            with path.open("rb") as handle:
                table = tomllib.load(handle)
            schedules.append(HolidaySchedule.from_mapping(int(path.stem), table))
        except (tomllib.TOMLDecodeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None
    return schedules
