"""Routes of the schema registry and of agreements under /schemas/v1.

Reading needs `schemas:read` (every department: it must know the schemas it exchanges and its
own agreements); changing anything needs `schemas:admin` (data-governance staff). A department
sees only its own agreements: another's is answered 404, as if it did not exist.

Every parameter and body says in the OpenAPI document what the hub accepts (subject names,
version numbers up to `hub.db.INT_MAX`, modes, JSON pointers), and every answer's shape is a
model of `hub.schemas.views`. The examples go together: register `proof.business-licence`,
check its next version, set its mode, make it ACTIVE; validate a holder record, make the
education agreement, amend it with the ETag it was read with, project the record by it.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hub import etags
from hub.auth.domain import Department, Principal
from hub.auth.guard import CurrentActor, GuardedRoute, principal_of, requires
from hub.db import INT_MAX
from hub.deps import CurrentHub, DbSession
from hub.problems import Problem, Text
from hub.schemas import agreements, domain, service, views
from hub.schemas.bodies import SUBJECT_RULE, AgreementBody, AgreementId, SubjectName
from hub.schemas.compat import CompatibilityMode
from hub.schemas.problems import (
    AGREEMENT_NOT_FOUND,
)
from hub.schemas.store import Agreement, SchemaSubject, current_agreements

router = APIRouter(prefix="/schemas/v1", tags=["Schema registry"], route_class=GuardedRoute)

NEW_SUBJECT: Final = "proof.business-licence"
"""The subject the examples register: a market-regulation proof of the employment form
`business-licence` [CF §15], which no built-in subject covers."""
NewSubjectName = Annotated[
    str,
    Path(
        pattern=domain.SUBJECT_NAME.pattern,
        max_length=domain.SUBJECT_NAME_MAX,
        description=SUBJECT_RULE + "; registering creates the subject",
        examples=[NEW_SUBJECT],
    ),
]
VERSION_NUMBER: Final = (
    "[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
    "|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]"
    "|214748364[0-7]"
)
"""The decimals 1 to 2147483647 (`hub.db.INT_MAX`, versions are int4 columns), digit by digit:
a path or query segment is a string, and JSON Schema bounds a string by a pattern only."""
VERSION_REF: Final = f"^(latest|{VERSION_NUMBER})$"
VERSION_REF_DESCRIPTION: Final = "A version number (up to 2147483647) or `latest`"
VersionRef = Annotated[
    str, Path(pattern=VERSION_REF, description=VERSION_REF_DESCRIPTION, examples=["latest"])
]
VersionNumber = Annotated[int, Path(ge=1, le=INT_MAX, examples=[1])]

BUSINESS_LICENCE_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Business licence proof / 营业执照证明",
    "type": "object",
    "properties": {
        "proof_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "citizen_id": {"type": "string", "format": "citizen-id"},
        "kind": {"enum": ["business-licence"]},
        "valid_from": {"type": "string", "format": "date"},
        "details": {
            "type": "object",
            "properties": {
                "credit_code": {
                    "type": "string",
                    "pattern": "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$",
                    "description": "统一社会信用代码 (GB 32100)",
                }
            },
            "required": ["credit_code"],
        },
    },
    "required": ["proof_id", "citizen_id", "kind", "valid_from", "details"],
}
HOLDER_RECORD_EXAMPLE: Final[dict[str, Any]] = {
    "$schema": "urn:permit-hub:schema:holder-record:1",
    "schema_version": 1,
    "event": {"id": "41", "type": "issue", "at": "2026-11-25T08:00:00+08:00"},
    "permit": {
        "jurisdiction": "chifeng",
        "state": "valid",
        "valid_from": "2026-11-25",
        "expires_on": "2027-11-24",
        "residence_start": "2026-03-25",
    },
    "holder": {
        "citizen_id": "320102199003070420",
        "name": "王芳",
        "current_region": "150402",
        "workplace": "赤峰华达物流有限公司",
        "contact": "13800000000",
    },
}
"""Wang Fang of README's worked flow, as published after her permit is issued."""


def _version_ref(text: str) -> int | str:
    """`latest` or the number (the pattern has bounded it)."""
    return text if text == "latest" else int(text)


