"""Use cases of the schema registry: register, look up, change state and mode, validate.

Each function works in the caller's unit of work and writes an audit entry for every change.
A version becomes ACTIVE (registered so, or moved there) only if every agreement binding on its
subject lets through what it requires (`shortfalls`; else `domain.AgreementTooNarrow`): the
hub never widens an agreement to make a record valid, nor sends one that is not.
`Registry` is the per-process part: the versions this process has read (immutable, so kept
forever) and their compiled validators. Schemas a version refers to are loaded through the
caller's session before compiling, never through a connection of their own: on SQLite a
second connection would wait on the caller's write lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditLog
from hub.clock import china_date
from hub.problems import DomainProblem, FieldError, Problem, Text
from hub.schemas import domain
from hub.schemas.compat import CompatibilityMode, Violation, check, diff
from hub.schemas.problems import (
    SCHEMA_INCOMPATIBLE,
    SCHEMA_INVALID,
    SCHEMA_NOT_IN_USE,
    SUBJECT_NOT_FOUND,
    VERSION_NOT_FOUND,
    VERSION_RETIRED,
)
from hub.schemas.projection import Resolve, unkept_required
from hub.schemas.store import (
    Agreement,
    SchemaSettings,
    SchemaSubject,
    SchemaVersion,
    current_agreements,
)
from hub.schemas.validation import (
    Fetch,
    Issue,
    Validators,
    check_schema,
    parse_schema_uri,
)

BUILTIN_FOLDER = "builtin"
HUB_ACTOR = Actor("hub", "public-security")
PURPOSE = "schema-governance"


class SubjectNotFound(DomainProblem, LookupError):
    def problem(self) -> Problem:
        return Problem(SUBJECT_NOT_FOUND, Text(f"未找到：{self}", f"Not found: {self}"))


class VersionNotFound(DomainProblem, LookupError):
    def problem(self) -> Problem:
        return Problem(VERSION_NOT_FOUND, Text(f"未找到：{self}", f"Not found: {self}"))


class SubjectNameInvalid(ValueError):
    pass


SCHEMA: Final = "/schema"
"""Where the registry's requests carry a schema: the prefix of the pointers into it."""


class SchemaInvalid(DomainProblem, ValueError):
    def __init__(self, issues: list[Issue]) -> None:
        super().__init__(f"{len(issues)} problem(s) in the schema")
        self.issues = issues

    def problem(self) -> Problem:
        return Problem(
            SCHEMA_INVALID,
            errors=[issue.field_error(SCHEMA) for issue in self.issues],
        )


class Incompatible(DomainProblem, ValueError):
    def __init__(self, mode: CompatibilityMode, violations: list[Violation]) -> None:
        super().__init__(f"{len(violations)} change(s) break {mode}")
        self.mode, self.violations = mode, violations

    def problem(self) -> Problem:
        # Asked only by the web handler: the views' models load the OpenAPI layer, which a
        # command building the hub does not need.
        from hub.schemas import views

        count, mode = len(self.violations), self.mode
        return Problem(
            SCHEMA_INCOMPATIBLE,
            Text(f"按 {mode} 规则，有 {count} 处不兼容的变更", f"{count} change(s) break {mode}"),
            errors=[
                FieldError(
                    Text(
                        f"与第 {v.against_version} 版相比（{v.direction}）：{v.change.zh}",
                        f"against version {v.against_version} ({v.direction}): {v.change.en}",
                    ),
                    pointer=SCHEMA + v.change.pointer,
                )
                for v in self.violations
            ],
            extensions={
                "compatibility": mode.value,
                "violations": [
                    views.violation_view(v).model_dump(mode="json") for v in self.violations
                ],
            },
        )


class SchemaNotInUse(DomainProblem, LookupError):
    """No ACTIVE or DEPRECATED version to validate against (a DRAFT is not exchanged yet)."""

    def __init__(self, subject: str, version: int | None) -> None:
        which = f"version {version}" if version is not None else "no version"
        super().__init__(f"{subject}: {which} in use")
        self.subject, self.version = subject, version

    def problem(self) -> Problem:
        which = f"第 {self.version} 版" if self.version is not None else "任何版本"
        return Problem(
            SCHEMA_NOT_IN_USE,
            Text(f"{self.subject} 没有在用的{which}", str(self)),
            errors=self.field_errors(Text("版本未启用", "not in use")),
        )


class VersionRetired(DomainProblem, ValueError):
    """Nothing is validated, published or accepted against a RETIRED version."""

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(f"{subject} version {version} is retired")
        self.subject, self.version = subject, version

    def problem(self) -> Problem:
        return Problem(
            VERSION_RETIRED,
            Text(f"{self.subject} 第 {self.version} 版已停用", str(self)),
            errors=self.field_errors(Text("版本已停用", "retired")),
        )


