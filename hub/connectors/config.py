"""config/departments.toml: how the hub exchanges with each department.

Secrets are never in the file: each department names the environment variable that holds its
Standard Webhooks secret, so the file can be committed and reviewed. The file is validated at
start (a typo stops the hub with one sentence); the secrets are read only by the relay, which
refuses to start without them.

Each department may name its own retry schedule; one that gives up within a day is refused,
since departments go down for a night and such an outage must lose nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from hub.auth.domain import Department
from hub.connectors.signing import SECRET_PREFIX
from hub.settings import read_config_file

PARTNERS = frozenset(Department) - {Department.PUBLIC_SECURITY}
"""The five departments the hub publishes to; public security runs the registry itself."""


MIN_RETRY_SPAN = timedelta(days=1)
"""The shortest a department's configured retry schedule may span."""

Wait = Annotated[timedelta, Field(gt=timedelta(0))]


class RetrySchedule(RootModel[tuple[Wait, ...]]):
    """The waits between a delivery's attempts, as ISO 8601 durations ("PT5S", "PT1H"): after
    the first attempt fails the second comes `root[0]` later, and so on; when the attempt after
    the last wait fails, the delivery is dead. An open circuit probes its department at the
    same pace, repeating the last wait for as long as the department stays down."""

    model_config = ConfigDict(frozen=True)

    root: tuple[Wait, ...] = Field(min_length=1)

    @property
    def attempts(self) -> int:
        return len(self.root) + 1

    @property
    def span(self) -> timedelta:
        """From the first attempt to the last, jitter aside."""
        return sum(self.root, timedelta())

    def wait_after(self, attempts: int) -> timedelta | None:
        """How long after its `attempts`-th failed attempt a delivery is tried again; None
        when that was its last."""
        return self.root[attempts - 1] if attempts < self.attempts else None

    def probe_wait(self, failures: int) -> timedelta:
        """How long an open circuit waits after its `failures`-th failed round."""
        return self.root[min(failures, len(self.root)) - 1]


STANDARD_RETRIES = RetrySchedule.model_validate(
    ["PT5S", "PT1M", "PT5M", "PT15M", "PT30M", *["PT1H"] * 24]
)
"""Seconds, minutes, then hours, as Standard Webhooks and Svix retry, for 24 h 51 min in 30
attempts. The hours are capped at one, so a department back in the morning has its backlog
within the hour instead of waiting out a ten-hour pause."""


class DeliveryMode(StrEnum):
    PUSH = "push"
    PULL = "pull"
    BOTH = "both"


class DepartmentLink(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field(pattern=r"^https?://[^\s]+$")
    secret_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    agreement: str = Field(min_length=1, max_length=36)
    delivery: DeliveryMode
    events: tuple[str, ...] = Field(min_length=1)
    retry_schedule: RetrySchedule | None = None  # None: the relay's, STANDARD_RETRIES by default

    @field_validator("retry_schedule")
    @classmethod
    def _spans_a_day(cls, schedule: RetrySchedule | None) -> RetrySchedule | None:
        if schedule is not None and schedule.span < MIN_RETRY_SPAN:
            raise ValueError(
                f"spans {schedule.span}; it must span at least {MIN_RETRY_SPAN}, so that a"
                " night's outage loses nothing"
            )
        return schedule

    @property
    def pushes(self) -> bool:
        return self.delivery in (DeliveryMode.PUSH, DeliveryMode.BOTH)

    @property
    def pulls(self) -> bool:
        return self.delivery in (DeliveryMode.PULL, DeliveryMode.BOTH)

    def subscribes_to(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events

    def secret(self) -> str:
        value = os.environ.get(self.secret_env, "")
        if not value.startswith(SECRET_PREFIX):
            raise ValueError(f"{self.secret_env} must hold a {SECRET_PREFIX}... webhook secret")
        return value


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    departments: dict[Department, DepartmentLink]


def load_departments(path: Path) -> Mapping[Department, DepartmentLink]:
    """Read and check the file; ValueError with one sentence naming the fault."""
    links = read_config_file(path, _File).departments
    if Department.PUBLIC_SECURITY in links:
        raise ValueError(f"{path}: public-security runs the registry; it is not a partner")
    return links