# --- subjects and versions ----------------------------------------------------------------


@router.get("/subjects", summary="Every subject, its mode and versions")
@requires("schemas:read")
def list_subjects(session: DbSession) -> list[views.SubjectView]:
    return [
        views.subject_view(
            row, service.compatibility_of(session, row), service.versions_of(session, row.name)
        )
        for row in service.subjects(session)
    ]


@router.get("/subjects/{subject}/versions", summary="The versions of a subject")
@requires("schemas:read")
def list_versions(subject: SubjectName, session: DbSession) -> list[views.VersionSummary]:
    rows = service.versions_of(session, subject)
    return [views.version_summary(row) for row in rows]


class RegisterBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"schema": BUSINESS_LICENCE_SCHEMA, "state": "DRAFT"}]}
    )

    schema_: dict[str, Any] = Field(
        alias="schema", description="JSON Schema 2020-12, an object (a boolean is no version)"
    )
    state: Literal["DRAFT", "ACTIVE"] = "DRAFT"


def _located(description: str) -> dict[str, Any]:
    """A registration's answer: the version, and where it is."""
    location = {"description": "/schemas/v1/subjects/{subject}/versions/{version}"}
    return {
        "model": views.VersionView,
        "description": description,
        "headers": {"Location": {**location, "schema": {"type": "string"}}},
    }


@router.post(
    "/subjects/{subject}/versions",
    status_code=201,
    summary="Register a new version (or find the identical one)",
    responses={
        201: _located("Registered as the subject's next version"),
        200: _located("This schema is already registered: that version"),
        409: {
            "description": "Breaks the subject's compatibility mode (each change listed), or, as "
            "ACTIVE, requires fields an agreement on the subject does not allow (each named)"
        },
        422: {"description": "Not a valid 2020-12 schema, or a `$ref` that does not resolve"},
    },
)
@requires("schemas:admin")
def register_version(
    actor: CurrentActor,
    subject: NewSubjectName,
    body: RegisterBody,
    session: DbSession,
    hub: CurrentHub,
) -> JSONResponse:
    done = service.register(
        session,
        hub.schemas,
        hub.audit,
        subject,
        body.schema_,
        state=domain.VersionState(body.state),
        actor=actor,
        now=hub.clock.now(),
    )
    row = done.version
    return JSONResponse(
        views.version_view(row).model_dump(mode="json", by_alias=True),
        status_code=201 if done.created else 200,
        headers={"Location": f"/schemas/v1/subjects/{row.subject}/versions/{row.version}"},
    )


@router.get("/subjects/{subject}/versions/{version}", summary="One version, with its schema")
@requires("schemas:read")
def get_version(subject: SubjectName, version: VersionRef, session: DbSession) -> views.VersionView:
    return views.version_view(service.version_of(session, subject, _version_ref(version)))


class StateBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"state": "ACTIVE"}]})

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
    actor: CurrentActor,
    subject: NewSubjectName,
    version: VersionNumber,
    body: StateBody,
    session: DbSession,
    hub: CurrentHub,
) -> views.VersionSummary:
    row = service.set_state(
        session,
        hub.schemas,
        hub.audit,
        subject,
        version,
        body.state,
        actor=actor,
        now=hub.clock.now(),
    )
    return views.version_summary(row)


class ValidateBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"document": HOLDER_RECORD_EXAMPLE}]})

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
) -> views.ValidationReport:
    row, issues = service.validate(
        session, hub.schemas, subject, _version_ref(version), body.document
    )
    return views.ValidationReport(
        subject=row.subject,
        version=row.version,
        state=domain.VersionState(row.state),
        valid=not issues,
        errors=issues,
    )


