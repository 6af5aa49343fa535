"""Rules of the schema registry and of data-sharing agreements, free of storage and HTTP.

Semantics follow Confluent Schema Registry and Apicurio: a subject holds numbered versions
that never change once registered (a published record names its version, so the version must
mean the same thing forever); registering a schema identical to an existing version returns
that version instead of a new one. A version moves through DRAFT -> ACTIVE -> DEPRECATED ->
RETIRED, only forward: a schema in use can be phased out but never silently revived, and a
RETIRED version is no longer used to publish or accept anything.

An agreement says which fields of a subject a department may receive, for what purpose and on
which legal basis; it is in force only while ACTIVE and within its dates. Those fields and the
fixed `ENVELOPE` are all a department ever receives, whatever a schema version requires: a
version that requires more than an agreement binding on its subject allows cannot become ACTIVE,
and an agreement cannot be narrowed below what a version in use requires (`AgreementTooNarrow`),
since a record must be valid against the version it names, as its receiver checks.
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

from hub.problems import DomainProblem, FieldError, Problem, Text
from hub.schemas.compat import CompatibilityMode
from hub.schemas.problems import AGREEMENT_TOO_NARROW, ILLEGAL_STATE_CHANGE

DEFAULT_COMPATIBILITY: Final = CompatibilityMode.BACKWARD
SUBJECT_NAME: Final = re.compile(r"^[a-z][a-z0-9]*(?:[.-][a-z0-9]+)*$")
SUBJECT_NAME_MAX: Final = 128


class VersionState(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    DEPRECATED = "DEPRECATED"
    RETIRED = "RETIRED"


STATE_NAMES: Mapping[str, Text] = {
    VersionState.DRAFT.value: Text("草稿", "Draft"),
    VersionState.ACTIVE.value: Text("使用中", "Active"),
    VersionState.DEPRECATED.value: Text("已弃用", "Deprecated"),
    VersionState.RETIRED.value: Text("已停用", "Retired"),
}
"""What staff call each state, by its value."""

# Forward only. A draft may be abandoned (RETIRED) without ever being used.
NEXT_STATES: Mapping[VersionState, frozenset[VersionState]] = {
    VersionState.DRAFT: frozenset({VersionState.ACTIVE, VersionState.RETIRED}),
    VersionState.ACTIVE: frozenset({VersionState.DEPRECATED, VersionState.RETIRED}),
    VersionState.DEPRECATED: frozenset({VersionState.RETIRED}),
    VersionState.RETIRED: frozenset(),
}

# What may be exchanged (published, accepted, validated for a department) against a version.
EXCHANGEABLE: Final = frozenset({VersionState.ACTIVE, VersionState.DEPRECATED})


class IllegalStateChange(DomainProblem, ValueError):
    def __init__(self, current: VersionState, wanted: VersionState) -> None:
        allowed = ", ".join(sorted(NEXT_STATES[current])) or "none"
        super().__init__(f"a {current} version cannot become {wanted} (allowed: {allowed})")
        self.current, self.wanted = current, wanted

    def problem(self) -> Problem:
        return Problem(
            ILLEGAL_STATE_CHANGE,
            Text(f"{self.current} 版本不能变为 {self.wanted}", str(self)),
            extensions={"state": self.current.value},
        )


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


ENVELOPE: Final = ("/$schema", "/schema_version", "/event")
"""What every exchanged record carries besides its agreed fields: the schema and version it is
written against and the event it reports. Fixed, never read from a schema (a version that
required `/holder` would otherwise hand every department the whole holder), and free of
personal data by design."""


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
        return self.valid_from <= day and binding(self.status, self.valid_to, day)


def binding(status: AgreementStatus, valid_to: date | None, day: date) -> bool:
    """Whether an agreement is in force on `day` or will be on a later day with no further
    change: what a schema version in use must be able to serve (an agreement that starts next
    month is held to it too; a suspended or ended one only once it is amended back)."""
    return status is AgreementStatus.ACTIVE and (valid_to is None or day <= valid_to)


@dataclass(frozen=True)
class Shortfall:
    """Fields a schema version requires that an agreement does not let through: until the
    agreement is amended to allow them, no record by it could be valid against the version."""

    agreement: str
    agreement_version: int
    department: str
    subject: str
    schema_version: int
    fields: tuple[str, ...]
    """JSON pointers into the record, e.g. `/holder/sex`."""

    def describe(self) -> tuple[str, str]:
        """English and Chinese, one line."""
        version = f"{self.subject} version {self.schema_version}"
        return (
            f"agreement {self.agreement} (version {self.agreement_version}, {self.department})"
            f" does not allow {', '.join(self.fields)}, which {version} requires",
            f"数据共享协议 {self.agreement}（第 {self.agreement_version} 版，{self.department}）"
            f"未允许 {self.subject} 第 {self.schema_version} 版要求的字段："
            f"{'、'.join(self.fields)}",
        )


class AgreementTooNarrow(DomainProblem, ValueError):
    """A change refused because, after it, some agreement binding on a subject would not let
    through what a version in use requires: amend each agreement first (`shortfalls`). At an
    agreement's field list (`at`), one error per field it must allow."""

    def __init__(self, shortfalls: Sequence[Shortfall]) -> None:
        super().__init__("; ".join(shortfall.describe()[0] for shortfall in shortfalls))
        self.shortfalls = list(shortfalls)

    def problem(self) -> Problem:
        lines = [shortfall.describe() for shortfall in self.shortfalls]
        return Problem(
            AGREEMENT_TOO_NARROW,
            Text(
                "；".join(zh for _, zh in lines) + "。请先修订协议，或改用不要求这些字段的版本",
                "; ".join(en for en, _ in lines)
                + ". Amend the agreements first, or use a version that does not require them",
            ),
            errors=[
                FieldError(Text(f"须允许 {field}", f"must allow {field}"), pointer=self.pointer)
                for shortfall in self.shortfalls
                for field in shortfall.fields
            ]
            if self.pointer is not None
            else [],
            extensions={
                "agreements": [
                    {
                        "id": shortfall.agreement,
                        "version": shortfall.agreement_version,
                        "department": shortfall.department,
                        "subject": shortfall.subject,
                        "schema_version": shortfall.schema_version,
                        "fields": list(shortfall.fields),
                    }
                    for shortfall in self.shortfalls
                ]
            },
        )
