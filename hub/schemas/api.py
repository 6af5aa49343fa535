"""Routes of the schema registry and of agreements under /schemas/v1.

Reading needs `schemas:read` (every department: it must know the schemas it exchanges and its
own agreements); changing anything needs `schemas:admin` (data-governance staff). A department
sees only its own agreements: another's is answered 404, as if it did not exist.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hub import etags
from hub.audit import Actor
from hub.auth.domain import Principal
from hub.auth.guard import GuardedRoute, principal_of, requires
from hub.db import INT_MAX, rfc3339
from hub.deps import CurrentHub, DbSession
from hub.problems import VALIDATION_FAILED, FieldError, Problem, Text, problem_type
from hub.schemas import agreements, domain, service
from hub.schemas.compat import CompatibilityMode, Violation
from hub.schemas.store import Agreement, SchemaSubject, SchemaVersion, current_agreements
from hub.schemas.validation import Issue

router = APIRouter(prefix="/schemas/v1", tags=["Schema registry"], route_class=GuardedRoute)

SUBJECT_NOT_FOUND = problem_type(
    "schema-subject-not-found", 404, "数据主题不存在", "No such subject"
)
VERSION_NOT_FOUND = problem_type(
    "schema-version-not-found", 404, "数据主题版本不存在", "No such schema version"
)
SUBJECT_NAME_INVALID = problem_type(
    "schema-subject-name-invalid", 422, "数据主题名称不合规", "Invalid subject name"
)
SCHEMA_INVALID = problem_type("schema-invalid", 422, "模式定义无效", "Invalid schema")
SCHEMA_INCOMPATIBLE = problem_type(
    "schema-incompatible", 409, "新版本与兼容性规则冲突", "The schema breaks compatibility"
)
ILLEGAL_STATE_CHANGE = problem_type(
    "schema-state-change-illegal", 409, "版本状态不能如此变更", "Illegal version state change"
)
VERSION_RETIRED = problem_type(
    "schema-version-retired", 409, "该版本已停用", "The schema version is retired"
)
AGREEMENT_NOT_FOUND = problem_type(
    "agreement-not-found", 404, "数据共享协议不存在", "No such agreement"
)
AGREEMENT_REFUSED = problem_type(
    "agreement-refused", 422, "数据共享协议内容不符合规定", "Agreement not accepted"
)
AGREEMENT_TOO_NARROW = problem_type(
    "agreement-too-narrow",
    409,
    "数据共享协议未允许模式版本要求的字段",
    "An agreement does not allow fields the schema version requires",
)

SubjectName = Annotated[str, Path(max_length=domain.SUBJECT_NAME_MAX, examples=["holder-record"])]
VERSION_REF = r"^(latest|[1-9][0-9]{0,9})$"
"""`latest` or a version number; `_version_ref` bounds the number by INT_MAX."""
VersionRef = Annotated[
    str, Path(pattern=VERSION_REF, description="A version number (up to 2147483647) or `latest`")
]
HOLDER_SCHEMA_EXAMPLE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 64}},
    "required": ["name"],
}


def _actor(request: Request) -> Actor:
    principal = principal_of(request)
    return Actor(principal.client_id, principal.department.value)


def _version_ref(text: str, parameter: str = "version") -> int | str:
    """`latest` or the number: versions are int4 columns, so a larger number is refused here
    rather than by the database driver."""
    if text == "latest":
        return text
    if int(text) > INT_MAX:
        raise Problem(
            VALIDATION_FAILED,
            errors=[
                FieldError(Text(f"不得大于 {INT_MAX}", f"at most {INT_MAX}"), parameter=parameter)
            ],
        )
    return int(text)


def _not_found(error: LookupError) -> Problem:
    kind = SUBJECT_NOT_FOUND if isinstance(error, service.SubjectNotFound) else VERSION_NOT_FOUND
    return Problem(kind, Text(f"未找到：{error}", f"Not found: {error}"))


def _issues(issues: list[Issue], prefix: str) -> list[FieldError]:
    return [
        FieldError(Text(issue.zh, issue.en), pointer=prefix + issue.pointer) for issue in issues
    ]


def _violation(violation: Violation) -> dict[str, Any]:
    return {
        "against_version": violation.against_version,
        "direction": violation.direction,
        **{key: str(value) for key, value in asdict(violation.change).items()},
    }


def _incompatible(error: service.Incompatible) -> Problem:
    return Problem(
        SCHEMA_INCOMPATIBLE,
        Text(
            f"按 {error.mode} 规则，有 {len(error.violations)} 处不兼容的变更",
            f"{len(error.violations)} change(s) break {error.mode}",
        ),
        errors=[
            FieldError(
                Text(
                    f"与第 {v.against_version} 版相比（{v.direction}）：{v.change.zh}",
                    f"against version {v.against_version} ({v.direction}): {v.change.en}",
                ),
                pointer="/schema" + v.change.pointer,
            )
            for v in error.violations
        ],
        extensions={
            "compatibility": error.mode.value,
            "violations": [_violation(v) for v in error.violations],
        },
    )


def _too_narrow(error: domain.AgreementTooNarrow, pointer: str | None = None) -> Problem:
    """Each agreement to amend first and the fields it must allow; with `pointer` (the body's
    field list, when the change is an agreement's), one error per field."""
    lines = [shortfall.describe() for shortfall in error.shortfalls]
    return Problem(
        AGREEMENT_TOO_NARROW,
        Text(
            "；".join(zh for _, zh in lines) + "。请先修订协议，或改用不要求这些字段的版本",
            "; ".join(en for en, _ in lines)
            + ". Amend the agreements first, or use a version that does not require them",
        ),
        errors=[
            FieldError(Text(f"须允许 {field}", f"must allow {field}"), pointer=pointer)
            for shortfall in error.shortfalls
            for field in shortfall.fields
        ]
        if pointer is not None
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
                for shortfall in error.shortfalls
            ]
        },
    )