@router.get("/subjects/{subject}/diff", summary="What changed between two versions")
@requires("schemas:read")
def diff_versions(
    subject: SubjectName,
    session: DbSession,
    older: Annotated[
        str,
        Query(
            alias="from", pattern=VERSION_REF, description=VERSION_REF_DESCRIPTION, examples=["1"]
        ),
    ],
    newer: Annotated[
        str,
        Query(
            alias="to",
            pattern=VERSION_REF,
            description=VERSION_REF_DESCRIPTION,
            examples=["latest"],
        ),
    ],
) -> views.DiffView:
    first, second, changes = service.difference(
        session, subject, _version_ref(older), _version_ref(newer)
    )
    return views.DiffView(
        subject=subject,
        from_=first.version,
        to=second.version,
        breaking_for_readers_of_new=changes["backward"],
        breaking_for_readers_of_old=changes["forward"],
    )


class CandidateBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"schema": BUSINESS_LICENCE_SCHEMA}]})

    schema_: dict[str, Any] = Field(alias="schema")


@router.post(
    "/compatibility/subjects/{subject}",
    summary="Would this schema be accepted as the subject's next version? (nothing stored)",
    responses={
        422: {"description": "Not a valid 2020-12 schema, or a `$ref` that does not resolve"}
    },
)
@requires("schemas:read")
def check_compatibility(
    subject: NewSubjectName, body: CandidateBody, session: DbSession, hub: CurrentHub
) -> views.CompatibilityReport:
    service.checked_schema(session, hub.schemas, body.schema_)
    try:
        existing: SchemaSubject | None = service.subject_row(session, subject)
    except service.SubjectNotFound:
        existing = None
    mode, violations = service.violations_for(session, existing, body.schema_)
    return views.CompatibilityReport(
        subject=subject,
        compatibility=mode,
        compatible=not violations,
        violations=[views.violation_view(v) for v in violations],
    )


@router.get("/schemas/ids/{schema_id}", summary="A version by its global id")
@requires("schemas:read")
def get_by_id(
    schema_id: Annotated[int, Path(ge=1, le=INT_MAX, examples=[1])], session: DbSession
) -> views.VersionView:
    return views.version_view(service.by_id(session, schema_id))


# --- compatibility modes ------------------------------------------------------------------


class DefaultModeBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"compatibility": "BACKWARD"}]})

    compatibility: CompatibilityMode


class SubjectModeBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"compatibility": "FULL"}]})

    compatibility: CompatibilityMode | None = Field(
        description="null: follow the registry's default again"
    )


@router.get("/config", summary="The registry's default compatibility mode")
@requires("schemas:read")
def get_default_mode(session: DbSession) -> views.DefaultMode:
    return views.DefaultMode(compatibility=service.default_compatibility(session))


@router.put("/config", summary="Set the registry's default compatibility mode")
@requires("schemas:admin")
def set_default_mode(
    actor: CurrentActor, body: DefaultModeBody, session: DbSession, hub: CurrentHub
) -> views.DefaultMode:
    mode = service.set_compatibility(
        session, hub.audit, None, body.compatibility, actor=actor, now=hub.clock.now()
    )
    return views.DefaultMode(compatibility=mode)


@router.get("/config/{subject}", summary="A subject's compatibility mode")
@requires("schemas:read")
def get_subject_mode(subject: SubjectName, session: DbSession) -> views.SubjectMode:
    row = service.subject_row(session, subject)
    mode = service.compatibility_of(session, row)
    return views.SubjectMode(compatibility=mode, is_default=row.compatibility is None)


@router.put("/config/{subject}", summary="Set (or, with null, unset) a subject's mode")
@requires("schemas:admin")
def set_subject_mode(
    actor: CurrentActor,
    subject: NewSubjectName,
    body: SubjectModeBody,
    session: DbSession,
    hub: CurrentHub,
) -> views.SubjectMode:
    mode = service.set_compatibility(
        session,
        hub.audit,
        subject,
        body.compatibility,
        actor=actor,
        now=hub.clock.now(),
    )
    return views.SubjectMode(compatibility=mode, is_default=body.compatibility is None)


# --- agreements ---------------------------------------------------------------------------


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


def _with_etag(row: Agreement, status_code: int = 200, **headers: str) -> JSONResponse:
    body = views.agreement_view(row).model_dump(mode="json")
    return etags.with_etag(body, status_code, **headers)


def _agreement_answer(description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": views.AgreementView,
        "description": description,
        "headers": {**etags.ETAG_HEADER, **headers},
    }


