"""Who may call the hub, and what a verified access token says about the caller.

Pure rules: no framework, no storage, no clock reads (times are passed in).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

from hub.text import Text


class Department(StrEnum):
    """The departments that exchange data through the hub (DOMAIN.md, "Who is involved")."""

    HR_SOCIAL_SECURITY = "hr-social-security"
    HOUSING = "housing"
    EDUCATION = "education"
    HEALTH = "health"
    CIVIL_AFFAIRS = "civil-affairs"
    PUBLIC_SECURITY = "public-security"


DEPARTMENT_NAMES: Mapping[Department, Text] = {
    Department.HR_SOCIAL_SECURITY: Text(
        "人力资源和社会保障部门", "Human resources and social security"
    ),
    Department.HOUSING: Text("住房和城乡建设部门", "Housing and urban-rural development"),
    Department.EDUCATION: Text("教育部门", "Education"),
    Department.HEALTH: Text("卫生健康部门", "Health"),
    Department.CIVIL_AFFAIRS: Text("民政部门", "Civil affairs"),
    Department.PUBLIC_SECURITY: Text("公安机关", "Public security"),
}
"""How a person reads a department's name (an access report, the console)."""


class ClientKind(StrEnum):
    """A department's back-office system, one service-window terminal of that department, or
    a member of staff signed in through the console (whose token names the person)."""

    DEPARTMENT = "department"
    WINDOW_TERMINAL = "window-terminal"
    STAFF = "staff"
    REPORTER = "reporter"
    """An employer, property manager, agency or landlord reporting hires and tenants to the
    acceptance office [CF §6-9]: one organisation, owned by public security."""


class AuthMethod(StrEnum):
    CLIENT_SECRET_BASIC = "client_secret_basic"
    PRIVATE_KEY_JWT = "private_key_jwt"


# Every scope the hub knows; a client cannot be granted a scope that guards nothing.
SCOPES: Mapping[str, str] = {
    "registry:read": "read permits and registrations (acceptance offices)",
    "registry:write": "register, apply, issue, endorse, change permits (acceptance offices)",
    "schemas:read": "read exchange schemas and one's own data-sharing agreements",
    "schemas:admin": "manage schemas and agreements (data-governance staff)",
    "exchange:feed": "pull the changes feed of projected holder records",
    "exchange:proofs": "submit and revoke department proofs",
    "exchange:lookup": "look a holder up on demand, under an agreement",
    "exchange:admin": "inspect and replay dead-lettered deliveries",
    "verification:tap": "verify a tapped card at a service window",
    "auth:introspect": "introspect tokens issued to other clients",
    "audit:read": "search the audit log: who saw what, when and why (auditors)",
    "reports:submit": "report hires and tenants to the acceptance office (employers, landlords)",
}


class ReporterRole(StrEnum):
    """Who owes a report to the acceptance office [CF §6-9]."""

    EMPLOYER = "employer"
    PROPERTY_MANAGER = "property-manager"
    AGENCY = "agency"
    LANDLORD = "landlord"


_CREDIT_CODE_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code_check_character(first17: str) -> str:
    """The GB 32100 check character (MOD 31) over a credit code's first 17 characters."""
    total = sum(
        _CREDIT_CODE_CHARACTERS.index(c) * w
        for c, w in zip(first17, _CREDIT_CODE_WEIGHTS, strict=True)
    )
    return _CREDIT_CODE_CHARACTERS[(31 - total % 31) % 31]


def valid_credit_code(code: str) -> bool:
    """A unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters of its
    alphabet, the last a check character over the first 17 (MOD 31)."""
    if len(code) != 18 or any(c not in _CREDIT_CODE_CHARACTERS for c in code):
        return False
    return credit_code_check_character(code[:17]) == code[17]


class Role(StrEnum):
    """What a member of staff does at the hub; their scopes follow from their roles."""

    GOVERNANCE = "governance"
    AUDITOR = "auditor"
    EXCHANGE_OPERATOR = "exchange-operator"
    WINDOW_CLERK = "window-clerk"
    ACCEPTANCE_OFFICE = "acceptance-office"
    ADMIN = "admin"


