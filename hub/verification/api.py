"""Routes of verification at the service window under /verification/v1, for window agents.

Thin: parse, authorise (scope `verification:tap`; the department is the token's), call
`hub.verification.service` or `.offline`, shape the answer. A denial is a 200 answer with
reason codes, never an error: only a malformed request is a problem (422, pointing at the
field), and an unknown service code is one. Answers that disclose holder data are
`Cache-Control: no-store`; reason titles follow `Accept-Language` like every problem.
"""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from hub.auth.domain import Department
from hub.auth.guard import GuardedRoute, principal_of, public, requires
from hub.card import issuing
from hub.db import Rfc3339, rfc3339
from hub.deps import CurrentHub, DbSession, StandardBase64, in_unit_of_work
from hub.openapi import ClosedView
from hub.ops import metrics
from hub.permits.domain import PermitState
from hub.problems import (
    VALIDATION_FAILED,
    FieldError,
    Language,
    Problem,
    Text,
    negotiate_language,
)
from hub.publishing.views import HolderRecord
from hub.verification import domain, offline, service, store
from hub.verification.domain import REASON_TITLES, Decision, Reason, Service
from hub.verification.problems import OFFLINE_CONFLICT

router = APIRouter(prefix="/verification/v1", tags=["Verification"], route_class=GuardedRoute)

_NO_STORE = {"Cache-Control": "no-store"}
_SCOPE = "verification:tap"
MAX_RECORD_BYTES = 24_576  # EF.RECORD: a photo of at most 16 KiB and the data groups
MAX_SIGNATURE_BYTES = 72  # a DER ECDSA P-256 signature is at most 72 bytes
SERVICE_CODE: Final = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"
"""The shape of a catalogue code (lower-case words joined by hyphens)."""
_BASE64URL: Final = "[A-Za-z0-9_-]"
_JWS: Final = rf"^{_BASE64URL}+\.{_BASE64URL}+\.{_BASE64URL}+$"
"""A compact JWS (RFC 7515 §7.1): header, payload and signature, base64url, joined by dots."""


RecordBytes = Annotated[bytes, StandardBase64(max_bytes=MAX_RECORD_BYTES)]
SignatureBytes = Annotated[bytes, StandardBase64(max_bytes=MAX_SIGNATURE_BYTES)]


def _language(request: Request) -> Language:
    default: Language = request.app.state.default_language
    return negotiate_language(request.headers.get("accept-language"), default)


# --- challenges --------------------------------------------------------------------------------


class ChallengeAnswer(ClosedView):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "challenge_id": "6f1c2a47-9b7e-4d0a-a3c5-1e8f2b9d4c61",
                    "challenge": "q3Vv0Vh8l6H1n0m8mJ4Q2u3d9QZr2i6yW0o5b7cX1aE",
                    "expires_at": "2026-10-13T02:01:00+00:00",
                }
            ]
        }
    )

    challenge_id: uuid.UUID = Field(description="Send it with the tap")
    challenge: str = Field(
        pattern=r"^[A-Za-z0-9_-]{43}$", description="32 random bytes, base64url without padding"
    )
    expires_at: Rfc3339 = Field(description="A challenge is good once, for 60 s")


@router.post(
    "/challenges",
    status_code=201,
    summary="A one-time challenge for the card to sign at the next tap",
    response_model=ChallengeAnswer,
    responses={
        201: {
            "description": "The challenge: send its id with the tap it is for",
            "links": {
                "Tap": {
                    "operationId": "tap",
                    "requestBody": {"challenge_id": "$response.body#/challenge_id"},
                }
            },
        }
    },
)
@requires(_SCOPE)
async def new_challenge(request: Request, hub: CurrentHub) -> JSONResponse:
    issued = service.issue_challenge(hub.verification, principal_of(request))
    body = {
        "challenge_id": str(issued.id),
        "challenge": base64.urlsafe_b64encode(issued.nonce).decode().rstrip("="),
        "expires_at": rfc3339(issued.expires_at),
    }
    return JSONResponse(body, status_code=201, headers=_NO_STORE)


