"""Staff sign-in delegated to an OpenID Connect provider (the provincial identity platform in a
real deployment): the hub's authorization server sends the person there instead of asking
for a password, and takes back who they are and what they may do.

The hub is a confidential client of the provider (authorization-code flow, PKCE S256, a nonce
bound to the ID token). The ID token is checked against the provider's published keys, issuer,
audience, expiry and nonce; the claims the hub maps (department, roles) may come in it or from
the UserInfo endpoint, whose `sub` must be the ID token's. Roles are mapped from the provider's
claim values (`roles` in the configuration; unmapped values give nothing), and a person with
no hub role, or a department the hub does not know, is refused.

Each sign-in writes the person's account as the provider describes it (display name,
department, roles), with no password, so it cannot be used for a local sign-in; an account
of that name that is local is never taken over, and one disabled at the hub stays refused.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlmodel import Session

from hub.audit import Actor, AuditLog
from hub.auth.domain import Department, Role
from hub.auth.signin import CONSOLE_PURPOSE, SIGN_IN
from hub.auth.staff import NAME, Member, member_of
from hub.auth.store import StaffAccount
from hub.settings import DelegationConfig
from hub.text import Text

DISCOVERY: Final = "/.well-known/openid-configuration"
DISCOVERY_SECONDS: Final = 3_600.0
LEEWAY_SECONDS: Final = 60
SIGNING_ALGORITHMS: Final = ["RS256", "PS256", "ES256", "EdDSA"]


class DelegationRefused(Exception):
    """The provider's answer does not sign this person in; `text` says why, for the person."""

    def __init__(self, text: Text, outcome: str) -> None:
        super().__init__(text.en)
        self.text, self.outcome = text, outcome


class ProviderUnavailable(Exception):
    """The provider did not answer as a provider should (down, or not speaking OIDC)."""


@dataclass(frozen=True)
class Identity:
    subject: str
    name: str
    display_name: str
    department: Department
    roles: tuple[Role, ...]


