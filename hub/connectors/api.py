"""Routes of the exchange with the departments under /exchange/v1.

Thin: parse, authorise (the scope here, the department from the token), call
`hub.connectors.exchange`, shape the answer. A department is always the caller's own: it files
and revokes only its own proofs, and receives only what its agreement allows. Nothing here
echoes a citizen ID: problems point at fields, answers about proofs carry ids, not people, and
the holder's ID reaches a department only inside a record its agreement allows it in. Look-ups
are POSTed so the ID never sits in a URL or an access log; answers with personal data are
`Cache-Control: no-store`.
"""

from __future__ import annotations

from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema

from hub.auth.guard import GuardedRoute, actor_of, principal_of, requires
from hub.connectors import exchange, reports
from hub.connectors.problems import (
    CURSOR_INVALID,
    HOLDER_NOT_FOUND,
    NO_AGREEMENT,
    PROOF_REVOKED,
    PULL_NOT_ENABLED,
)
from hub.connectors.reports import REPORT_SUBJECTS
from hub.connectors.views import FeedPageView, FiledProof, FiledReport
from hub.db import INT_MAX, rfc3339
from hub.deps import CurrentHub, DbSession
from hub.permits.identity import InvalidCitizenId, citizen_id_problem, parse_citizen_id
from hub.permits.problems import PROOF_NOT_FOUND
from hub.permits.store import Proof
from hub.problems import FieldError, Problem, Text, problem_response
from hub.publishing.terms import Refusal
from hub.publishing.views import HolderRecord

router = APIRouter(prefix="/exchange/v1", tags=["Exchange"], route_class=GuardedRoute)

_REFUSALS = {"no-agreement": NO_AGREEMENT, "pull-not-enabled": PULL_NOT_ENABLED}
_NO_STORE = {"Cache-Control": "no-store"}

ProofId = Annotated[
    str, Path(min_length=1, max_length=128, description="The department's own id of the proof")
]
CITIZEN_ID: Final = r"^[0-9]{17}[0-9X]$"
"""A citizen ID as the exchange takes it: 18 characters, an upper-case X. The GB 11643 check
character, the birth date and the region are checked beyond what a pattern can say."""


def _proof_url(proof: Proof) -> str:
    return f"{router.prefix}/proofs/{quote(proof.source_proof_id, safe='')}"


def _proof_not_found() -> Problem:
    """Without the id: a path holds whatever was typed there, a citizen ID included."""
    return Problem(
        PROOF_NOT_FOUND,
        Text("本部门没有该编号的证明", "Your department filed no proof with this id"),
    )


# --- proofs ------------------------------------------------------------------------------------

STUDENT_ID: Final = "150402200109150023"
"""The made-up student of the examples: education files her enrolment, then looks her up."""
PROOF_EXAMPLES: Final[list[JsonValue]] = [
    {
        "subject": "proof.school-enrolment",
        "schema_version": None,
        "proof": {
            "proof_id": "EDU-150402-2025-000318",
            "citizen_id": STUDENT_ID,
            "kind": "school-enrolment",
            "valid_from": "2025-09-01",
            "valid_to": "2028-07-31",
            "details": {
                "months": 2,
                "since": "2025-09-01",
                "school": "赤峰学院",
                "level": "higher",
            },
        },
    },
    {
        "subject": "proof.employment",
        "schema_version": None,
        "proof": {
            "proof_id": "HRSS-150402-2025-000123",
            "citizen_id": "150421199003150029",
            "kind": "employment",
            "valid_from": "2025-01-01",
            "valid_to": "2025-12-31",
            "details": {
                "months": 14,
                "since": "2023-11-01",
                "employer": "赤峰市红山区草原乳业有限公司",
                "employer_credit_code": "91150402MA0N1234X5",
                "contract": "labour-contract",
            },
        },
    },
]


def _proof_subject(subject: str) -> str:
    if subject not in exchange.PROOF_SUBJECTS:
        raise ValueError("not a proof subject")
    return subject


ProofSubject = Annotated[
    str,
    AfterValidator(_proof_subject),
    WithJsonSchema({"type": "string", "enum": sorted(exchange.PROOF_SUBJECTS)}),
]