def _version_view(row: SchemaVersion, *, with_schema: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "subject": row.subject,
        "version": row.version,
        "id": row.id,
        "state": row.state,
        "deprecated_uses": row.deprecated_uses,
        "created_by": row.created_by,
        "created_at": rfc3339(row.created_at),
        "state_changed_at": rfc3339(row.state_changed_at),
    }
    if with_schema:
        view["schema"] = row.definition
    return view


# --- subjects and versions ----------------------------------------------------------------


@router.get("/subjects", summary="Every subject, its mode and versions")
@requires("schemas:read")
def list_subjects(session: DbSession) -> list[dict[str, Any]]:
    return [_subject_view(session, row) for row in service.subjects(session)]


def _subject_view(session: DbSession, row: SchemaSubject) -> dict[str, Any]:
    versions = service.versions_of(session, row.name)
    return {
        "subject": row.name,
        "compatibility": service.compatibility_of(session, row).value,
        "compatibility_is_default": row.compatibility is None,
        "versions": [_version_view(v, with_schema=False) for v in versions],
    }


@router.get("/subjects/{subject}/versions", summary="The versions of a subject")
@requires("schemas:read")
def list_versions(subject: SubjectName, session: DbSession) -> list[dict[str, Any]]:
    try:
        rows = service.versions_of(session, subject)
    except service.SubjectNotFound as error:
        raise _not_found(error) from None
    return [_version_view(row, with_schema=False) for row in rows]


class RegisterBody(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"schema": HOLDER_SCHEMA_EXAMPLE}]}}

    schema_: dict[str, Any] = Field(
        alias="schema", description="JSON Schema 2020-12, an object (a boolean is no version)"
    )
    state: Literal["DRAFT", "ACTIVE"] = "DRAFT"


