"""Holiday schedules staff add under config/holidays reach the hub's working-day calendar."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hub.composition import build_hub
from hub.settings import ConfigError, Settings
from tests.commands import hub_env, run_hub


def test_a_configured_year_is_no_longer_provisional(settings: Settings, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    (holidays / "2027.toml").write_text(
        'holidays = [2027-01-01, 2027-01-04]\nworkdays = ["2027-01-09"]\n'
    )
    plain = build_hub(settings)
    configured = build_hub(settings.model_copy(update={"holiday_schedules_dir": holidays}))

    assert plain.calendar.add_working_days(date(2026, 12, 30), 2).provisional
    deadline = configured.calendar.add_working_days(date(2026, 12, 30), 2)
    assert deadline.provisional is False
    assert deadline.due == date(2027, 1, 5)  # 31 Dec, then 1 Jan and 4 Jan are holidays
    assert configured.calendar.is_working_day(date(2027, 1, 9))  # a make-up Saturday


def test_a_bad_schedule_refuses_to_start(settings: Settings, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    (holidays / "2027.toml").write_text('holidays = ["2026-10-01"]\n')
    with pytest.raises(ConfigError, match=r"2027\.toml"):
        build_hub(settings.model_copy(update={"holiday_schedules_dir": holidays}))


def test_the_cli_names_the_bad_file(tmp_path: Path) -> None:
    holidays = tmp_path / "holidays"
    holidays.mkdir()
    (holidays / "next-year.toml").write_text("holidays = []\n")
    env = hub_env(f"sqlite:///{tmp_path}/hub.db", HUB_HOLIDAY_SCHEDULES_DIR=str(holidays))
    result = run_hub("db", "upgrade", env=env)
    assert result.returncode == 2
    assert "next-year.toml" in result.stderr and len(result.stderr.strip().splitlines()) == 1