class Registry:
    """Per process: every version read so far and the validators compiled from them."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int], Mapping[str, Any]] = {}
        self.validators = Validators(self._remembered)

    def _remembered(self, subject: str, version: int) -> Mapping[str, Any] | None:
        return self._known.get((subject, version))

    def remember(self, session: Session, row: SchemaVersion) -> None:
        """Keep `row`'s schema and, through `session`, every registered schema it refers to."""
        pending = [row]
        while pending:
            current = pending.pop()
            self._known[(current.subject, current.version)] = current.definition
            for subject, version in _referenced(current.definition):
                if (subject, version) not in self._known:
                    found = _find_version(session, subject, version)
                    if found is not None:
                        pending.append(found)

    def fetch_through(self, session: Session) -> Fetch:
        """A fetch for `check_schema` that reads what this process has not seen yet."""

        def fetch(subject: str, version: int) -> Mapping[str, Any] | None:
            known = self._remembered(subject, version)
            if known is not None:
                return known
            row = _find_version(session, subject, version)
            if row is None:
                return None
            self.remember(session, row)
            return row.definition

        return fetch

    def resolve(self, uri: str) -> Mapping[str, Any] | None:
        """The schema registered at `uri` (urn:permit-hub:schema:...) if this process has read
        it: after `remember` of a version, every version it refers to."""
        parsed = parse_schema_uri(uri)
        return self._remembered(*parsed) if parsed else None

    def resolve_through(self, session: Session) -> Resolve:
        """As `resolve`, reading through `session` what this process has not seen yet."""
        fetch = self.fetch_through(session)

        def resolve(uri: str) -> Mapping[str, Any] | None:
            parsed = parse_schema_uri(uri)
            return fetch(*parsed) if parsed else None

        return resolve