@router.post(
    "/subjects/{subject}/versions",
    status_code=201,
    summary="Register a new version (or find the identical one)",
    responses={
        200: {"description": "This schema is already registered: that version"},
        409: {
            "description": "Breaks the subject's compatibility mode (each change listed), or, as "
            "ACTIVE, requires fields an agreement on the subject does not allow (each named)"
        },
        422: {"description": "Not a valid 2020-12 schema, or a `$ref` that does not resolve"},
    },
)
@requires("schemas:admin")
def register_version(
    request: Request, subject: SubjectName, body: RegisterBody, session: DbSession, hub: CurrentHub
) -> JSONResponse:
    try:
        done = service.register(
            session,
            hub.schemas,
            hub.audit,
            subject,
            body.schema_,
            state=domain.VersionState(body.state),
            actor=_actor(request),
            now=hub.clock.now(),
        )
    except service.SubjectNameInvalid:
        raise Problem(
            SUBJECT_NAME_INVALID,
            Text(
                "名称须为小写字母、数字，以点或连字符分隔",
                "Use lower-case words of letters and digits joined by dots or hyphens",
            ),
            errors=[FieldError(Text("名称不合规", "invalid name"), parameter="subject")],
        ) from None
    except service.SchemaInvalid as error:
        raise Problem(SCHEMA_INVALID, errors=_issues(error.issues, "/schema")) from None
    except service.Incompatible as error:
        raise _incompatible(error) from None
    except domain.AgreementTooNarrow as error:
        raise _too_narrow(error) from None
    row = done.version
    return JSONResponse(
        _version_view(row),
        status_code=201 if done.created else 200,
        headers={"Location": f"/schemas/v1/subjects/{row.subject}/versions/{row.version}"},
    )


@router.get("/subjects/{subject}/versions/{version}", summary="One version, with its schema")
@requires("schemas:read")
def get_version(subject: SubjectName, version: VersionRef, session: DbSession) -> dict[str, Any]:
    try:
        return _version_view(service.version_of(session, subject, _version_ref(version)))
    except (service.SubjectNotFound, service.VersionNotFound) as error:
        raise _not_found(error) from None


class StateBody(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"state": "DEPRECATED"}]}}

    state: domain.VersionState


@router.put(
    "/subjects/{subject}/versions/{version}/state",
    summary="Move a version forward: DRAFT → ACTIVE → DEPRECATED → RETIRED",
    responses={
        409: {
            "description": "Not a forward move from the current state, or to ACTIVE while an "
            "agreement on the subject does not allow fields the version requires"
        }
    },
)
@requires("schemas:admin")
def change_state(
    request: Request,
    subject: SubjectName,
    version: Annotated[int, Path(ge=1, le=INT_MAX)],
    body: StateBody,
    session: DbSession,
    hub: CurrentHub,
) -> dict[str, Any]:
    try:
        row = service.set_state(
            session,
            hub.schemas,
            hub.audit,
            subject,
            version,
            body.state,
            actor=_actor(request),
            now=hub.clock.now(),
        )
    except (service.SubjectNotFound, service.VersionNotFound) as error:
        raise _not_found(error) from None
    except domain.IllegalStateChange as error:
        raise Problem(
            ILLEGAL_STATE_CHANGE,
            Text(f"{error.current} 版本不能变为 {error.wanted}", str(error)),
            extensions={"state": error.current.value},
        ) from None
    except domain.AgreementTooNarrow as error:
        raise _too_narrow(error) from None
    return _version_view(row, with_schema=False)


class ValidateBody(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"document": {"name": "王芳"}}]}}

    document: Any = Field(description="The JSON document to check")


@router.post(
    "/subjects/{subject}/versions/{version}/validate",
    summary="Check a document against a version: every error with its JSON pointer",
    responses={409: {"description": "The version is RETIRED"}},
)
@requires("schemas:read")
def validate_document(
    subject: SubjectName,
    version: VersionRef,
    body: ValidateBody,
    session: DbSession,
    hub: CurrentHub,
) -> dict[str, Any]:
    try:
        row, issues = service.validate(
            session, hub.schemas, subject, _version_ref(version), body.document
        )
    except (service.SubjectNotFound, service.VersionNotFound) as error:
        raise _not_found(error) from None
    except service.VersionRetired:
        raise Problem(
            VERSION_RETIRED,
            Text(f"{subject} 第 {version} 版已停用", f"{subject} version {version} is retired"),
        ) from None
    return {
        "subject": row.subject,
        "version": row.version,
        "state": row.state,
        "valid": not issues,
        "errors": [asdict(issue) for issue in issues],
    }


