"""The Authlib authorization server, wired for Starlette requests and this hub's clients.

Grants: client_credentials for systems; authorization_code with PKCE for staff signing in
through the console (hub.auth.codes). Client authentication: client_secret_basic and
private_key_jwt (RFC 7523); none for the console, a public client, at the token endpoint only.
Tokens: RFC 9068 JWTs signed ES256 with the active key's kid. Introspection (RFC 7662) and
revocation (RFC 7009) accept the two authenticating methods.

A failed client authentication raises ClientNotAuthenticated with the reason the audit records;
what the caller is told never depends on whether the client id it gave exists.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authlib.common.security import is_secure_transport
from authlib.oauth2 import AuthorizationServer, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import InvalidClientError, grants
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy.engine import Engine
from sqlmodel import select

from hub.audit import AuditEvent, AuditLog
from hub.auth.codes import PublicClient, S256Only, StaffCodeGrant, console_client
from hub.auth.domain import (
    CLIENT_ASSERTION_ALGORITHMS,
    SCOPES,
    TOKEN_ALGORITHM,
    TOKEN_TYPE,
    AuthFailure,
    AuthMethod,
    ClientKind,
    TokenFault,
    TokenRefused,
    basic_credentials,
)
from hub.auth.failures import FailedAuthentications
from hub.auth.staff import Member
from hub.auth.state import AuthState, RegisteredClient, secret_matches
from hub.auth.store import RevokedToken, claim_assertion
from hub.auth.tokens import TokenVerifier
from hub.clock import Clock
from hub.db import unit_of_work

log = logging.getLogger(__name__)
# Authlib logs each token it issues, whole, at DEBUG ("Issue token ... to ..."): a bearer
# credential must not reach a log at any level, so its loggers say no more than INFO.
logging.getLogger("authlib").setLevel(logging.INFO)
CLIENT_METHODS = [AuthMethod.CLIENT_SECRET_BASIC.value, AuthMethod.PRIVATE_KEY_JWT.value]
GRANT_CLIENT_CREDENTIALS = grants.ClientCredentialsGrant.GRANT_TYPE


@dataclass(frozen=True)
class FormRequest:
    """What Authlib needs of an HTTP request, taken from Starlette by the router."""

    method: str
    url: str
    headers: Mapping[str, str]  # case-insensitive (Starlette's Headers)
    form: dict[str, str]


class HubOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, request: FormRequest) -> None:
        super().__init__(request.method, request.url, headers=request.headers)
        self._form = request.form
        self.payload = BasicOAuth2Payload(request.form)

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


NOT_AUTHENTICATED = "The client could not be authenticated (client_secret_basic or private_key_jwt)"
ASSERTION_NOT_VERIFIED = "The client assertion does not verify with the keys registered for its sub"


class ClientNotAuthenticated(InvalidClientError):  # type: ignore[misc]
    """invalid_client, with the reason the audit records (never shown to the caller)."""

    status_code = 401

    def __init__(self, reason: AuthFailure, description: str = NOT_AUTHENTICATED) -> None:
        super().__init__(description=description, status_code=401)
        self.reason = reason


class AssertionReplayed(ClientNotAuthenticated):
    """A client assertion whose jti was used before; its own problem type, same OAuth error."""

    def __init__(self) -> None:
        super().__init__(
            AuthFailure.REPLAYED_ASSERTION, "the client assertion (jti) was used before"
        )


@dataclass(frozen=True)
class OAuthFailure:
    error: OAuth2Error


@dataclass(frozen=True)
class OAuthSuccess:
    status: int
    body: dict[str, Any]
    headers: list[tuple[str, str]]


OAuthOutcome = OAuthSuccess | OAuthFailure


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_METHODS


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    """RFC 7523 client authentication, checked against the hub's clock, with replay refusal."""

    CLIENT_AUTH_METHOD = AuthMethod.PRIVATE_KEY_JWT.value

    def __init__(self, server: HubAuthorizationServer) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.server = server

    def __call__(self, query_client: Any, request: HubOAuth2Request) -> RegisteredClient | None:
        """Authlib's check, with an unknown `sub` refused as a key that does not verify, so
        the answer does not tell which client ids exist, and every refusal given its reason."""

        def known(client_id: str) -> RegisteredClient:
            client = query_client(client_id)
            if not isinstance(client, RegisteredClient):  # unknown, or the console (no keys)
                raise ClientNotAuthenticated(AuthFailure.UNKNOWN_CLIENT, ASSERTION_NOT_VERIFIED)
            return client

        try:
            client: RegisteredClient | None = super().__call__(known, request)
        except ClientNotAuthenticated:
            raise
        except InvalidClientError as error:
            raise ClientNotAuthenticated(AuthFailure.BAD_ASSERTION, error.description) from None
        return client

    def get_audiences(self) -> list[str]:
        return [self.server.issuer, self.server.token_endpoint]

    def resolve_client_public_key(self, client: RegisteredClient) -> Any:
        """A client_secret_basic client has no keys: its assertion cannot verify (not a 500)."""
        if client.auth_method is not AuthMethod.PRIVATE_KEY_JWT:
            raise ClientNotAuthenticated(AuthFailure.WRONG_METHOD, ASSERTION_NOT_VERIFIED)
        return client.public_keys()

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=list(CLIENT_ASSERTION_ALGORITHMS))
        except JoseError:
            raise ClientNotAuthenticated(
                AuthFailure.BAD_ASSERTION, ASSERTION_NOT_VERIFIED
            ) from None
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: dict[str, Any]) -> None:
        now = self.server.clock.epoch_seconds()
        problem = _assertion_problem(claims, self.get_audiences(), now, self.leeway)
        problem = problem or _assertion_lifetime_problem(claims, now, self.server.assertion_max_age)
        if problem:
            raise ClientNotAuthenticated(AuthFailure.BAD_ASSERTION, problem)
        if not self.validate_jti(claims, claims["jti"]):
            raise AssertionReplayed()

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        now = self.server.clock.epoch_seconds()
        with unit_of_work(self.server.engine) as session:
            return claim_assertion(session, claims["sub"], str(jti), int(claims["exp"]), now)


