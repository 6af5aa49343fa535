"""The authorization-code grant (RFC 6749 §4.1) with PKCE (RFC 7636), by which staff sign in.

The console is a public client of the hub's own authorization server, like any other OAuth
client but with no secret: it proves it is the party that started a sign-in with the code
verifier of an S256 challenge (plain challenges are refused, as OAuth 2.1 does). A code lives a
minute, is kept only as a hash, is bound to its client, redirect URI and challenge, and is
used once. The token it buys names the member of staff (`sub` = "staff:<name>") and carries the
scopes of their roles as they are when the code is exchanged: an account disabled in between
gets nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from authlib.oauth2.rfc6749 import InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from sqlalchemy import delete
from sqlmodel import Session

from hub.auth.domain import Department
from hub.auth.staff import Member, member_of
from hub.auth.store import AuthorizationCode, StaffAccount
from hub.db import unit_of_work

if TYPE_CHECKING:
    from hub.auth.server import HubAuthorizationServer, HubOAuth2Request

_CODES = AuthorizationCode.__table__  # type: ignore[attr-defined]
CONSOLE_CLIENT_ID: Final = "console"
CALLBACK_PATH: Final = "/console/callback"
CODE_LIFETIME_SECONDS: Final = 60
NO_CLIENT_AUTHENTICATION: Final = "none"
PUBLIC_CLIENT_METHODS: Final = [NO_CLIENT_AUTHENTICATION]
S256: Final = ["S256"]


@dataclass(frozen=True)
class PublicClient:
    """A client with no secret (the console), for the authorization-code grant only."""

    client_id: str
    redirect_uri: str
    department: Department = Department.PUBLIC_SECURITY

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact match (RFC 9700 §4.1.3): no prefix, no pattern."""
        return redirect_uri == self.redirect_uri

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == NO_CLIENT_AUTHENTICATION and endpoint == "token"

    def check_client_secret(self, secret: str) -> bool:
        return False

    def get_allowed_scope(self, scope: str | None) -> str:
        """What a member of staff may do follows from their roles, not from what the client
        asks: the code records the scopes of the person's roles (`StaffCodeGrant`), and the
        token carries those as they are."""
        return scope or ""


def console_client(issuer: str) -> PublicClient:
    return PublicClient(CONSOLE_CLIENT_ID, issuer + CALLBACK_PATH)


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE required on every authorization request, with S256 only."""

    SUPPORTED_CODE_CHALLENGE_METHOD = S256
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def __init__(self) -> None:
        super().__init__(required=True)

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge' (PKCE is required)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class StaffCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """Authlib's grant over the `authorization_code` table; the user is a `Member`."""

    TOKEN_ENDPOINT_AUTH_METHODS = PUBLIC_CLIENT_METHODS
    server: HubAuthorizationServer
    request: HubOAuth2Request

    def save_authorization_code(self, code: str, request: HubOAuth2Request) -> None:
        member: Member = request.user
        now = self.server.clock.epoch_seconds()
        row = AuthorizationCode(
            code_hash=code_hash(code),
            client_id=request.client.client_id,
            staff_name=member.name,
            redirect_uri=request.payload.redirect_uri or request.client.get_default_redirect_uri(),
            scope=" ".join(sorted(member.scopes)),
            code_challenge=request.payload.data["code_challenge"],
            code_challenge_method="S256",
            auth_time=now,
            expires_at=now + CODE_LIFETIME_SECONDS,
        )
        with unit_of_work(self.server.engine) as session:
            session.execute(delete(_CODES).where(_CODES.c.expires_at <= now))
            session.add(row)

    def query_authorization_code(self, code: str, client: PublicClient) -> AuthorizationCode | None:
        """The code, once: it is deleted as it is read, so a replay finds nothing."""
        now = self.server.clock.epoch_seconds()
        hashed = code_hash(code)
        with unit_of_work(self.server.engine) as session:
            row = session.get(AuthorizationCode, hashed)
            if row is None:
                return None
            session.expunge(row)
            spent = session.execute(delete(_CODES).where(_CODES.c.code_hash == hashed))
            if spent.rowcount != 1:  # type: ignore[attr-defined]  # spent elsewhere just now
                return None
        if row.client_id != client.client_id or row.expires_at <= now:
            return None
        return row

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Deleted already, when it was read."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Member | None:
        with Session(self.server.engine) as session:
            row = session.get(StaffAccount, authorization_code.staff_name)
            if row is None or row.disabled_at is not None:
                return None
            return member_of(row)