AGREEMENT_REFUSALS: Final[dict[int | str, dict[str, Any]]] = {
    409: {"description": "Too few fields for a version in use: each it requires named"},
    422: {
        "description": "A subject without a version in use, a field its latest version does "
        "not declare or listed twice, valid_to before valid_from"
    },
}


@router.get("/agreements", summary="Agreements in their latest version (a department: its own)")
@requires("schemas:read")
def list_agreements(
    request: Request,
    session: DbSession,
    department: Annotated[
        Department | None, Query(description="Governance staff: one department's only")
    ] = None,
) -> list[views.AgreementView]:
    principal = principal_of(request)
    if not _is_admin(principal):
        department = principal.department
    rows = current_agreements(session, department=department.value if department else None)
    return [views.agreement_view(row) for row in rows]


@router.post(
    "/agreements",
    status_code=201,
    summary="Make an agreement: the fields a department may receive, why, on what basis",
    responses={
        201: _agreement_answer(
            "The agreement, version 1",
            Location={"description": "/schemas/v1/agreements/{id}", "schema": {"type": "string"}},
        ),
        **AGREEMENT_REFUSALS,
    },
)
@requires("schemas:admin")
def create_agreement(
    actor: CurrentActor, body: AgreementBody, session: DbSession, hub: CurrentHub
) -> JSONResponse:
    row = agreements.create(
        session,
        hub.schemas,
        hub.audit,
        body.terms(),
        actor=actor,
        now=hub.clock.now(),
    )
    return _with_etag(row, 201, Location=f"/schemas/v1/agreements/{row.id}")


@router.get(
    "/agreements/{agreement_id}",
    summary="An agreement, with its ETag",
    responses={200: _agreement_answer("The agreement in its latest version")},
)
@requires("schemas:read")
def get_agreement(request: Request, agreement_id: AgreementId, session: DbSession) -> JSONResponse:
    return _with_etag(_visible(request, session, agreement_id))


@router.get("/agreements/{agreement_id}/versions", summary="Every version of an agreement")
@requires("schemas:read")
def agreement_history(
    request: Request, agreement_id: AgreementId, session: DbSession
) -> list[views.AgreementView]:
    _visible(request, session, agreement_id)
    return [views.agreement_view(row) for row in agreements.history(session, agreement_id)]


@router.put(
    "/agreements/{agreement_id}",
    summary="Amend an agreement: a new version (If-Match: the version read)",
    responses={
        200: _agreement_answer("The agreement's new version"),
        **AGREEMENT_REFUSALS,
        **etags.PRECONDITION_RESPONSES,
    },
    openapi_extra=etags.if_match_required(),
)
@requires("schemas:admin")
def amend_agreement(
    request: Request,
    actor: CurrentActor,
    agreement_id: AgreementId,
    body: AgreementBody,
    session: DbSession,
    hub: CurrentHub,
) -> JSONResponse:
    expected = etags.expected_version(request)
    _visible(request, session, agreement_id)
    row = agreements.amend(
        session,
        hub.schemas,
        hub.audit,
        agreement_id,
        body.terms(),
        expected_version=expected,
        actor=actor,
        now=hub.clock.now(),
    )
    return _with_etag(row)


class ProjectionBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"record": HOLDER_RECORD_EXAMPLE}]})

    record: dict[str, Any] = Field(description="A record of the agreement's subject")


@router.post(
    "/agreements/{agreement_id}/projection",
    summary="What the agreement lets its department receive of this record",
)
@requires("schemas:read")
def project_record(
    request: Request,
    agreement_id: AgreementId,
    body: ProjectionBody,
    session: DbSession,
    hub: CurrentHub,
) -> views.ProjectionView:
    row = _visible(request, session, agreement_id)
    schema = service.version_of(session, row.subject, "latest")
    resolve = hub.schemas.resolve_through(session)
    projected = hub.publisher.projections.project(
        row, schema, body.record, hub.clock.today(), resolve
    )
    return views.ProjectionView(
        agreement=row.id,
        agreement_version=row.version,
        in_force=projected.in_force,
        record=projected.record,
    )
