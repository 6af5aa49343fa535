"""Rules of the schema registry and of data-sharing agreements, free of storage and HTTP.

Semantics follow Confluent Schema Registry and Apicurio: a subject holds numbered versions
that never change once registered (a published record names its version, so the version must
mean the same thing forever); registering a schema identical to an existing version returns
that version instead of a new one. A version moves through DRAFT -> ACTIVE -> DEPRECATED ->
RETIRED, only forward: a schema in use can be phased out but never silently revived, and a
RETIRED version is no longer used to publish or accept anything.

An agreement says which fields of a subject a department may receive, for what purpose and on
which legal basis; it is in force only while ACTIVE and within its dates.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Final

from hub.schemas.compat import CompatibilityMode

DEFAULT_COMPATIBILITY: Final = CompatibilityMode.BACKWARD
SUBJECT_NAME: Final = re.compile(r"^[a-z][a-z0-9]*(?:[.-][a-z0-9]+)*$")
SUBJECT_NAME_MAX: Final = 128


class VersionState(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    DEPRECATED = "DEPRECATED"
    RETIRED = "RETIRED"


# Forward only. A draft may be abandoned (RETIRED) without ever being used.
NEXT_STATES: Mapping[VersionState, frozenset[VersionState]] = {
    VersionState.DRAFT: frozenset({VersionState.ACTIVE, VersionState.RETIRED}),
    VersionState.ACTIVE: frozenset({VersionState.DEPRECATED, VersionState.RETIRED}),
    VersionState.DEPRECATED: frozenset({VersionState.RETIRED}),
    VersionState.RETIRED: frozenset(),
}

# What may be exchanged (published, accepted, validated for a department) against a version.
EXCHANGEABLE: Final = frozenset({VersionState.ACTIVE, VersionState.DEPRECATED})


class IllegalStateChange(ValueError):
    def __init__(self, current: VersionState, wanted: VersionState) -> None:
        allowed = ", ".join(sorted(NEXT_STATES[current])) or "none"
        super().__init__(f"a {current} version cannot become {wanted} (allowed: {allowed})")
        self.current, self.wanted = current, wanted


def change_state(current: VersionState, wanted: VersionState) -> VersionState:
    if wanted not in NEXT_STATES[current]:
        raise IllegalStateChange(current, wanted)
    return wanted


def valid_subject_name(name: str) -> bool:
    """Lower-case words joined by dots or hyphens (`proof.social-insurance`): names appear in
    URIs and file names, so nothing that needs escaping."""
    return len(name) <= SUBJECT_NAME_MAX and SUBJECT_NAME.match(name) is not None


def canonical(schema: Any) -> str:
    """The schema as canonical JSON (sorted keys, no spaces): what "the same schema" means."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(schema: Any) -> str:
    return hashlib.sha256(canonical(schema).encode()).hexdigest()


def envelope(schema: Any) -> list[str]:
    """Pointers a projection always keeps: the root's required properties. A record without
    them is invalid whatever the agreement, and they carry no personal data by design (the
    record's schema, version and event)."""
    if not isinstance(schema, Mapping):
        return []
    required = schema.get("required", [])
    return [f"/{_escape(name)}" for name in required if isinstance(name, str)]


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class AgreementStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ENDED = "ended"


@dataclass(frozen=True)
class AgreementTerms:
    """What governance staff decide; the registry checks it against the subject's schema."""

    department: str
    purpose: str
    subject: str
    fields: Sequence[str]
    legal_basis: str
    valid_from: date
    valid_to: date | None
    status: AgreementStatus

    def in_force(self, day: date) -> bool:
        ended = self.valid_to is not None and day > self.valid_to
        return self.status is AgreementStatus.ACTIVE and self.valid_from <= day and not ended
