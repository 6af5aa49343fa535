"""Data-sharing agreements: which fields of a subject a department may receive, and why.

Only data-governance staff change agreements; every change is a new version of the agreement
(the old rows stay, so what a department was allowed on any past day can be shown) and an
audit entry. An agreement is checked against its subject's schema in use when it is written:
a field the schema does not declare is refused, since a typo in an allow-list would otherwise
silently share nothing, or be read later as permission for a field added under that name. And
an agreement in force (or to be) must let through what every version in use requires
(`domain.AgreementTooNarrow` otherwise): a record its department receives must be valid against
the version it names, and the hub never adds a field the agreement does not list.
"""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from hub.audit import Actor, AuditLog
from hub.auth.domain import Department
from hub.clock import china_date
from hub.problems import DomainProblem, Problem, Stale, Text
from hub.schemas import domain, service
from hub.schemas.problems import AGREEMENT_NOT_FOUND, AGREEMENT_REFUSED
from hub.schemas.projection import Projection, Resolve, missing_fields
from hub.schemas.service import Registry
from hub.schemas.store import Agreement, SchemaVersion

PURPOSE = "agreement-governance"


class AgreementNotFound(DomainProblem, LookupError):
    """No agreement has the id (a department's API answers this for another's agreement too,
    so its existence is not disclosed)."""

    def problem(self) -> Problem:
        return Problem(AGREEMENT_NOT_FOUND, Text("未找到该协议", "No such agreement"))


class AgreementRefused(DomainProblem, ValueError):
    """Terms the registry cannot accept, naming the field (JSON pointer into the body)."""

    def __init__(self, pointer: str, zh: str, en: str, fields: list[str] | None = None) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en
        self.fields = fields or []
        self.at(pointer)

    def problem(self) -> Problem:
        text = Text(self.zh, self.en)
        return Problem(
            AGREEMENT_REFUSED,
            text,
            errors=self.field_errors(text),
            extensions={"unknown_fields": self.fields} if self.fields else {},
        )


class StaleAgreement(Stale):
    wording = Text(
        "协议已是第 {version} 版，请重新读取",
        "The agreement is now at version {version}: read it again",
    )


def terms_of(row: Agreement) -> domain.AgreementTerms:
    return domain.AgreementTerms(
        department=row.department,
        purpose=row.purpose,
        subject=row.subject,
        fields=list(row.allowed_fields),
        legal_basis=row.legal_basis,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        status=domain.AgreementStatus(row.status),
    )


def _check(session: Session, registry: Registry, terms: domain.AgreementTerms) -> None:
    if terms.department not in {department.value for department in Department}:
        raise AgreementRefused(
            "/department", "部门不存在", f"Unknown department {terms.department!r}"
        )
    if terms.valid_to is not None and terms.valid_to < terms.valid_from:
        raise AgreementRefused("/valid_to", "结束日期早于开始日期", "valid_to is before valid_from")
    if len(set(terms.fields)) != len(terms.fields):
        raise AgreementRefused("/fields", "字段重复", "A field is listed twice")
    try:
        schema = service.version_of(session, terms.subject, "latest")
    except (service.SubjectNotFound, service.VersionNotFound):
        raise AgreementRefused(
            "/subject",
            f"数据主题 {terms.subject} 没有在用的版本",
            f"Subject {terms.subject!r} has no version in use",
        ) from None
    registry.remember(session, schema)
    resolve = registry.resolve_through(session)
    missing = missing_fields(schema.definition, list(terms.fields), resolve)
    if missing:
        raise AgreementRefused(
            "/fields",
            f"数据主题 {terms.subject} 第 {schema.version} 版没有这些字段：{'、'.join(missing)}",
            f"{terms.subject} version {schema.version} has no field {', '.join(missing)}",
            missing,
        )


def _write(
    session: Session,
    registry: Registry,
    audit: AuditLog,
    agreement_id: str,
    version: int,
    terms: domain.AgreementTerms,
    actor: Actor,
    now: datetime,
) -> Agreement:
    row = Agreement(
        id=agreement_id,
        version=version,
        department=terms.department,
        purpose=terms.purpose,
        subject=terms.subject,
        allowed_fields=list(terms.fields),
        legal_basis=terms.legal_basis,
        valid_from=terms.valid_from,
        valid_to=terms.valid_to,
        status=terms.status.value,
        changed_by=actor.client_id,
        changed_at=now,
    )
    if domain.binding(terms.status, terms.valid_to, china_date(now)):
        in_use = service.versions_in_use(session, terms.subject)
        versions = [(version.version, version.definition) for version in in_use]
        resolve = registry.resolve_through(session)
        found = service.shortfalls(resolve, [row], terms.subject, versions)
        if found:
            raise domain.AgreementTooNarrow(found).at("/fields")
    session.add(row)
    session.flush()
    action = "agreement.create" if version == 1 else "agreement.amend"
    target = f"{agreement_id}:{version}"
    audit.record(session, actor.did(action, terms.status.value, target, PURPOSE), now)
    return row


