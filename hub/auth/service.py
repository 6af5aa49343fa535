"""Use cases of client and key administration, each one transaction with its audit entry."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlmodel import Session
from typing_extensions import Unpack

from hub.audit import AuditEvent, AuditLog
from hub.auth import keys as signing
from hub.auth.codes import CONSOLE_CLIENT_ID
from hub.auth.domain import (
    AccessPolicy,
    AuthMethod,
    ClientKind,
    Department,
    ReporterRole,
    jurisdiction_list,
    unknown_scopes,
    valid_credit_code,
)
from hub.auth.state import hash_client_secret
from hub.auth.store import OAuthClient, bump_generation

ADMIN_ACTOR = "hub-cli"


class ClientSpecError(ValueError):
    """A client registration that cannot be accepted, phrased for the operator."""


@dataclass(frozen=True)
class Registrar:
    """What registering a client needs: the key its secret is hashed with, the access policy."""

    secret_key: bytes
    policy: AccessPolicy
    jurisdictions: frozenset[str] = frozenset()  # the codes the hub serves


@dataclass(frozen=True)
class NewClient:
    client_id: str
    secret: str | None


def parse_jwks(text: str) -> dict[str, Any]:
    """Public keys of a private_key_jwt client: a JWKS of EC P-256 or RSA public keys."""
    try:
        document = json.loads(text)
        key_set = KeySet.import_key_set(document)
    except (ValueError, TypeError, KeyError, JoseError) as exc:
        raise ClientSpecError(f"the JWKS is not a valid JSON Web Key Set ({exc})") from None
    if not key_set.keys:
        raise ClientSpecError("the JWKS holds no keys")
    if any(key.is_private for key in key_set.keys):
        raise ClientSpecError("the JWKS holds a private key; register public keys only")
    return {"keys": [key.as_dict(private=False) for key in key_set.keys]}


@dataclass(frozen=True)
class Organisation:
    """The one organisation a reporter client reports for [CF §6-9]."""

    code: str  # unified social credit code, GB 32100
    name: str
    role: ReporterRole


def _check_organisation(kind: ClientKind, organisation: Organisation | None, served: str) -> None:
    if kind is not ClientKind.REPORTER:
        if organisation is not None:
            raise ClientSpecError("only a reporter client reports for an organisation")
        return
    if organisation is None:
        raise ClientSpecError("a reporter client names its organisation (code, name, role)")
    if not valid_credit_code(organisation.code):
        raise ClientSpecError(
            f"{organisation.code!r} is not a unified social credit code (GB 32100: 18"
            " characters, the last its check character)"
        )
    name = organisation.name.strip()
    if not name or len(name) > 128 or not name.isprintable():
        raise ClientSpecError("an organisation's name is 1 to 128 printable characters")
    if len(served.split()) != 1:
        raise ClientSpecError("a reporter reports to the acceptance office of one jurisdiction")


class ClientSpec(TypedDict):
    """What `hub clients add` is told about a new client."""

    department: str
    scopes: list[str]
    kind: NotRequired[ClientKind]  # DEPARTMENT unless given
    jwks: NotRequired[dict[str, Any] | None]  # private_key_jwt; without, a secret
    client_id: NotRequired[str | None]  # generated unless given
    jurisdictions: NotRequired[list[str]]  # where an acceptance office finds permits
    organisation: NotRequired[Organisation | None]  # a reporter's


def add_client(
    session: Session,
    audit: AuditLog,
    registrar: Registrar,
    now: datetime,
    **spec: Unpack[ClientSpec],
) -> NewClient:
    """Register a client, holding only scopes the access policy allows its department and kind;
    with no JWKS it gets a secret, shown once and stored only hashed."""
    department, scopes, jwks = spec["department"], spec["scopes"], spec.get("jwks")
    kind = spec.get("kind", ClientKind.DEPARTMENT)
    try:
        owner = Department(department)
    except ValueError:
        known = ", ".join(d.value for d in Department)
        raise ClientSpecError(f"unknown department {department!r}; one of: {known}") from None
    unknown = unknown_scopes(scopes)
    if unknown or not scopes:
        raise ClientSpecError(f"unknown or missing scopes: {', '.join(unknown) or '(none)'}")
    refused = registrar.policy.refused(kind, owner, scopes)
    if refused:
        raise ClientSpecError(registrar.policy.refusal(kind, owner, refused))
    try:
        served = jurisdiction_list(spec.get("jurisdictions", []), registrar.jurisdictions)
    except ValueError as exc:
        raise ClientSpecError(str(exc)) from None
    organisation = spec.get("organisation")
    _check_organisation(kind, organisation, served)
    prefix = "reporter" if organisation else owner.value
    client_id = spec.get("client_id") or f"{prefix}-{secrets.token_hex(6)}"
    if session.get(OAuthClient, client_id) is not None or client_id == CONSOLE_CLIENT_ID:
        raise ClientSpecError(f"a client {client_id!r} exists already")
    secret = None if jwks else secrets.token_urlsafe(32)
    session.add(
        OAuthClient(
            client_id=client_id,
            department=owner.value,
            kind=kind.value,
            scopes=" ".join(sorted(set(scopes))),
            auth_method=(AuthMethod.PRIVATE_KEY_JWT if jwks else AuthMethod.CLIENT_SECRET_BASIC),
            secret_hash=hash_client_secret(registrar.secret_key, secret) if secret else None,
            jwks=json.dumps(jwks) if jwks else None,
            created_at=now,
            jurisdictions=served,
            organisation_code=organisation.code if organisation else None,
            organisation_name=organisation.name.strip() if organisation else None,
            reporter_role=organisation.role.value if organisation else None,
        )
    )
    bump_generation(session)
    audit.record(
        session,
        AuditEvent(ADMIN_ACTOR, "client.add", "created", subject=f"client:{client_id}"),
        now,
    )
    return NewClient(client_id, secret)


def rotate_signing_key(session: Session, audit: AuditLog, password: bytes, now: datetime) -> str:
    key = signing.rotate(session, now, password)
    audit.record(session, AuditEvent(ADMIN_ACTOR, "key.rotate", "rotated", subject=key.kid), now)
    return key.kid