@router.get("/subjects/{subject}/diff", summary="What changed between two versions")
@requires("schemas:read")
def diff_versions(
    subject: SubjectName,
    session: DbSession,
    older: Annotated[str, Query(alias="from", pattern=VERSION_REF)],
    newer: Annotated[str, Query(alias="to", pattern=VERSION_REF)],
) -> dict[str, Any]:
    try:
        first, second, changes = service.difference(
            session, subject, _version_ref(older, "from"), _version_ref(newer, "to")
        )
    except (service.SubjectNotFound, service.VersionNotFound) as error:
        raise _not_found(error) from None
    return {
        "subject": subject,
        "from": first.version,
        "to": second.version,
        "breaking_for_readers_of_new": [asdict(c) for c in changes["backward"]],
        "breaking_for_readers_of_old": [asdict(c) for c in changes["forward"]],
    }


class CandidateBody(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"schema": HOLDER_SCHEMA_EXAMPLE}]}}

    schema_: dict[str, Any] = Field(alias="schema")


@router.post(
    "/compatibility/subjects/{subject}",
    summary="Would this schema be accepted as the subject's next version? (nothing stored)",
)
@requires("schemas:read")
def check_compatibility(
    subject: SubjectName, body: CandidateBody, session: DbSession, hub: CurrentHub
) -> dict[str, Any]:
    try:
        service.checked_schema(session, hub.schemas, body.schema_)
    except service.SchemaInvalid as error:
        raise Problem(SCHEMA_INVALID, errors=_issues(error.issues, "/schema")) from None
    try:
        existing: SchemaSubject | None = service.subject_row(session, subject)
    except service.SubjectNotFound:
        existing = None
    mode, violations = service.violations_for(session, existing, body.schema_)
    return {
        "subject": subject,
        "compatibility": mode.value,
        "compatible": not violations,
        "violations": [_violation(v) for v in violations],
    }


@router.get("/schemas/ids/{schema_id}", summary="A version by its global id")
@requires("schemas:read")
def get_by_id(
    schema_id: Annotated[int, Path(ge=1, le=INT_MAX)], session: DbSession
) -> dict[str, Any]:
    try:
        return _version_view(service.by_id(session, schema_id))
    except service.VersionNotFound as error:
        raise _not_found(error) from None


# --- compatibility modes ------------------------------------------------------------------


class ModeBody(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"compatibility": "FULL_TRANSITIVE"}]}}

    compatibility: CompatibilityMode | None = Field(
        description="null on a subject: follow the registry's default again"
    )


@router.get("/config", summary="The registry's default compatibility mode")
@requires("schemas:read")
def get_default_mode(session: DbSession) -> dict[str, str]:
    return {"compatibility": service.default_compatibility(session).value}


@router.put("/config", summary="Set the registry's default compatibility mode")
@requires("schemas:admin")
def set_default_mode(
    request: Request, body: ModeBody, session: DbSession, hub: CurrentHub
) -> dict[str, str]:
    if body.compatibility is None:
        raise Problem(
            VALIDATION_FAILED,
            errors=[
                FieldError(Text("默认规则不能为空", "The default cannot be null"), "/compatibility")
            ],
        )
    mode = service.set_compatibility(
        session, hub.audit, None, body.compatibility, actor=_actor(request), now=hub.clock.now()
    )
    return {"compatibility": mode.value}


@router.get("/config/{subject}", summary="A subject's compatibility mode")
@requires("schemas:read")
def get_subject_mode(subject: SubjectName, session: DbSession) -> dict[str, Any]:
    try:
        row = service.subject_row(session, subject)
    except service.SubjectNotFound as error:
        raise _not_found(error) from None
    mode = service.compatibility_of(session, row)
    return {"compatibility": mode.value, "is_default": row.compatibility is None}


