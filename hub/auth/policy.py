"""config/access.toml: which scopes each kind of client of each department may hold, and how
failed client authentications and failed staff sign-ins are throttled.

Validated at start like config/departments.toml: an unknown client kind, department or scope,
or a misspelt key, stops the hub with one sentence instead of silently allowing or refusing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from hub.auth.domain import AccessPolicy, ClientKind, Department, FailureLimits, unknown_scopes
from hub.settings import read_config_file


def _known_scope(scope: str) -> str:
    if unknown_scopes([scope]):
        raise ValueError(f"unknown scope {scope!r}")
    return scope


Scope = Annotated[str, AfterValidator(_known_scope)]


class _FailedAuthentication(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_seconds: int = Field(default=300, ge=10, le=86_400)
    per_client: int = Field(default=10, ge=1, le=10_000)
    per_address: int = Field(default=50, ge=1, le=100_000)


class _StaffSignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_seconds: int = Field(default=900, ge=60, le=86_400)
    per_account: int = Field(default=5, ge=1, le=1_000)
    per_address: int = Field(default=30, ge=1, le=100_000)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    scopes: dict[ClientKind, dict[Department, list[Scope]]]
    failed_authentication: _FailedAuthentication = Field(
        default_factory=_FailedAuthentication, alias="failed-authentication"
    )
    staff_sign_in: _StaffSignIn = Field(default_factory=_StaffSignIn, alias="staff-sign-in")


def load_access_policy(path: Path) -> AccessPolicy:
    """Read and check the file; ValueError with one sentence naming the fault."""
    parsed = read_config_file(path, _File)
    limits, staff = parsed.failed_authentication, parsed.staff_sign_in
    return AccessPolicy(
        scopes={
            kind: {department: frozenset(held) for department, held in table.items()}
            for kind, table in parsed.scopes.items()
        },
        failed_authentication=FailureLimits(
            limits.window_seconds, limits.per_client, limits.per_address
        ),
        staff_sign_in=FailureLimits(staff.window_seconds, staff.per_account, staff.per_address),
        source=str(path),
    )
