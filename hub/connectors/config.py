"""config/departments.toml: how the hub exchanges with each department.

Secrets are never in the file: each department names the environment variable that holds its
Standard Webhooks secret, so the file can be committed and reviewed. The file is validated at
start (a typo stops the hub with one sentence); the secrets are read only by the relay, which
refuses to start without them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.auth.domain import Department
from hub.connectors.signing import SECRET_PREFIX

PARTNERS = frozenset(Department) - {Department.PUBLIC_SECURITY}
"""The five departments the hub publishes to; public security runs the registry itself."""


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
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        links = _File.model_validate(data).departments
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from None
    if Department.PUBLIC_SECURITY in links:
        raise ValueError(f"{path}: public-security runs the registry; it is not a partner")
    return links
