"""Tables of the authorization server and the queries on them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col, select

JURISDICTIONS = "space-separated codes of the jurisdictions an acceptance office serves"


class OAuthClient(SQLModel, table=True):
    __tablename__ = "oauth_client"

    client_id: str = Field(primary_key=True, max_length=128)
    department: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    scopes: str = Field(max_length=1024, description="space-separated")
    auth_method: str = Field(max_length=32)
    secret_hash: str | None = Field(default=None, max_length=64)
    jwks: str | None = Field(default=None, sa_type=sa.Text, description="public keys, JSON")
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    disabled_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    jurisdictions: str = Field(default="", max_length=512, description=JURISDICTIONS)
    # A reporter's organisation [CF §6-9]: its unified social credit code, name and duty.
    organisation_code: str | None = Field(default=None, max_length=18)
    organisation_name: str | None = Field(default=None, max_length=128)
    reporter_role: str | None = Field(default=None, max_length=32)


class StaffAccount(SQLModel, table=True):
    """A person who signs in to the console: never an OAuth client of their own."""

    __tablename__ = "staff_account"

    name: str = Field(primary_key=True, max_length=64)
    display_name: str = Field(max_length=128)
    department: str = Field(max_length=64)
    roles: str = Field(max_length=256, description="space-separated")
    password_hash: str = Field(max_length=256, description="argon2id, PHC string")
    must_change_password: bool = Field(default=True)
    totp_sealed: bytes | None = Field(
        default=None, sa_type=sa.LargeBinary, description="the TOTP secret, AES-GCM"
    )
    totp_last_step: int | None = Field(
        default=None, sa_type=sa.BigInteger, description="a TOTP code is accepted once"
    )
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    changed_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    disabled_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    identity_provider: str | None = Field(
        default=None, max_length=256, description="the OIDC issuer of a delegated account"
    )
    jurisdictions: str = Field(default="", max_length=512, description=JURISDICTIONS)


class AuthorizationCode(SQLModel, table=True):
    """An authorization code (RFC 6749 §4.1.2) until it is exchanged or expires: kept as a hash,
    bound to its client, redirect URI and PKCE challenge (RFC 7636)."""

    __tablename__ = "authorization_code"

    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=128)
    staff_name: str = Field(max_length=64)
    redirect_uri: str = Field(max_length=512)
    scope: str = Field(max_length=1024)
    code_challenge: str = Field(max_length=128)
    code_challenge_method: str = Field(max_length=16)
    auth_time: int = Field(sa_type=sa.BigInteger, description="epoch seconds")
    expires_at: int = Field(sa_type=sa.BigInteger, index=True, description="epoch seconds")

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> None:
        return None

    def get_auth_time(self) -> int:
        return self.auth_time


class StaffSession(SQLModel, table=True):
    """A console session: one per staff access token, so that it can end before the token
    expires (idle timeout, sign-out) and an administrator can see who is signed in."""

    __tablename__ = "staff_session"

    token_id: str = Field(primary_key=True, max_length=64)
    staff_name: str = Field(max_length=64, index=True)
    address: str = Field(max_length=64)
    started_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    last_seen_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    expires_at: int = Field(sa_type=sa.BigInteger, description="the token's exp")
    ended_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    end_reason: str | None = Field(default=None, max_length=32)


class SigningKey(SQLModel, table=True):
    __tablename__ = "signing_key"

    kid: str = Field(primary_key=True, max_length=64)
    alg: str = Field(max_length=16)
    private_pem: bytes = Field(sa_type=sa.LargeBinary, description="PKCS#8, encrypted")
    public_jwk: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    retired_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class RevokedToken(SQLModel, table=True):
    """Revoked access tokens until they expire; the id is the cursor processes poll."""

    __tablename__ = "revoked_token"

    id: int | None = Field(default=None, primary_key=True)
    jti: str = Field(max_length=64, unique=True)
    client_id: str = Field(max_length=128)
    expires_at: int = Field(sa_type=sa.BigInteger, description="the token's exp, epoch seconds")
    revoked_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class UsedAssertion(SQLModel, table=True):
    """Client-assertion ids already seen, kept until the assertion would have expired."""

    __tablename__ = "used_client_assertion"

    client_id: str = Field(primary_key=True, max_length=128)
    jti: str = Field(primary_key=True, max_length=256)
    expires_at: int = Field(sa_type=sa.BigInteger, index=True)


class AuthGeneration(SQLModel, table=True):
    """One counter bumped with every change to clients or keys, so each process knows when
    to reload them without reading the tables on every request."""

    __tablename__ = "auth_generation"

    id: int = Field(default=1, primary_key=True)
    value: int = 0


def bump_generation(session: Session) -> None:
    session.execute(
        sa.update(AuthGeneration)
        .where(col(AuthGeneration.id) == 1)
        .values(value=AuthGeneration.value + 1)
    )


def read_generation(session: Session) -> int:
    return session.exec(select(AuthGeneration.value).where(AuthGeneration.id == 1)).one()


def revocations_after(session: Session, cursor: int, now: int) -> list[RevokedToken]:
    query = (
        select(RevokedToken)
        .where(col(RevokedToken.id) > cursor, col(RevokedToken.expires_at) > now)
        .order_by(col(RevokedToken.id))
    )
    return list(session.exec(query).all())


def last_revocation_id(session: Session) -> int:
    last = session.exec(select(sa.func.max(RevokedToken.id))).one()
    return int(last or 0)


def claim_assertion(session: Session, client_id: str, jti: str, expires_at: int, now: int) -> bool:
    """Record an assertion id; False if it was seen before (a replay).

    The primary key makes the insert the arbiter, so two processes racing with the same
    assertion cannot both win.
    """
    session.execute(sa.delete(UsedAssertion).where(col(UsedAssertion.expires_at) < now))
    exists = session.get(UsedAssertion, (client_id, jti))
    if exists is not None:
        return False
    try:
        with session.begin_nested():
            session.add(UsedAssertion(client_id=client_id, jti=jti, expires_at=expires_at))
    except sa.exc.IntegrityError:
        return False
    return True


class ClientAuthFailure(SQLModel, table=True):
    """Failed client authentications counted in a fixed window, per "client:<id as given>" and
    per "address:<source>", shared by every hub process. Rows outlive their window only until
    the next failure anywhere deletes them."""

    __tablename__ = "client_auth_failure"

    key: str = Field(primary_key=True, max_length=128)
    failures: int
    window_ends: int = Field(sa_type=sa.BigInteger, index=True, description="epoch seconds")
    blocked_until: int = Field(
        sa_type=sa.BigInteger, index=True, description="window_ends once failures reach the limit"
    )


_FAILURES: sa.Table = ClientAuthFailure.__table__  # type: ignore[attr-defined]


def count_failure(session: Session, key: str, limit: int, window: int, now: int) -> int:
    """Count one failure for `key`; the end of its block if the count reached `limit`, else 0.

    One INSERT ... ON CONFLICT DO UPDATE (on both databases): two processes counting the same
    key at once both land, and a window that has ended starts again at one.
    """
    session.execute(sa.delete(_FAILURES).where(_FAILURES.c.window_ends <= now))
    ends = now + window
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_FAILURES)
    current = _FAILURES.c.window_ends > now
    failures = sa.case((current, _FAILURES.c.failures + 1), else_=1)
    window_ends = sa.case((current, _FAILURES.c.window_ends), else_=ends)
    statement = (
        insert.values(
            key=key, failures=1, window_ends=ends, blocked_until=ends if limit <= 1 else 0
        )
        .on_conflict_do_update(
            index_elements=[_FAILURES.c.key],
            set_={
                "failures": failures,
                "window_ends": window_ends,
                "blocked_until": sa.case((failures >= limit, window_ends), else_=0),
            },
        )
        .returning(_FAILURES.c.blocked_until)
    )
    return int(session.execute(statement).scalar_one())


def blocked_keys(session: Session, now: int) -> dict[str, int]:
    """Keys whose failures reached their limit in a window not yet over, with its end."""
    query = select(_FAILURES.c.key, _FAILURES.c.blocked_until).where(
        _FAILURES.c.blocked_until > now
    )
    return {key: int(until) for key, until in session.execute(query)}


STAFF_PREFIX = "staff:"
"""How a member of staff is named as the subject of their token and in the audit log."""


def jurisdictions_of(session: Session, caller: str) -> frozenset[str]:
    """The jurisdictions a caller (a client id, or "staff:<name>") serves as an acceptance
    office; none for an unknown or disabled caller. Read per request rather than carried in
    the token, so that a change applies at once."""
    if caller.startswith(STAFF_PREFIX):
        query = select(StaffAccount.jurisdictions).where(
            col(StaffAccount.name) == caller.removeprefix(STAFF_PREFIX),
            col(StaffAccount.disabled_at).is_(None),
        )
    else:
        query = select(OAuthClient.jurisdictions).where(
            col(OAuthClient.client_id) == caller, col(OAuthClient.disabled_at).is_(None)
        )
    return frozenset((session.exec(query).first() or "").split())