class ProofSubmission(BaseModel):
    """A proof document of one of the caller's `proof.*` subjects (see /schemas/v1)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": PROOF_EXAMPLES})

    subject: ProofSubject = Field(
        description="proof.employment, proof.social-insurance (hr-social-security); "
        "proof.rental-registration (housing); proof.school-enrolment (education); "
        "proof.health-service (health); proof.civil-affairs (civil-affairs)",
    )
    schema_version: int | None = Field(
        default=None,
        ge=1,
        le=INT_MAX,
        description="Version to validate against; default: the one in use",
    )
    proof: dict[str, Any] = Field(
        description="The document, valid against the subject's version in use (GET "
        "/schemas/v1/subjects/{subject}/versions/latest); its citizen_id a valid GB 11643 number"
    )


_LOCATION: Final = {"Location": {"description": "The proof's URL", "schema": {"type": "string"}}}
_PROOF_LINKS: Final = {
    name: {"operationId": operation, "parameters": {"proof_id": "$response.body#/proof_id"}}
    for name, operation in (("ReadProof", "get_proof"), ("RevokeProof", "revoke_proof"))
}


@router.post(
    "/proofs",
    status_code=201,
    summary="File a proof on record with your department (idempotent by proof_id)",
    responses={
        201: {
            "description": "Filed: the proof",
            "model": FiledProof,
            "headers": _LOCATION,
            "links": _PROOF_LINKS,
        },
        200: {
            "description": "Filed before with the same content: that proof",
            "model": FiledProof,
            "headers": _LOCATION,
            "links": _PROOF_LINKS,
        },
        403: {"description": "Your department is not the authority for this subject or kind"},
        409: {
            "description": "proof_id filed before with other content; the version is not in use "
            "or retired"
        },
        422: {
            "description": "The document breaks its schema, or its citizen ID is not a valid "
            "number; every issue has a pointer"
        },
    },
)
@requires("exchange:proofs")
def submit_proof(
    request: Request, body: ProofSubmission, session: DbSession, hub: CurrentHub
) -> JSONResponse:
    proof, new = exchange.submit_proof(
        session,
        hub.exchange,
        actor_of(request),
        principal_of(request).department,
        body.subject,
        body.schema_version,
        body.proof,
    )
    return JSONResponse(
        FiledProof.of(proof).model_dump(mode="json"),
        status_code=201 if new else 200,
        headers={"Location": _proof_url(proof)},
    )


@router.get(
    "/proofs/{proof_id:path}",
    summary="A proof your department filed and has not revoked",
    operation_id="get_proof",
    response_model=FiledProof,
    responses={
        404: {"description": "Your department filed no proof with this id"},
        410: {"description": "Your department revoked it (`revoked_at`): it no longer counts"},
    },
)
@requires("exchange:proofs")
def get_proof(
    request: Request, proof_id: ProofId, session: DbSession, hub: CurrentHub
) -> FiledProof | JSONResponse:
    department = principal_of(request).department
    try:
        proof = exchange.own_proof(session, hub.exchange, actor_of(request), department, proof_id)
    except exchange.ProofNotFound:
        raise _proof_not_found() from None
    if proof.revoked_at is not None:  # answered, not raised: the read's audit entry commits
        revoked_at = rfc3339(proof.revoked_at)
        problem = Problem(
            PROOF_REVOKED,
            Text(
                f"本部门已于 {revoked_at} 撤销该证明", f"Your department revoked it at {revoked_at}"
            ),
            extensions={"revoked_at": revoked_at},
        )
        return problem_response(request, problem)
    return FiledProof.of(proof)


@router.delete(
    "/proofs/{proof_id:path}",
    summary="Revoke a proof your department filed (it no longer counts; idempotent)",
    operation_id="revoke_proof",
    responses={404: {"description": "Your department filed no proof with this id"}},
)
@requires("exchange:proofs")
def revoke_proof(
    request: Request, proof_id: ProofId, session: DbSession, hub: CurrentHub
) -> FiledProof:
    department = principal_of(request).department
    try:
        proof = exchange.revoke_proof(
            session, hub.exchange, actor_of(request), department, proof_id
        )
    except exchange.ProofNotFound:
        raise _proof_not_found() from None
    return FiledProof.of(proof)


# --- look-ups ----------------------------------------------------------------------------------


class LookupBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "citizen_id": STUDENT_ID,
                    "purpose": "就读证明核验 / checking an enrolment, case 2025-0318",
                }
            ]
        },
    )

    citizen_id: str = Field(
        pattern=CITIZEN_ID, description="The holder's citizen ID number (GB 11643, upper-case X)"
    )
    purpose: str = Field(
        min_length=1, max_length=256, description="Why you look this person up (audited)"
    )


@router.post(
    "/lookup",
    summary="Look a holder up: the record your agreement allows, as of now",
    responses={
        200: {"model": HolderRecord, "description": "The record (Cache-Control: no-store)"},
        403: {
            "description": "No agreement in force: nothing is disclosed (the refusal is audited)"
        },
        404: {"description": "No permit for this person"},
        422: {"description": "Not a valid citizen ID number (the number is never echoed)"},
    },
)
@requires("exchange:lookup")
def look_up(
    request: Request, body: LookupBody, session: DbSession, hub: CurrentHub
) -> JSONResponse:
    try:
        citizen_id = parse_citizen_id(body.citizen_id, today=hub.clock.today())
    except InvalidCitizenId as error:
        raise citizen_id_problem(error, "/citizen_id") from None
    department = principal_of(request).department
    outcome = exchange.look_up(
        session, hub.exchange, actor_of(request), department, citizen_id, body.purpose
    )
    # Refusals are answered, not raised: the transaction must commit their audit entry.
    if isinstance(outcome, Refusal):
        problem = Problem(_REFUSALS[outcome.code], Text(outcome.zh, outcome.en))
        return problem_response(request, problem)
    if isinstance(outcome, exchange.HolderNotFound):
        problem = Problem(
            HOLDER_NOT_FOUND, Text("此人没有居住证", "This person holds no permit here")
        )
        return problem_response(request, problem)
    return JSONResponse(outcome.record, headers=_NO_STORE)


# --- the changes feed --------------------------------------------------------------------------


@router.get(
    "/feed",
    summary="The changes feed: projected holder records of subscribed events, oldest first",
    description=(
        "For departments that pull. Pass the page's `next` as `after` to continue: the cursor "
        "is opaque and stable, and moves past every event examined, sent or not. "
        "`has_more: true`: read again now; `false`: caught up, poll later. Each record is the "
        "holder record as of its event, with only the fields your agreement allows."
    ),
    responses={
        200: {"model": FeedPageView, "description": "A page (Cache-Control: no-store)"},
        400: {"description": "`after` is not a cursor the hub issued"},
        403: {"description": "Your department does not pull, or has no agreement in force"},
    },
)
@requires("exchange:feed")
def read_feed(
    request: Request,
    session: DbSession,
    hub: CurrentHub,
    after: Annotated[
        str | None,
        Query(
            pattern=f"^{exchange.CURSOR_ALPHABET}$",
            description="`next` of the previous page; absent: from the start",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=exchange.FEED_LIMIT_MAX)] = 100,
) -> JSONResponse:
    try:
        position = exchange.decode_cursor(after) if after is not None else 0
    except exchange.CursorInvalid:
        raise Problem(
            CURSOR_INVALID,
            Text("请使用上一页返回的 next 值", "Use the `next` of a page the hub returned"),
            errors=[FieldError(Text("游标无效", "not a cursor of this feed"), parameter="after")],
        ) from None
    department = principal_of(request).department
    page = exchange.read_feed(session, hub.exchange, actor_of(request), department, position, limit)
    if isinstance(page, Refusal):
        problem = Problem(_REFUSALS[page.code], Text(page.zh, page.en))
        return problem_response(request, problem)
    body = {"records": page.records, "next": page.next, "has_more": page.has_more}
    return JSONResponse(body, headers=_NO_STORE)


# --- reports by employers, property managers, agencies and landlords [CF §6-9] ----------------

REPORT_EXAMPLE: Final[JsonValue] = {
    "subject": "report.hire",
    "schema_version": None,
    "report": {
        "report_id": "HR-2026-000731",
        "person": {"citizen_id": "210102199001150018", "name": "王芳"},
        "occurred_on": "2026-10-08",
        "address": "赤峰市红山区长青路12号3栋2单元501室",
        "region": "150402",
        "workplace": "赤峰华达物流有限公司",
    },
}


def _report_subject(subject: str) -> str:
    if subject not in REPORT_SUBJECTS:
        raise ValueError("not a report subject")
    return subject


class ReportSubmission(BaseModel):
    """A hire or tenancy report of the caller's organisation (see /schemas/v1)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [REPORT_EXAMPLE]})

    subject: Annotated[
        str,
        AfterValidator(_report_subject),
        WithJsonSchema({"type": "string", "enum": sorted(REPORT_SUBJECTS)}),
    ] = Field(
        description="report.hire (employers, job agencies [CF §6, §8]); report.tenancy"
        " (property managers, letting agencies, landlords [CF §7-9])"
    )
    schema_version: int | None = Field(default=None, ge=1, le=INT_MAX)
    report: dict[str, Any] = Field(
        description="The document, valid against the subject's version in use; its region"
        " within the jurisdiction you report to"
    )