@dataclass
class Delegation:
    """The provider as the hub's authorization server talks to it; one per process."""

    config: DelegationConfig
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))
    _metadata: dict[str, Any] | None = None
    _fetched_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> Text:
        """What the sign-in page calls the provider."""
        return Text(self.config.name_zh, self.config.name_en)

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (kept an hour); its issuer must be the one set."""
        with self._lock:
            if self._metadata is None or time.monotonic() - self._fetched_at > DISCOVERY_SECONDS:
                found = self._get(self.config.issuer.rstrip("/") + DISCOVERY)
                if found.get("issuer") != self.config.issuer:
                    raise ProviderUnavailable("the provider names another issuer")
                self._metadata, self._fetched_at = found, time.monotonic()
            return self._metadata

    def authorization_url(self, redirect_uri: str, state: str, nonce: str, challenge: str) -> str:
        endpoint = str(self.metadata()["authorization_endpoint"])
        query = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.config.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return str(httpx.URL(endpoint, params=query))

    def identity(self, code: str, verifier: str, redirect_uri: str, nonce: str) -> Identity:
        """Who the code says signed in; DelegationRefused or ProviderUnavailable."""
        metadata = self.metadata()
        try:
            answer = self.http.post(
                str(metadata["token_endpoint"]),
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": verifier,
                },
                auth=(self.config.client_id, self._secret()),
            )
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"token endpoint: {error}") from None
        if answer.status_code != 200:
            raise DelegationRefused(
                Text(
                    "认证平台未接受本次登录，请重新登录",
                    "The identity platform refused; sign in again",
                ),
                f"token-{answer.status_code}",
            )
        tokens = answer.json()
        claims = self._id_token_claims(str(tokens.get("id_token", "")), nonce)
        userinfo = metadata.get("userinfo_endpoint")
        if userinfo and "access_token" in tokens:
            more = self._get(str(userinfo), tokens["access_token"])
            if more.get("sub") != claims["sub"]:
                raise DelegationRefused(_MISMATCH, "userinfo-subject")
            claims = {**more, **claims}
        return self._mapped(claims)

    def _id_token_claims(self, token: str, nonce: str) -> dict[str, Any]:
        keys = KeySet.import_key_set(self._get(str(self.metadata()["jwks_uri"])))  # type: ignore[arg-type]
        try:
            decoded = jwt.decode(token, keys, algorithms=SIGNING_ALGORITHMS)
            registry = jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": self.config.issuer},
                aud={"essential": True, "value": self.config.client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError) as error:
            raise DelegationRefused(_MISMATCH, f"id-token: {type(error).__name__}") from None
        return dict(decoded.claims)

    def _mapped(self, claims: dict[str, Any]) -> Identity:
        name = str(claims.get(self.config.username_claim, ""))
        if NAME.fullmatch(name) is None:
            raise DelegationRefused(
                Text(
                    "认证平台提供的账号名不能用于本平台",
                    "The platform's account name cannot be used here",
                ),
                "username",
            )
        department = str(claims.get(self.config.department_claim, ""))
        if department not in {known.value for known in Department}:
            raise DelegationRefused(
                Text("认证平台未提供本平台的部门", "The platform gives no department of the hub"),
                "department",
            )
        given = claims.get(self.config.roles_claim, [])
        values = [given] if isinstance(given, str) else [str(v) for v in given or []]
        mapping = self.config.roles or {role.value: role.value for role in Role}
        roles = tuple(sorted({Role(mapping[v]) for v in values if v in mapping}))
        if not roles:
            raise DelegationRefused(
                Text(
                    "您在本平台没有角色，请联系管理员",
                    "You have no role at the hub; ask an administrator",
                ),
                "no-role",
            )
        display = str(claims.get("name") or name)[:128]
        return Identity(str(claims["sub"]), name, display, Department(department), roles)

    def _get(self, url: str, bearer: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        try:
            answer = self.http.get(url, headers=headers)
            answer.raise_for_status()
            found = answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ProviderUnavailable(f"{url}: {error}") from None
        if not isinstance(found, dict):
            raise ProviderUnavailable(f"{url}: not a JSON object")
        return found

    def _secret(self) -> str:
        secret = os.environ.get(self.config.client_secret_env)
        if not secret:
            raise ProviderUnavailable(f"{self.config.client_secret_env} is not set")
        return secret


_MISMATCH: Final = Text(
    "认证平台的登录凭据无法核验，请重新登录",
    "The identity platform's sign-in could not be verified; sign in again",
)


def refused(audit: AuditLog, session: Session, outcome: str, now: datetime) -> None:
    """A delegated sign-in that named nobody the hub admits, audited."""
    actor = Actor("staff:(identity platform)", "")
    event = actor.did(SIGN_IN, f"refused: {outcome}"[:64], None, CONSOLE_PURPOSE)
    audit.record(session, event, now)


def admit(
    session: Session, audit: AuditLog, issuer: str, identity: Identity, now: datetime
) -> Member | DelegationRefused:
    """The person's account as the provider describes them, written now; audited either way.
    A local account of that name, or one disabled at the hub, is refused: returned, not
    raised, so the refusal's audit entry is committed."""
    row = session.get(StaffAccount, identity.name, with_for_update=True)
    subject = f"staff:{identity.name}"
    actor = Actor(subject, identity.department.value)
    if row is not None and (row.identity_provider != issuer or row.disabled_at is not None):
        outcome = "disabled" if row.disabled_at is not None else "local-account"
        event = actor.did(SIGN_IN, f"refused: {outcome}", subject, CONSOLE_PURPOSE)
        audit.record(session, event, now)
        return DelegationRefused(
            Text("该账号不能通过认证平台登录", "This account cannot sign in through the platform"),
            outcome,
        )
    if row is None:
        row = StaffAccount(
            name=identity.name,
            display_name="",
            department="",
            roles="",
            password_hash="",  # no local password: argon2 refuses an empty hash
            created_at=now,
            changed_at=now,
        )
    row.display_name = identity.display_name
    row.department = identity.department.value
    row.roles = " ".join(role.value for role in identity.roles)
    row.identity_provider = issuer
    row.must_change_password = False
    row.changed_at = now
    session.add(row)
    audit.record(session, actor.did(SIGN_IN, "delegated", subject, CONSOLE_PURPOSE), now)
    return member_of(row)