ROLE_SCOPES: Mapping[Role, frozenset[str]] = {
    Role.GOVERNANCE: frozenset({"schemas:read", "schemas:admin"}),
    Role.AUDITOR: frozenset({"audit:read"}),
    Role.EXCHANGE_OPERATOR: frozenset({"exchange:admin"}),
    Role.WINDOW_CLERK: frozenset({"verification:tap"}),
    Role.ACCEPTANCE_OFFICE: frozenset({"registry:read", "registry:write"}),
    Role.ADMIN: frozenset({"schemas:read", "schemas:admin", "exchange:admin", "audit:read"}),
}
"""The scopes a member of staff's token carries: the union over their roles."""

SECOND_FACTOR_ROLES: frozenset[Role] = frozenset({Role.GOVERNANCE, Role.ADMIN})
"""Roles that change what every department receives or who may act: a local account with one
of them signs in with a TOTP code besides the password."""


def staff_scopes(roles: Iterable[Role]) -> frozenset[str]:
    return frozenset().union(*(ROLE_SCOPES[role] for role in roles))


TOKEN_ALGORITHM = "ES256"
TOKEN_TYPE = "at+jwt"
CLIENT_ASSERTION_ALGORITHMS = ("ES256", "RS256")


def unknown_scopes(scopes: Iterable[str]) -> list[str]:
    return sorted(set(scopes) - set(SCOPES))


def jurisdiction_list(given: Iterable[str], known: Iterable[str]) -> str:
    """The jurisdictions assigned to an acceptance office, as stored (sorted, space-separated);
    ValueError, phrased for the operator, naming any the hub does not serve."""
    chosen, served = set(given), set(known)
    unknown = sorted(chosen - served)
    if unknown:
        raise ValueError(
            f"unknown jurisdiction {', '.join(unknown)}; one of: {', '.join(sorted(served))}"
        )
    return " ".join(sorted(chosen))


@dataclass(frozen=True)
class FailureLimits:
    """How many failed client authentications are tolerated before further attempts get a 429.

    Counted per client id (as given, known or not) and per source address, each in a fixed
    window that opens with its first failure; once a count reaches its limit, every attempt
    naming that client id, or coming from that address, is refused until the window ends.
    """

    window_seconds: int
    per_client: int
    per_address: int


@dataclass(frozen=True)
class AccessPolicy:
    """Which scopes a client of each kind and department may hold (config/access.toml), and
    how failed client authentications are throttled.

    A department or kind the policy does not name may hold nothing: the table is an allow-list.
    """

    scopes: Mapping[ClientKind, Mapping[Department, frozenset[str]]]
    failed_authentication: FailureLimits
    staff_sign_in: FailureLimits  # per_client counts per account name
    source: str  # the file, named in refusals so an operator knows where the rule lives

    def allowed(self, kind: ClientKind, department: Department) -> frozenset[str]:
        return self.scopes.get(kind, {}).get(department, frozenset())

    def refused(self, kind: ClientKind, department: Department, scopes: Iterable[str]) -> list[str]:
        """The scopes of `scopes` this kind of client of this department may not hold."""
        return sorted(set(scopes) - self.allowed(kind, department))

    def refusal(self, kind: ClientKind, department: Department, refused: Iterable[str]) -> str:
        """One sentence for the operator: what is refused and what would be allowed."""
        allowed = " ".join(sorted(self.allowed(kind, department))) or "none"
        return (
            f"{self.source} does not allow a {kind.value} client of {department.value}"
            f" the scopes {' '.join(refused)} (it allows: {allowed})"
        )


class AuthFailure(StrEnum):
    """Why a client authentication at /oauth/token, /introspect or /revoke failed (audited)."""

    NO_CREDENTIALS = "no-credentials"
    MALFORMED_CREDENTIALS = "malformed-credentials"
    UNKNOWN_CLIENT = "unknown-client"
    WRONG_SECRET = "wrong-secret"
    WRONG_METHOD = "wrong-method"
    BAD_ASSERTION = "bad-assertion"
    REPLAYED_ASSERTION = "replayed-assertion"