@router.post(
    "/reports",
    status_code=201,
    summary="Report a hire or a tenant to the acceptance office (idempotent by report_id)",
    description=(
        "Each must reach the office within seven working days of the hire or letting"
        " [CF §6-8], counted on the official calendar: the answer says whether it was late. A"
        " person already registered gets the report on file; one with no registration goes on"
        " the office's worklist with the day they must declare by."
    ),
    responses={
        201: {"model": FiledReport},
        200: {"model": FiledReport, "description": "Reported before with the same content"},
        403: {"description": "Your client reports for no organisation, or not this kind"},
        409: {"description": "report_id used before for another report; version not in use"},
        422: {
            "description": "The report breaks its schema, its region is outside your"
            " jurisdiction, or its citizen ID is not valid; every issue has a pointer"
        },
    },
)
@requires("reports:submit")
def submit_report(
    request: Request, body: ReportSubmission, session: DbSession, hub: CurrentHub
) -> JSONResponse:
    report, new = reports.submit_report(
        session,
        hub.report_desks,
        hub.jurisdictions,
        actor_of(request),
        body.subject,
        body.schema_version,
        body.report,
    )
    view = {
        "id": report.id,
        "report_id": report.report_id,
        "status": report.status,
        "report_due_on": report.report_due_on.isoformat() if report.report_due_on else None,
        "reported_late": report.reported_late,
        "declare_by": report.declare_by.isoformat() if report.declare_by else None,
    }
    return JSONResponse(view, status_code=201 if new else 200)
