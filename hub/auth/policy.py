"""config/access.toml: which scopes each kind of client of each department may hold.

Validated at start like config/departments.toml: an unknown client kind, department or scope,
or a misspelt key, stops the hub with one sentence instead of silently allowing or refusing.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from hub.auth.domain import AccessPolicy, ClientKind, Department, unknown_scopes


def _known_scope(scope: str) -> str:
    if unknown_scopes([scope]):
        raise ValueError(f"unknown scope {scope!r}")
    return scope


Scope = Annotated[str, AfterValidator(_known_scope)]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: dict[ClientKind, dict[Department, list[Scope]]]


def load_access_policy(path: Path) -> AccessPolicy:
    """Read and check the file; ValueError with one sentence naming the fault."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        parsed = _File.model_validate(data)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from None
    return AccessPolicy(
        scopes={
            kind: {department: frozenset(held) for department, held in table.items()}
            for kind, table in parsed.scopes.items()
        },
        source=str(path),
    )