SHOWN_CLIENT_ID_LENGTH = 64
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\ud7ff\ue000-\ufffd]")
_CITIZEN_ID_SHAPED = re.compile(r"\d{17}[\dXx]")


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """The client id and secret of an `Authorization: Basic` header (RFC 6749 §2.3.1: each
    form-urlencoded before base64), or None when the header is not Basic or not base64 of
    UTF-8. Authlib's reader raises on `Basic ` with nothing after it; this never raises."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = text.partition(":")
    return unquote(client_id), unquote(secret)


def shown_client_id(given: str) -> str:
    """A client id as a caller gave it, fit for the log and the audit: at most 64 characters,
    control characters replaced (no forged log lines), and anything shaped like a citizen ID
    number masked, since an unauthenticated caller can type anything into the field."""
    printable = _UNPRINTABLE.sub("?", given[: SHOWN_CLIENT_ID_LENGTH + 18])
    masked = _CITIZEN_ID_SHAPED.sub("[id-number]", printable)
    if len(masked) > SHOWN_CLIENT_ID_LENGTH:
        return masked[: SHOWN_CLIENT_ID_LENGTH - 1] + "…"
    return masked


@dataclass(frozen=True)
class Principal:
    """The verified caller of a request, as the access token describes it."""

    client_id: str
    department: Department
    kind: ClientKind
    scopes: frozenset[str]
    token_id: str
    expires_at: int

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        """`client_id` is the token's subject: the client itself for client credentials, the
        person ("staff:<name>") for a console sign-in, as the audit log names the actor."""
        return cls(
            client_id=str(claims["sub"]),
            department=Department(claims["department"]),
            kind=ClientKind(claims["client_kind"]),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
        )


class TokenFault(StrEnum):
    """Why a presented access token is refused; each maps to one problem type."""

    MISSING = "missing"
    MALFORMED = "malformed"
    ALGORITHM = "algorithm"
    UNKNOWN_KEY = "unknown-key"
    SIGNATURE = "signature"
    ISSUER = "issuer"
    AUDIENCE = "audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    REVOKED = "revoked"
    CLAIMS = "claims"


class TokenRefused(Exception):
    def __init__(self, fault: TokenFault, description: str) -> None:
        super().__init__(description)
        self.fault = fault
        self.description = description


REQUIRED_CLAIMS = (
    "iss",
    "aud",
    "exp",
    "iat",
    "jti",
    "sub",
    "client_id",
    "department",
    "client_kind",
)


def check_claims(
    claims: Mapping[str, Any], *, issuer: str, audience: str, now: int, leeway: int
) -> Principal:
    """Check the registered claims of RFC 9068 against this hub; raise TokenRefused on failure."""
    missing = [name for name in REQUIRED_CLAIMS if name not in claims]
    if missing:
        raise TokenRefused(TokenFault.CLAIMS, f"missing claims: {', '.join(missing)}")
    if claims["iss"] != issuer:
        raise TokenRefused(TokenFault.ISSUER, "the token was issued by another server")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if audience not in audiences:
        raise TokenRefused(TokenFault.AUDIENCE, "the token is meant for another audience")
    check_lifetime(claims, now=now, leeway=leeway)
    try:
        return Principal.from_claims(claims)
    except (ValueError, TypeError) as exc:
        raise TokenRefused(TokenFault.CLAIMS, f"invalid claims: {exc}") from None


def check_lifetime(claims: Mapping[str, Any], *, now: int, leeway: int) -> None:
    """exp and nbf (or iat when nbf is absent), allowing `leeway` seconds of clock skew."""
    expires = claims.get("exp")
    not_before = claims.get("nbf", claims.get("iat"))
    if not isinstance(expires, int) or not isinstance(not_before, int):
        raise TokenRefused(TokenFault.CLAIMS, "exp, nbf and iat must be integers")
    if now >= expires + leeway:
        raise TokenRefused(TokenFault.EXPIRED, "the token has expired")
    if now + leeway < not_before:
        raise TokenRefused(TokenFault.NOT_YET_VALID, "the token is not valid yet")
