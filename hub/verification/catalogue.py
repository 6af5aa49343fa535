"""config/catalogue.toml: the published list of services a permit unlocks, read at start-up.

Each service names its responsible department (only that department's windows grant it), the
permit states it accepts, the continuous residence it needs, where it is offered and the
conditions the window checks itself, and cites the policy text it comes from. The seeds publish
these lists and refresh them at least every three years [ZZ] 三(三), so they are data, not code.

The file is validated when the hub starts: cites use the source tags the jurisdiction files
declare, jurisdictions are ones the hub has files for; any fault stops the hub with one
`ConfigError` sentence naming the file and the field.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.auth.domain import Department
from hub.permits.domain import PermitState
from hub.permits.jurisdictions import Cite, Code, Count, Jurisdiction, Names
from hub.settings import ConfigError
from hub.text import Text
from hub.verification.domain import Catalogue, Service

_SOURCE_TAG = re.compile(r"\[([A-Z]{2,4})")
_FORMS = {
    "cite": "a cite is a bracketed source tag and article, e.g. '[CF §24]' or '[ZZ] 三(二)1(1)'",
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Service(_Model):
    name: Names
    department: Department
    permit_states: tuple[Literal["valid", "suspended"], ...] = Field(
        default=("valid",), min_length=1
    )
    minimum_residence_months: Count | None = None
    jurisdictions: tuple[Code, ...] | None = Field(default=None, min_length=1)
    conditions: tuple[Names, ...] = ()
    cite: Cite

    def to_service(self, code: str) -> Service:
        return Service(
            code=code,
            name=Text(self.name.zh, self.name.en),
            department=self.department,
            permit_states=frozenset(PermitState(state) for state in self.permit_states),
            minimum_residence_months=self.minimum_residence_months,
            jurisdictions=frozenset(self.jurisdictions) if self.jurisdictions else None,
            conditions=tuple(Text(text.zh, text.en) for text in self.conditions),
            cite=self.cite,
        )


class _File(_Model):
    services: dict[Code, _Service] = Field(min_length=1)


def load_catalogue(path: Path, jurisdictions: Mapping[str, Jurisdiction]) -> Catalogue:
    """Read and check the file against the jurisdictions the hub loaded."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the service catalogue {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        entries = _File.model_validate(table).services
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc.errors()[0])) from None
    tags = {source.tag for place in jurisdictions.values() for source in place.sources}
    for code, entry in entries.items():
        for tag in _SOURCE_TAG.findall(entry.cite):
            if tag not in tags:
                raise ConfigError(
                    f"{path}: field services.{code}.cite uses source tag {tag}, which no "
                    "jurisdiction file declares"
                )
        for place in entry.jurisdictions or ():
            if place not in jurisdictions:
                raise ConfigError(
                    f"{path}: field services.{code}.jurisdictions names {place!r}, which has "
                    "no jurisdiction file"
                )
    return Catalogue({code: entry.to_service(code) for code, entry in entries.items()})


def _describe(path: Path, error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"] if part != "[key]")
    if error["type"] == "missing":
        return f"{path}: field {field} is required"
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown field {field}"
    message = str(error["msg"])
    if error["type"] == "string_pattern_mismatch":
        message = _FORMS.get(str(error["loc"][-1]), "a code is lower-case words joined by hyphens")
    return f"{path}: field {field or 'file'}: {message}"