def create(
    session: Session,
    registry: Registry,
    audit: AuditLog,
    terms: domain.AgreementTerms,
    *,
    actor: Actor,
    now: datetime,
    agreement_id: str | None = None,
) -> Agreement:
    """A new agreement, version 1; its id is generated unless given (config seeds name theirs,
    so config/departments.toml can refer to them). AgreementRefused for terms the schema does
    not declare, domain.AgreementTooNarrow for too few fields for a version in use."""
    _check(session, registry, terms)
    agreement_id = agreement_id or str(uuid.uuid4())
    return _write(session, registry, audit, agreement_id, 1, terms, actor, now)


def seed(
    session: Session,
    registry: Registry,
    audit: AuditLog,
    directory: Path,
    *,
    actor: Actor,
    now: datetime,
) -> list[Agreement]:
    """Create each config/agreements/<id>.toml whose id does not exist yet. Later changes go
    through the governance API; a file never overwrites what governance decided."""
    created = []
    for path in sorted(directory.glob("*.toml")):
        agreement_id = path.stem
        if session.get(Agreement, (agreement_id, 1)) is not None:
            continue
        terms = _terms_from_file(path)
        try:
            created.append(
                create(
                    session, registry, audit, terms, actor=actor, now=now, agreement_id=agreement_id
                )
            )
        except AgreementRefused as refused:
            raise ValueError(f"{path}: {refused.en}") from None
        except domain.AgreementTooNarrow as narrow:
            raise ValueError(f"{path}: {narrow}") from None
    return created


def _terms_from_file(path: Path) -> domain.AgreementTerms:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return domain.AgreementTerms(
            department=str(data["department"]),
            purpose=str(data["purpose"]),
            subject=str(data["subject"]),
            fields=[str(field) for field in data["fields"]],
            legal_basis=str(data["legal_basis"]),
            valid_from=data["valid_from"],
            valid_to=data.get("valid_to"),
            status=domain.AgreementStatus(data.get("status", "active")),
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not a valid agreement ({exc})") from None


def amend(
    session: Session,
    registry: Registry,
    audit: AuditLog,
    agreement_id: str,
    terms: domain.AgreementTerms,
    *,
    expected_version: int,
    actor: Actor,
    now: datetime,
) -> Agreement:
    """A new version of the agreement; `expected_version` is the one the caller read. Raises
    as `create` does, and StaleAgreement."""
    current = latest(session, agreement_id, lock=True)
    if current.version != expected_version:
        raise StaleAgreement(current.version)
    _check(session, registry, terms)
    return _write(session, registry, audit, agreement_id, current.version + 1, terms, actor, now)


def latest(session: Session, agreement_id: str, *, lock: bool = False) -> Agreement:
    query = (
        select(Agreement)
        .where(col(Agreement.id) == agreement_id)
        .order_by(col(Agreement.version).desc())
        .limit(1)
    )
    found = session.exec(query.with_for_update() if lock else query).first()
    if found is None:
        raise AgreementNotFound(agreement_id)
    return found


def history(session: Session, agreement_id: str) -> list[Agreement]:
    query = select(Agreement).where(col(Agreement.id) == agreement_id)
    rows = list(session.exec(query.order_by(col(Agreement.version))).all())
    if not rows:
        raise AgreementNotFound(agreement_id)
    return rows


@dataclass(frozen=True)
class Projected:
    agreement: Agreement
    record: dict[str, Any]
    in_force: bool
    shortfall: domain.Shortfall | None
    """What the schema version requires that the agreement does not allow: if anything, the
    record cannot be valid against that version, and is not sent."""


@dataclass(frozen=True)
class _Compiled:
    projection: Projection
    shortfall: domain.Shortfall | None


class Projections:
    """Compiled projections by (agreement id, agreement version, subject, schema version): both
    versions are immutable, so an entry never goes stale, and what an agreement lacks under one
    schema version is never taken for its standing under another.

    A projection keeps the agreement's fields and `domain.ENVELOPE`, never a field because a
    schema requires it."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, int, str, int], _Compiled] = {}

    def project(
        self,
        row: Agreement,
        schema: SchemaVersion,
        record: Mapping[str, Any],
        today: date,
        resolve: Resolve,
    ) -> Projected:
        """`record` as `row` lets its department receive it under `schema`; `resolve` finds
        the versions `schema` refers to, the first time this pair is projected."""
        key = (row.id, row.version, schema.subject, schema.version)
        compiled = self._compiled.get(key)
        if compiled is None:
            version = [(schema.version, schema.definition)]
            found = service.shortfalls(resolve, [row], schema.subject, version)
            projection = Projection(row.allowed_fields, always=domain.ENVELOPE)
            compiled = _Compiled(projection, found[0] if found else None)
            self._compiled[key] = compiled
        in_force = terms_of(row).in_force(today)
        return Projected(row, compiled.projection.apply(record), in_force, compiled.shortfall)