def _assertion_problem(claims: dict[str, Any], audiences: list[str], now: int, leeway: int) -> str:
    for name in ("iss", "sub", "aud", "exp", "jti"):
        if name not in claims:
            return f"the client assertion lacks the claim {name!r}"
    if claims["iss"] != claims["sub"]:
        return "iss and sub of the client assertion must both be the client_id"
    asked = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if not set(asked) & set(audiences):
        return "the client assertion's aud must be the issuer or the token endpoint"
    if not isinstance(claims["exp"], int) or now >= claims["exp"] + leeway:
        return "the client assertion has expired"
    return ""


def _assertion_lifetime_problem(claims: dict[str, Any], now: int, max_age: int) -> str:
    """A long-lived assertion would have to be remembered for long to refuse its replay."""
    if claims["exp"] - now > max_age:
        return f"the client assertion must expire within {max_age} seconds"
    return ""


class HubTokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    def __init__(self, server: HubAuthorizationServer) -> None:
        super().__init__(issuer=server.issuer, alg=TOKEN_ALGORITHM, expires_generator=server.ttl)
        self.server = server

    def access_token_generator(
        self, client: RegisteredClient | PublicClient, grant_type: str, user: Any, scope: str
    ) -> str:
        """A client's own token, or, for a member of staff signed in, one that names them:
        their department, and the scopes of their roles as the code recorded them."""
        now = self.server.clock.epoch_seconds()
        key = self.server.state.signing_key()
        if isinstance(user, Member):
            subject, department, kind = f"staff:{user.name}", user.department, ClientKind.STAFF
        else:
            assert isinstance(client, RegisteredClient)  # client credentials: only these
            subject, department, kind = client.client_id, client.department, client.kind
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.server.audience,
            "client_id": client.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + self.server.ttl(client, grant_type),
            "jti": uuid.uuid4().hex,
            "scope": scope,
            "department": department.value,
            "client_kind": kind.value,
        }
        header = {"alg": TOKEN_ALGORITHM, "typ": TOKEN_TYPE, "kid": key.kid}
        return jwt.encode(header, claims, key.private)