@router.put("/config/{subject}", summary="Set (or, with null, unset) a subject's mode")
@requires("schemas:admin")
def set_subject_mode(
    request: Request, subject: SubjectName, body: ModeBody, session: DbSession, hub: CurrentHub
) -> dict[str, Any]:
    try:
        mode = service.set_compatibility(
            session,
            hub.audit,
            subject,
            body.compatibility,
            actor=_actor(request),
            now=hub.clock.now(),
        )
    except service.SubjectNotFound as error:
        raise _not_found(error) from None
    return {"compatibility": mode.value, "is_default": body.compatibility is None}


# --- agreements ---------------------------------------------------------------------------


class AgreementBody(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "department": "education",
                    "purpose": "随迁子女义务教育入学 / compulsory schooling of migrant children",
                    "subject": "holder-record",
                    "fields": ["/permit/state", "/permit/expires_on", "/holder/name"],
                    "legal_basis": "[CF §24] 义务教育; [IM] 三(二)",
                    "valid_from": "2026-12-01",
                    "valid_to": None,
                    "status": "active",
                }
            ]
        }
    }

    department: str = Field(max_length=64)
    purpose: str = Field(min_length=1, max_length=256)
    subject: str = Field(max_length=domain.SUBJECT_NAME_MAX)
    fields: list[str] = Field(min_length=1, max_length=200, description="JSON pointers")
    legal_basis: str = Field(min_length=1, max_length=256, description="Cite the seed")
    valid_from: date
    valid_to: date | None = None
    status: domain.AgreementStatus = domain.AgreementStatus.ACTIVE

    def terms(self) -> domain.AgreementTerms:
        return domain.AgreementTerms(
            department=self.department,
            purpose=self.purpose,
            subject=self.subject,
            fields=self.fields,
            legal_basis=self.legal_basis,
            valid_from=self.valid_from,
            valid_to=self.valid_to,
            status=self.status,
        )


def _agreement_view(row: Agreement) -> dict[str, Any]:
    return {
        "id": row.id,
        "version": row.version,
        "department": row.department,
        "purpose": row.purpose,
        "subject": row.subject,
        "fields": row.allowed_fields,
        "legal_basis": row.legal_basis,
        "valid_from": row.valid_from.isoformat(),
        "valid_to": row.valid_to.isoformat() if row.valid_to else None,
        "status": row.status,
        "changed_by": row.changed_by,
        "changed_at": rfc3339(row.changed_at),
    }


def _refused(error: agreements.AgreementRefused) -> Problem:
    return Problem(
        AGREEMENT_REFUSED,
        Text(error.zh, error.en),
        errors=[FieldError(Text(error.zh, error.en), pointer=error.pointer)],
        extensions={"unknown_fields": error.fields} if error.fields else {},
    )


def _is_admin(principal: Principal) -> bool:
    return "schemas:admin" in principal.scopes


def _visible(request: Request, session: DbSession, agreement_id: str) -> Agreement:
    """The agreement if the caller may see it; anyone else's is 404, not 403, so its
    existence is not disclosed."""
    principal = principal_of(request)
    try:
        row = agreements.latest(session, agreement_id)
    except agreements.AgreementNotFound:
        row = None
    if row is None or not (_is_admin(principal) or row.department == principal.department):
        raise Problem(AGREEMENT_NOT_FOUND, Text("未找到该协议", "No such agreement"))
    return row


@router.get("/agreements", summary="Agreements in their latest version (a department: its own)")
@requires("schemas:read")
def list_agreements(
    request: Request,
    session: DbSession,
    department: Annotated[str | None, Query(max_length=64)] = None,
) -> list[dict[str, Any]]:
    principal = principal_of(request)
    if not _is_admin(principal):
        department = principal.department.value
    return [_agreement_view(row) for row in current_agreements(session, department=department)]


