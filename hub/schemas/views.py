"""What the schema registry's routes answer: the documents the OpenAPI document promises, and
the functions that build them from rows.

Each route's success response is one of these models, so the published schema is the shape the
hub sends (the contract test validates real answers against it): no field more (a
`ClosedView`), no field less. Times are the hub's RFC 3339 strings (`hub.db.Rfc3339`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import ConfigDict, Field

from hub.auth.domain import Department
from hub.db import Rfc3339, rfc3339
from hub.openapi import ClosedView
from hub.schemas import domain
from hub.schemas.compat import Change, ChangeKind, CompatibilityMode, Direction, Violation
from hub.schemas.store import Agreement, SchemaSubject, SchemaVersion
from hub.schemas.validation import Issue


class VersionSummary(ClosedView):
    """A registered version, without its schema."""

    subject: str
    version: int = Field(ge=1)
    id: int = Field(ge=1, description="The global id (GET /schemas/v1/schemas/ids/{id})")
    state: domain.VersionState
    deprecated_uses: int = Field(ge=0, description="Validations against it while DEPRECATED")
    created_by: str
    created_at: Rfc3339
    state_changed_at: Rfc3339


class VersionView(VersionSummary):
    """A registered version with its schema."""

    schema_: dict[str, Any] = Field(alias="schema", description="Its JSON Schema 2020-12")


def version_summary(row: SchemaVersion) -> VersionSummary:
    assert row.id is not None  # a stored row
    return VersionSummary(
        subject=row.subject,
        version=row.version,
        id=row.id,
        state=domain.VersionState(row.state),
        deprecated_uses=row.deprecated_uses,
        created_by=row.created_by,
        created_at=rfc3339(row.created_at),
        state_changed_at=rfc3339(row.state_changed_at),
    )


def version_view(row: SchemaVersion) -> VersionView:
    return VersionView(**version_summary(row).model_dump(), schema=row.definition)


class SubjectView(ClosedView):
    subject: str
    compatibility: CompatibilityMode = Field(description="The mode in force on the subject")
    compatibility_is_default: bool = Field(description="It follows the registry's default")
    versions: list[VersionSummary]


def subject_view(
    row: SchemaSubject, mode: CompatibilityMode, versions: list[SchemaVersion]
) -> SubjectView:
    return SubjectView(
        subject=row.name,
        compatibility=mode,
        compatibility_is_default=row.compatibility is None,
        versions=[version_summary(version) for version in versions],
    )


class ValidationReport(ClosedView):
    subject: str
    version: int
    state: domain.VersionState
    valid: bool
    errors: list[Issue] = Field(description="Every error, with its JSON pointer into the document")


class DiffView(ClosedView):
    model_config = ConfigDict(validate_by_name=True)

    subject: str
    from_: int = Field(alias="from")
    to: int
    breaking_for_readers_of_new: list[Change] = Field(
        description="What readers that moved to `to` would fail on in documents of `from`"
    )
    breaking_for_readers_of_old: list[Change] = Field(
        description="What readers still on `from` would fail on in documents of `to`"
    )


class ViolationView(ClosedView):
    """A change that breaks the subject's mode against one of its versions."""

    against_version: int
    direction: Direction
    kind: ChangeKind
    pointer: str = Field(description="JSON pointer into the candidate schema")
    en: str
    zh: str


def violation_view(violation: Violation) -> ViolationView:
    change = violation.change
    return ViolationView(
        against_version=violation.against_version,
        direction=violation.direction,
        kind=change.kind,
        pointer=change.pointer,
        en=change.en,
        zh=change.zh,
    )


class CompatibilityReport(ClosedView):
    subject: str
    compatibility: CompatibilityMode
    compatible: bool
    violations: list[ViolationView]


class DefaultMode(ClosedView):
    compatibility: CompatibilityMode


class SubjectMode(ClosedView):
    compatibility: CompatibilityMode = Field(description="The mode in force on the subject")
    is_default: bool = Field(description="It follows the registry's default")


class AgreementView(ClosedView):
    """One version of a data-sharing agreement; its ETag is `version`."""

    id: str
    version: int = Field(ge=1)
    department: Department
    purpose: str
    subject: str
    fields: list[str] = Field(description="JSON pointers into the subject's records")
    legal_basis: str
    valid_from: date
    valid_to: date | None
    status: domain.AgreementStatus
    changed_by: str
    changed_at: Rfc3339


def agreement_view(row: Agreement) -> AgreementView:
    return AgreementView(
        id=row.id,
        version=row.version,
        department=Department(row.department),
        purpose=row.purpose,
        subject=row.subject,
        fields=list(row.allowed_fields),
        legal_basis=row.legal_basis,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        status=domain.AgreementStatus(row.status),
        changed_by=row.changed_by,
        changed_at=rfc3339(row.changed_at),
    )


class ProjectionView(ClosedView):
    agreement: str
    agreement_version: int
    in_force: bool = Field(description="Whether the agreement is in force today")
    record: dict[str, Any] = Field(description="The agreed fields and the envelope, no more")