@dataclass(frozen=True)
class VerifiedToken:
    """A hub token as Authlib's introspection and revocation endpoints handle it."""

    claims: dict[str, Any]
    fault: TokenFault | None

    def check_client(self, client: RegisteredClient) -> bool:
        return bool(self.claims.get("client_id") == client.client_id)

    def is_expired(self) -> bool:
        return self.fault in (TokenFault.EXPIRED, TokenFault.NOT_YET_VALID)

    def is_revoked(self) -> bool:
        """Any other refusal (revoked, wrong audience...) also makes the token inactive."""
        return self.fault is not None and not self.is_expired()


class TokenLookup:
    """Tokens are self-contained JWTs: "looking one up" is verifying its signature."""

    server: HubAuthorizationServer
    SUPPORTED_TOKEN_TYPES = ("access_token",)
    CLIENT_AUTH_METHODS = CLIENT_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> VerifiedToken | None:
        verifier = self.server.verifier
        try:
            claims = verifier.signed_claims(token_string)
        except TokenRefused:
            return None
        try:
            verifier.verify_claims(claims)
        except TokenRefused as refusal:
            return VerifiedToken(claims, refusal.fault)
        return VerifiedToken(claims, None)


class Introspection(TokenLookup, IntrospectionEndpoint):  # type: ignore[misc]
    def check_permission(
        self, token: VerifiedToken, client: RegisteredClient, request: Any
    ) -> bool:
        return token.check_client(client) or "auth:introspect" in client.scopes

    def introspect_token(self, token: VerifiedToken) -> dict[str, Any]:
        return {"active": True, "token_type": "Bearer", **token.claims}


class Revocation(TokenLookup, RevocationEndpoint):  # type: ignore[misc]
    def revoke_token(self, token: VerifiedToken, request: HubOAuth2Request) -> None:
        self.server.revoke(token.claims, request.client)


class HubAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(
        self,
        *,
        state: AuthState,
        verifier: TokenVerifier,
        engine: Engine,
        audit: AuditLog,
        clock: Clock,
        issuer: str,
        audience: str,
        token_ttl: int,
        staff_token_ttl: int,
        assertion_max_age: int,
    ) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.state = state
        self.verifier = verifier
        self.engine = engine
        self.audit = audit
        self.clock = clock
        self.issuer = issuer.rstrip("/")
        self.token_endpoint = f"{self.issuer}/oauth/token"
        self.audience = audience
        self.token_ttl = token_ttl
        self.staff_token_ttl = staff_token_ttl
        self.assertion_max_age = assertion_max_age
        self.secure_transport = is_secure_transport(self.token_endpoint)
        self.console = console_client(self.issuer)
        self.failures = FailedAuthentications(state, engine, audit, clock)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(StaffCodeGrant, [S256Only()])
        basic = AuthMethod.CLIENT_SECRET_BASIC.value
        self.register_client_auth_method(basic, self.authenticate_secret_basic)
        self.register_client_auth_method(AuthMethod.PRIVATE_KEY_JWT.value, PrivateKeyJWT(self))
        self.register_token_generator("default", HubTokenGenerator(self))
        self.register_endpoint(Introspection)
        self.register_endpoint(Revocation)

    def query_client(self, client_id: str) -> RegisteredClient | PublicClient | None:
        if client_id == self.console.client_id:
            return self.console
        return self.state.client(client_id)

    def ttl(self, client: RegisteredClient | PublicClient, grant_type: str) -> int:
        """A staff token lasts a working session; a system's, minutes."""
        return self.staff_token_ttl if grant_type == "authorization_code" else self.token_ttl

    def authenticate_secret_basic(
        self, query_client: Any, request: HubOAuth2Request
    ) -> RegisteredClient | None:
        return self.client_by_secret(request.headers.get("authorization", ""))

    def client_by_secret(self, authorization: str) -> RegisteredClient | None:
        """client_secret_basic, replacing Authlib's: an unknown client id, a wrong secret and
        a client that authenticates with keys get the same refusal after the same work (one
        keyed hash), and the reason for the audit. None when no Basic credentials were sent."""
        credentials = basic_credentials(authorization)
        if credentials is None or not credentials[0]:
            return None
        client_id, secret = credentials
        client = self.query_client(client_id)
        if not isinstance(client, RegisteredClient):  # unknown, or the console (no secret)
            secret_matches(self.state.secret_key, secret or "", None)
            raise ClientNotAuthenticated(AuthFailure.UNKNOWN_CLIENT)
        if not client.check_client_secret(secret or ""):
            wrong_method = client.auth_method is not AuthMethod.CLIENT_SECRET_BASIC
            raise ClientNotAuthenticated(
                AuthFailure.WRONG_METHOD if wrong_method else AuthFailure.WRONG_SECRET
            )
        return client

    def issue_for_secret(
        self, authorization: str, form: Mapping[str, str]
    ) -> dict[str, Any] | None:
        """The token of the common request, client_credentials with client_secret_basic, or
        None for any other request and for any refusal.

        It makes the same checks as Authlib's pipeline and the same token, without building
        Authlib's request, grant and hooks around them: those were half of what a token cost
        (bench/RESULTS.md). None sends the request down Authlib's path, which refuses it with
        the reason, records the failure and throttles: every refusal comes from one place,
        after the same work whatever the reason."""
        if form.get("grant_type") != GRANT_CLIENT_CREDENTIALS or not self.secure_transport:
            return None
        try:
            client = self.client_by_secret(authorization)
            if client is None or client.auth_method is not AuthMethod.CLIENT_SECRET_BASIC:
                return None
            asked = form.get("scope")
            self.validate_requested_scope(asked)
            scope = client.get_allowed_scope(asked)
        except OAuth2Error:
            return None
        token: dict[str, Any] = self.generate_token(
            GRANT_CLIENT_CREDENTIALS, client, scope=scope, include_refresh_token=False
        )
        return token

    def save_token(self, token: dict[str, Any], request: HubOAuth2Request) -> None:
        """Nothing to store: the JWT carries everything, and revocation records only jtis."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        log.debug("oauth signal %s", name)

    def create_oauth2_request(self, request: FormRequest) -> HubOAuth2Request:
        return HubOAuth2Request(request)

    def handle_response(
        self, status: int, body: dict[str, Any], headers: list[tuple[str, str]]
    ) -> OAuthSuccess:
        return OAuthSuccess(status, body, headers)

    def handle_error_response(self, request: Any, error: OAuth2Error) -> OAuthFailure:
        return OAuthFailure(error)

    def revoke(self, claims: dict[str, Any], client: RegisteredClient) -> None:
        """Record the revocation and its audit entry in one transaction, then apply it here."""
        jti, expires = str(claims["jti"]), int(claims["exp"])
        now = self.clock.now()
        with unit_of_work(self.engine) as session:
            if session.exec(select(RevokedToken).where(RevokedToken.jti == jti)).first() is None:
                session.add(
                    RevokedToken(
                        jti=jti, client_id=client.client_id, expires_at=expires, revoked_at=now
                    )
                )
            event = AuditEvent(
                actor_client_id=client.client_id,
                actor_department=client.department.value,
                action="token.revoke",
                subject=f"token:{jti}",
                outcome="revoked",
            )
            self.audit.record(session, event, now)
        self.state.revoke_locally(jti, expires)