@router.post(
    "/agreements",
    status_code=201,
    summary="Make an agreement: the fields a department may receive, why, on what basis",
    responses={
        409: {"description": "Too few fields for a version in use: each it requires named"},
        422: {"description": "Unknown department, subject or field; bad dates"},
    },
)
@requires("schemas:admin")
def create_agreement(
    request: Request, body: AgreementBody, session: DbSession, hub: CurrentHub
) -> JSONResponse:
    try:
        row = agreements.create(
            session,
            hub.schemas,
            hub.audit,
            body.terms(),
            actor=_actor(request),
            now=hub.clock.now(),
        )
    except agreements.AgreementRefused as error:
        raise _refused(error) from None
    except domain.AgreementTooNarrow as error:
        raise _too_narrow(error, "/fields") from None
    return etags.with_etag(_agreement_view(row), 201, Location=f"/schemas/v1/agreements/{row.id}")


@router.get("/agreements/{agreement_id}", summary="An agreement, with its ETag")
@requires("schemas:read")
def get_agreement(request: Request, agreement_id: str, session: DbSession) -> JSONResponse:
    return etags.with_etag(_agreement_view(_visible(request, session, agreement_id)))


@router.get("/agreements/{agreement_id}/versions", summary="Every version of an agreement")
@requires("schemas:read")
def agreement_history(
    request: Request, agreement_id: str, session: DbSession
) -> list[dict[str, Any]]:
    _visible(request, session, agreement_id)
    return [_agreement_view(row) for row in agreements.history(session, agreement_id)]


@router.put(
    "/agreements/{agreement_id}",
    summary="Amend an agreement: a new version (If-Match: the version read)",
    responses={
        409: {"description": "Too few fields for a version in use: each it requires named"},
        412: {"description": "Stale If-Match"},
        428: {"description": "If-Match missing"},
    },
)
@requires("schemas:admin")
def amend_agreement(
    request: Request, agreement_id: str, body: AgreementBody, session: DbSession, hub: CurrentHub
) -> JSONResponse:
    expected = etags.expected_version(request)
    _visible(request, session, agreement_id)
    try:
        row = agreements.amend(
            session,
            hub.schemas,
            hub.audit,
            agreement_id,
            body.terms(),
            expected_version=expected,
            actor=_actor(request),
            now=hub.clock.now(),
        )
    except agreements.StaleAgreement as stale:
        raise etags.stale(
            stale.current_version,
            f"协议已是第 {stale.current_version} 版，请重新读取",
            f"The agreement is now at version {stale.current_version}: read it again",
        ) from None
    except agreements.AgreementRefused as error:
        raise _refused(error) from None
    except domain.AgreementTooNarrow as error:
        raise _too_narrow(error, "/fields") from None
    return etags.with_etag(_agreement_view(row))


class ProjectionBody(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "record": {
                        "$schema": "urn:permit-hub:schema:holder-record:1",
                        "schema_version": 1,
                        "event": {"id": "1", "type": "issue", "at": "2026-11-25T08:00:00Z"},
                        "holder": {"name": "王芳", "contact": "13800000000"},
                    }
                }
            ]
        }
    }

    record: dict[str, Any]


@router.post(
    "/agreements/{agreement_id}/projection",
    summary="What the agreement lets its department receive of this record",
)
@requires("schemas:read")
def project_record(
    request: Request,
    agreement_id: str,
    body: ProjectionBody,
    session: DbSession,
    hub: CurrentHub,
) -> dict[str, Any]:
    row = _visible(request, session, agreement_id)
    try:
        schema = service.version_of(session, row.subject, "latest")
    except (service.SubjectNotFound, service.VersionNotFound) as error:
        raise _not_found(error) from None
    resolve = hub.schemas.resolve_through(session)
    projected = hub.projections.project(row, schema, body.record, hub.clock.today(), resolve)
    return {
        "agreement": row.id,
        "agreement_version": row.version,
        "in_force": projected.in_force,
        "record": projected.record,
    }