def _referenced(schema: Any) -> Iterator[tuple[str, int]]:
    """The registered versions a schema's `$ref`s name (urn:permit-hub:schema:...)."""
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str):
                parsed = parse_schema_uri(value.split("#", 1)[0])
                if parsed is not None:
                    yield parsed
            else:
                yield from _referenced(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _referenced(item)


def _find_version(session: Session, subject: str, version: int) -> SchemaVersion | None:
    query = select(SchemaVersion).where(
        col(SchemaVersion.subject) == subject, col(SchemaVersion.version) == version
    )
    return session.exec(query).first()


# --- reading ------------------------------------------------------------------------------


def subject_row(session: Session, subject: str, *, lock: bool = False) -> SchemaSubject:
    query = select(SchemaSubject).where(col(SchemaSubject.name) == subject)
    found = session.exec(query.with_for_update() if lock else query).first()
    if found is None:
        raise SubjectNotFound(subject)
    return found


def subjects(session: Session) -> list[SchemaSubject]:
    return list(session.exec(select(SchemaSubject).order_by(col(SchemaSubject.name))).all())


def versions_of(session: Session, subject: str) -> list[SchemaVersion]:
    subject_row(session, subject)
    query = select(SchemaVersion).where(col(SchemaVersion.subject) == subject)
    return list(session.exec(query.order_by(col(SchemaVersion.version))).all())


def version_of(session: Session, subject: str, version: int | str) -> SchemaVersion:
    """A version by number, or "latest" (the highest number that is not RETIRED)."""
    if version == "latest":
        usable = [
            row for row in versions_of(session, subject) if row.state != domain.VersionState.RETIRED
        ]
        if not usable:
            raise VersionNotFound(f"{subject} has no version in use")
        return usable[-1]
    subject_row(session, subject)
    found = _find_version(session, subject, int(version))
    if found is None:
        raise VersionNotFound(f"{subject} has no version {version}")
    return found


def versions_in_use(session: Session, subject: str) -> list[SchemaVersion]:
    """The versions records may be exchanged against now or after a newer one is retired:
    ACTIVE and DEPRECATED (`domain.EXCHANGEABLE`), oldest first."""
    return [
        row
        for row in versions_of(session, subject)
        if domain.VersionState(row.state) in domain.EXCHANGEABLE
    ]


def exchangeable_version(session: Session, subject: str) -> SchemaVersion | None:
    """The version exchanged now: the newest ACTIVE or DEPRECATED one (a DRAFT is not in use
    yet, a RETIRED one no longer), as the relay publishes against."""
    states = [state.value for state in domain.EXCHANGEABLE]
    return session.exec(
        select(SchemaVersion)
        .where(col(SchemaVersion.subject) == subject, col(SchemaVersion.state).in_(states))
        .order_by(col(SchemaVersion.version).desc())
        .limit(1)
    ).first()


def by_id(session: Session, schema_id: int) -> SchemaVersion:
    found = session.get(SchemaVersion, schema_id)
    if found is None:
        raise VersionNotFound(f"no schema has id {schema_id}")
    return found


def default_compatibility(session: Session) -> CompatibilityMode:
    settings = session.get(SchemaSettings, 1)
    return CompatibilityMode(settings.compatibility) if settings else domain.DEFAULT_COMPATIBILITY


def compatibility_of(session: Session, subject: SchemaSubject) -> CompatibilityMode:
    if subject.compatibility is not None:
        return CompatibilityMode(subject.compatibility)
    return default_compatibility(session)


# --- changing -----------------------------------------------------------------------------


def _audit(
    session: Session,
    audit: AuditLog,
    actor: Actor,
    action: str,
    outcome: str,
    target: str,
    now: datetime,
) -> None:
    audit.record(session, actor.did(action, outcome, target, PURPOSE), now)


def violations_for(
    session: Session, subject: SchemaSubject | None, definition: Any
) -> tuple[CompatibilityMode, list[Violation]]:
    """What registering `definition` under `subject` would break, by the subject's mode,
    against its versions in use (RETIRED ones no longer constrain)."""
    if subject is None:
        return default_compatibility(session), []
    mode = compatibility_of(session, subject)
    history = [
        (row.version, row.definition)
        for row in versions_of(session, subject.name)
        if row.state != domain.VersionState.RETIRED
    ]
    return mode, check(mode, history, definition)


def checked_schema(session: Session, registry: Registry, definition: Any) -> None:
    issues = check_schema(definition, registry.fetch_through(session))
    if issues:
        raise SchemaInvalid(issues)


def shortfalls(
    resolve: Resolve,
    agreements: Sequence[Agreement],
    subject: str,
    versions: Sequence[tuple[int, Mapping[str, Any]]],
) -> list[domain.Shortfall]:
    """For each agreement and each (number, schema) of `subject`'s versions: the fields the
    version requires that the agreement's projection (its fields and `domain.ENVELOPE`) drops,
    where there are any."""
    found = []
    for number, definition in versions:
        for agreement in agreements:
            kept = (*domain.ENVELOPE, *agreement.allowed_fields)
            unkept = unkept_required(definition, kept, resolve)
            if unkept:
                found.append(
                    domain.Shortfall(
                        agreement.id,
                        agreement.version,
                        agreement.department,
                        subject,
                        number,
                        tuple(unkept),
                    )
                )
    return found


def _check_agreements_allow(
    session: Session,
    registry: Registry,
    subject: str,
    version: int,
    definition: Mapping[str, Any],
    today: date,
) -> None:
    """AgreementTooNarrow if an agreement binding on `subject` today or later drops a field the
    version about to become ACTIVE requires."""
    binding = [
        row
        for row in current_agreements(session, subject=subject)
        if domain.binding(domain.AgreementStatus(row.status), row.valid_to, today)
    ]
    resolve = registry.resolve_through(session)
    found = shortfalls(resolve, binding, subject, [(version, definition)])
    if found:
        raise domain.AgreementTooNarrow(found)


@dataclass(frozen=True)
class Registered:
    version: SchemaVersion
    created: bool  # False: the same schema was already registered, this is that version


def register(
    session: Session,
    registry: Registry,
    audit: AuditLog,
    subject: str,
    definition: Any,
    *,
    state: domain.VersionState,
    actor: Actor,
    now: datetime,
) -> Registered:
    """Register `definition` as the subject's next version (creating the subject), or return
    the existing version with the same schema. Raises SubjectNameInvalid, SchemaInvalid,
    Incompatible or (registering as ACTIVE) domain.AgreementTooNarrow, having written nothing."""
    if not domain.valid_subject_name(subject):
        raise SubjectNameInvalid(subject)
    if state not in (domain.VersionState.DRAFT, domain.VersionState.ACTIVE):
        raise ValueError("a new version starts as DRAFT or ACTIVE")
    existing = _lock_subject(session, subject)
    fingerprint = domain.fingerprint(definition)
    if existing is not None:
        same = session.exec(
            select(SchemaVersion).where(
                col(SchemaVersion.subject) == subject,
                col(SchemaVersion.fingerprint) == fingerprint,
            )
        ).first()
        if same is not None:  # checked when it was registered
            return Registered(same, created=False)
    # Only a new version is checked against the meta-schema: the check is most of a start's
    # work (every built-in schema, on every start) and adds nothing to one found above.
    checked_schema(session, registry, definition)
    mode, violations = violations_for(session, existing, definition)
    if violations:
        raise Incompatible(mode, violations)
    if existing is None:
        session.add(SchemaSubject(name=subject, created_at=now))
        session.flush()
    last = session.exec(
        select(sa.func.max(SchemaVersion.version)).where(col(SchemaVersion.subject) == subject)
    ).one()
    number = (last or 0) + 1
    if state is domain.VersionState.ACTIVE:
        _check_agreements_allow(session, registry, subject, number, definition, china_date(now))
    row = SchemaVersion(
        subject=subject,
        version=number,
        definition=definition,
        fingerprint=fingerprint,
        state=state.value,
        created_by=actor.client_id,
        created_at=now,
        state_changed_at=now,
    )
    session.add(row)
    session.flush()
    _audit(session, audit, actor, "schema.register", state.value, _name(row), now)
    return Registered(row, created=True)


def _lock_subject(session: Session, subject: str) -> SchemaSubject | None:
    """Row lock on the subject, so two registrations of one subject queue (SQLite: every
    writer already does)."""
    try:
        return subject_row(session, subject, lock=True)
    except SubjectNotFound:
        return None


def _name(row: SchemaVersion) -> str:
    return f"{row.subject}:{row.version}"


def set_state(
    session: Session,
    registry: Registry,
    audit: AuditLog,
    subject: str,
    version: int,
    wanted: domain.VersionState,
    *,
    actor: Actor,
    now: datetime,
) -> SchemaVersion:
    """Move a version forward (IllegalStateChange otherwise); to ACTIVE only if the agreements
    on its subject allow what it requires (domain.AgreementTooNarrow)."""
    row = version_of(session, subject, version)
    current = domain.VersionState(row.state)
    domain.change_state(current, wanted)
    if wanted is domain.VersionState.ACTIVE:
        _check_agreements_allow(
            session, registry, row.subject, row.version, row.definition, china_date(now)
        )
    row.state = wanted.value
    row.state_changed_at = now
    session.add(row)
    session.flush()
    _audit(session, audit, actor, "schema.state", row.state, _name(row), now)
    return row


def set_compatibility(
    session: Session,
    audit: AuditLog,
    subject: str | None,
    mode: CompatibilityMode | None,
    *,
    actor: Actor,
    now: datetime,
) -> CompatibilityMode:
    """Set a subject's mode (None: follow the default again) or, for subject None, the
    registry's default. Returns the mode now in force there."""
    if subject is None:
        if mode is None:
            raise ValueError("the default mode cannot be unset")
        settings = session.get(SchemaSettings, 1) or SchemaSettings(compatibility=mode.value)
        settings.compatibility = mode.value
        session.add(settings)
        target, in_force = "*", mode
    else:
        row = subject_row(session, subject, lock=True)
        row.compatibility = mode.value if mode else None
        session.add(row)
        target, in_force = subject, compatibility_of(session, row)
    session.flush()
    _audit(session, audit, actor, "schema.compatibility", in_force.value, target, now)
    return in_force


def validate(
    session: Session, registry: Registry, subject: str, version: int | str, document: Any
) -> tuple[SchemaVersion, list[Issue]]:
    """Every problem of `document` against the version, with its pointer. A RETIRED version
    refuses (VersionRetired); a use of a DEPRECATED one is counted."""
    row = version_of(session, subject, version)
    if row.state == domain.VersionState.RETIRED:
        raise VersionRetired(row.subject, row.version)
    registry.remember(session, row)
    issues = registry.validators.get(row.subject, row.version).errors(document)
    if row.state == domain.VersionState.DEPRECATED:
        session.execute(
            sa.update(SchemaVersion)
            .where(col(SchemaVersion.id) == row.id)
            .values(deprecated_uses=col(SchemaVersion.deprecated_uses) + 1)
            .execution_options(synchronize_session=False)
        )
        row.deprecated_uses += 1
    return row, issues


def difference(
    session: Session, subject: str, older: int | str, newer: int | str
) -> tuple[SchemaVersion, SchemaVersion, dict[str, list[Any]]]:
    first, second = version_of(session, subject, older), version_of(session, subject, newer)
    return first, second, dict(diff(first.definition, second.definition))


# --- built-in subjects --------------------------------------------------------------------


def builtin_schemas() -> dict[str, Any]:
    """hub/schemas/builtin/<subject>.json, by subject name."""
    folder = resources.files("hub.schemas") / BUILTIN_FOLDER
    return {
        entry.name.removesuffix(".json"): json.loads(entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda item: item.name)
        if entry.name.endswith(".json")
    }


def register_builtins(
    session: Session, registry: Registry, audit: AuditLog, now: datetime
) -> list[SchemaVersion]:
    """Register each built-in schema that is not registered yet, as ACTIVE; a shipped schema
    that breaks its subject's mode stops the start (Incompatible). Returns new versions."""
    created = []
    for subject, definition in builtin_schemas().items():
        done = register(
            session,
            registry,
            audit,
            subject,
            definition,
            state=domain.VersionState.ACTIVE,
            actor=HUB_ACTOR,
            now=now,
        )
        if done.created:
            created.append(done.version)
    return created