# --- taps --------------------------------------------------------------------------------------


class TapBody(BaseModel):
    """What the window agent read from the card, and the service the holder asks for."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "challenge_id": "6f1c2a47-9b7e-4d0a-a3c5-1e8f2b9d4c61",
                    "service": "compulsory-education",
                    "record": "YYIBNoAG546L6IqzMDEwMDAwMA==",
                    "card_signature": "MEUCIQD3a0Nn",
                }
            ]
        },
    )

    challenge_id: uuid.UUID = Field(description="From POST /challenges, by this client")
    service: str = Field(
        pattern=SERVICE_CODE, max_length=64, description="A service code of GET /catalogue"
    )
    record: RecordBytes = Field(
        description="The card's EF.RECORD, as READ BINARY returned it (base64)"
    )
    card_signature: SignatureBytes = Field(
        description="INTERNAL AUTHENTICATE's answer to the challenge: DER ECDSA (base64)"
    )


class ReasonAnswer(ClosedView):
    code: Reason
    title: str = Field(description="In the language of Accept-Language")


class TapAnswer(ClosedView):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tap_id": "0d57cf97-3cbe-4a03-a208-a764075f9d2c",
                    "decision": "grant",
                    "reasons": [],
                    "service": "compulsory-education",
                    "department": "education",
                    "holder": {
                        "$schema": "urn:permit-hub:schema:holder-record:1",
                        "schema_version": 1,
                        "event": {
                            "id": "tap-0d57cf97-3cbe-4a03-a208-a764075f9d2c",
                            "type": "tap",
                            "at": "2026-10-13T02:00:00.412000+00:00",
                        },
                        "permit": {
                            "id": "3b0e5c1e-7d4f-4a8e-9c2b-6f1d0a9e8b7c",
                            "state": "valid",
                            "expires_on": "2027-10-12",
                        },
                        "holder": {"name": "乌云其其格", "current_region": "150402"},
                    },
                    "decided_at": "2026-10-13T02:00:00.412000+00:00",
                    "offline": False,
                },
                {
                    "tap_id": "5a2d9e40-1f4b-4c8e-9d0a-7b6c5e4f3a21",
                    "decision": "deny",
                    "reasons": [{"code": "card-reported-lost", "title": "该卡已挂失"}],
                    "service": "housing-fund",
                    "department": "housing",
                    "holder": None,
                    "decided_at": "2026-10-13T02:00:03.118000+00:00",
                    "offline": False,
                },
            ]
        }
    )

    tap_id: uuid.UUID
    decision: Decision
    reasons: list[ReasonAnswer] = Field(description="Why it was denied; empty on a grant")
    service: str = Field(pattern=SERVICE_CODE)
    department: Department = Field(description="The service's responsible department")
    holder: HolderRecord | None = Field(
        description="On a grant, the holder record your department's agreement allows (null "
        "without an agreement in force); null on a denial"
    )
    decided_at: Rfc3339
    offline: Literal[False] = Field(description="Decided by the hub, on line")


@router.post(
    "/taps",
    summary="Decide a tap: grant or deny the service, with reasons and the agreed fields",
    operation_id="tap",
    response_model=TapAnswer,
    responses={
        422: {"description": "A malformed body, or a service code the catalogue does not list"},
    },
)
@requires(_SCOPE)
async def tap(request: Request, body: TapBody, hub: CurrentHub) -> JSONResponse:
    asked = service.Tap(body.challenge_id, body.service, body.record, body.card_signature)
    caller = principal_of(request)
    try:
        decided = await in_unit_of_work(
            hub, lambda session: service.tap(session, hub.verification, caller, asked)
        )
    except service.UnknownService:
        raise Problem(
            VALIDATION_FAILED,
            errors=[
                FieldError(
                    Text("服务目录中没有该服务", "not a service of the catalogue"), "/service"
                )
            ],
        ) from None
    metrics.TAPS.labels(decided.service.department.value, decided.decision.value).inc()
    for reason in decided.reasons:
        metrics.TAP_REASONS.labels(reason.value).inc()
    language = _language(request)
    answer = {
        "tap_id": decided.tap_id,
        "decision": decided.decision.value,
        "reasons": [
            {"code": reason.value, "title": REASON_TITLES[reason].in_(language)}
            for reason in decided.reasons
        ],
        "service": decided.service.code,
        "department": decided.service.department.value,
        "holder": decided.holder,
        "decided_at": rfc3339(decided.decided_at),
        "offline": False,
    }
    spoken = {"Content-Language": language, "Vary": "Accept-Language"}
    return JSONResponse(answer, headers={**_NO_STORE, **spoken})


# --- what an agent needs off line --------------------------------------------------------------


@router.get(
    "/status-list",
    summary="The signed list of cards to refuse, for deciding while the hub is unreachable",
    description=(
        "A compact JWS (`application/jose`), ES256 by the hub's active card-issuing key: "
        "verify it with GET /issuing-keys, by the `kid` in its header (`typ` "
        f"`{domain.STATUS_LIST_TYPE}`). Payload: `iss`, `issued_at`, `next_update` (do not "
        "decide by it after this) and `cards`, each refused serial with the reason code to "
        "show: card-reported-lost, card-replaced, card-cancelled, permit-suspended, "
        "permit-cancelled."
    ),
    response_class=Response,
    responses={
        200: {"content": {"application/jose": {"schema": {"type": "string", "pattern": _JWS}}}}
    },
)
@requires(_SCOPE)
def status_list(request: Request, session: DbSession, hub: CurrentHub) -> Response:
    token = offline.status_list(session, hub.offline, principal_of(request))
    return Response(token, media_type="application/jose", headers=_NO_STORE)


class IssuingKey(ClosedView):
    """A card-issuing public key: EC P-256 for ES256 signatures (RFC 7517, RFC 7518 §6.2)."""

    kty: Literal["EC"]
    crv: Literal["P-256"]
    x: str = Field(pattern=rf"^{_BASE64URL}{{43}}$")
    y: str = Field(pattern=rf"^{_BASE64URL}{{43}}$")
    kid: str = Field(min_length=1)
    alg: Literal["ES256"]
    use: Literal["sig"]


class IssuingKeys(ClosedView):
    """A JWK Set (RFC 7517 §5), newest key first."""

    keys: list[IssuingKey]


class JwkSetResponse(JSONResponse):
    media_type = "application/jwk-set+json"


@router.get(
    "/issuing-keys",
    summary="The hub's card-issuing public keys (JWKS): they sign card records and the status list",
    response_class=JwkSetResponse,
    response_model=IssuingKeys,
)
@public
def issuing_keys(session: DbSession) -> JwkSetResponse:
    return JwkSetResponse(issuing.issuing_jwks(session), headers={"Cache-Control": "max-age=300"})


class Bilingual(ClosedView):
    """A name or sentence in both languages the hub speaks."""

    zh: str = Field(alias="zh-CN")
    en: str


class ServiceEntry(ClosedView):
    code: str = Field(pattern=SERVICE_CODE)
    name: Bilingual
    department: Department = Field(description="Only its windows grant the service")
    permit_states: list[PermitState] = Field(description="The permit states it accepts")
    minimum_residence_months: int | None = Field(
        ge=1, description="Continuous residence it needs; null: none stated"
    )
    jurisdictions: list[str] | None = Field(description="Where it is offered; null: everywhere")
    conditions: list[Bilingual] = Field(description="What the window checks itself")
    cite: str = Field(description="Where it is written")


class CatalogueAnswer(ClosedView):
    services: list[ServiceEntry]


def _service_view(entry: Service) -> dict[str, Any]:
    return {
        "code": entry.code,
        "name": {"zh-CN": entry.name.zh, "en": entry.name.en},
        "department": entry.department.value,
        "permit_states": sorted(state.value for state in entry.permit_states),
        "minimum_residence_months": entry.minimum_residence_months,
        "jurisdictions": sorted(entry.jurisdictions) if entry.jurisdictions else None,
        "conditions": [{"zh-CN": text.zh, "en": text.en} for text in entry.conditions],
        "cite": entry.cite,
    }


@router.get(
    "/catalogue",
    summary="The services a permit unlocks, with what each requires (config/catalogue.toml)",
    response_model=CatalogueAnswer,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "services": [
                            {
                                "code": "household-registration",
                                "name": {
                                    "zh-CN": "申请在居住地落户",
                                    "en": "Household registration",
                                },
                                "department": "public-security",
                                "permit_states": ["valid"],
                                "minimum_residence_months": 36,
                                "jurisdictions": ["chifeng"],
                                "conditions": [{"zh-CN": "…", "en": "…"}],
                                "cite": "[CF §22]",
                            }
                        ]
                    }
                }
            }
        }
    },
)
@requires(_SCOPE)
def catalogue(hub: CurrentHub) -> dict[str, Any]:
    return {"services": [_service_view(entry) for entry in hub.catalogue.services.values()]}


OfflineDecision = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "description": "A tap-decision document, valid against the version in use; what the "
            "hub asks of a report besides is stated here",
            "properties": {
                "decision_id": {"type": "string", "format": "uuid"},
                "card_serial": {"type": "string", "minLength": 1, "maxLength": store.SERIAL_MAX},
                "service_code": {"type": "string", "pattern": SERVICE_CODE},
                "department": {"enum": [department.value for department in Department]},
                "offline": {"const": True},
            },
        }
    ),
]


class OfflineReportBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "decisions": [
                        {
                            "decision_id": "0d57cf97-3cbe-4a03-a208-a764075f9d2c",
                            "card_serial": "CF26A1B2C3D4E5F6",
                            "service_code": "compulsory-education",
                            "department": "education",
                            "decision": "grant",
                            "reasons": [],
                            "offline": True,
                            "decided_at": "2026-10-13T10:02:45+08:00",
                        }
                    ]
                }
            ]
        },
    )

    decisions: list[OfflineDecision] = Field(
        min_length=1,
        max_length=500,
        description="tap-decision documents (GET /schemas/v1/subjects/tap-decision/versions/"
        "latest), each with its own decision_id; `disclosed` is not kept",
    )


class ReportedDecision(ClosedView):
    decision_id: str = Field(json_schema_extra={"format": "uuid"})
    status: Literal["stored", "repeat"] = Field(description="repeat: reported before, the same")


class OfflineReportAnswer(ClosedView):
    decisions: list[ReportedDecision] = Field(description="In the order of the report")


@router.post(
    "/offline-decisions",
    summary="Report decisions made while the hub was unreachable (idempotent by decision_id)",
    response_model=OfflineReportAnswer,
    responses={
        409: {
            "description": "A decision_id was reported before with other content, or no "
            "tap-decision version is in use"
        },
        422: {"description": "A document breaks tap-decision or names an unknown service"},
    },
)
@requires(_SCOPE)
def report_offline(
    request: Request, body: OfflineReportBody, session: DbSession, hub: CurrentHub
) -> dict[str, Any]:
    try:
        fresh = offline.report(session, hub.offline, principal_of(request), body.decisions)
    except offline.ReportInvalid as invalid:
        raise Problem(
            VALIDATION_FAILED,
            errors=[issue.field_error(f"/decisions/{index}") for index, issue in invalid.issues],
            extensions={"subject": invalid.subject, "schema_version": invalid.version},
        ) from None
    except offline.ReportConflict as conflict:
        raise Problem(
            OFFLINE_CONFLICT,
            errors=[
                FieldError(
                    Text("编号已以其他内容报送", "reported before with other content"),
                    pointer=f"/decisions/{index}/decision_id",
                )
                for index in conflict.indices
            ],
        ) from None
    return {
        "decisions": [
            {"decision_id": document["decision_id"], "status": "stored" if new else "repeat"}
            for document, new in zip(body.decisions, fresh, strict=True)
        ]
    }
