"""Each process's in-memory view of clients, signing keys, revocations and throttled callers.

Neither the guard nor the token endpoint reads the database per request, so every process
keeps this snapshot and refreshes it every `revocation_refresh_seconds` with three small
queries: the auth generation counter (bumped by any client or key change), the revocations
newer than its cursor and the client ids and addresses blocked after failed authentications.
A revocation or a block is therefore effective at once in the process that took it and within
one refresh interval in every other process.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidScopeError
from joserfc.jwk import ECKey, KeySet
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.auth import keys as signing
from hub.auth.domain import AccessPolicy, AuthMethod, ClientKind, Department
from hub.auth.store import (
    OAuthClient,
    SigningKey,
    blocked_keys,
    last_revocation_id,
    read_generation,
    revocations_after,
)
from hub.clock import Clock

log = logging.getLogger(__name__)


def hash_client_secret(key: bytes, secret: str) -> str:
    """Client secrets are 256-bit random strings, so a keyed hash suffices (no slow KDF):
    a stolen table reveals nothing usable without the master secret."""
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


_NO_SECRET = "-" * 64  # not hex: no hash ever equals it


def secret_matches(key: bytes, secret: str, secret_hash: str | None) -> bool:
    """The hash is computed even when there is nothing to match (an unknown client id, a
    client with keys instead of a secret), so those refusals take as long as a wrong secret."""
    return hmac.compare_digest(hash_client_secret(key, secret), secret_hash or _NO_SECRET)


@dataclass(frozen=True)
class RegisteredClient:
    """A client as Authlib's ClientMixin protocol expects it."""

    client_id: str
    department: Department
    kind: ClientKind
    scopes: frozenset[str]
    auth_method: AuthMethod
    secret_hash: str | None
    jwks: dict[str, Any] | None
    secret_key: bytes

    def get_client_id(self) -> str:
        return self.client_id

    def get_allowed_scope(self, scope: str | None) -> str:
        """All of the client's scopes when none are asked; invalid_scope when any asked scope
        is not the client's, rather than silently issuing less than was asked, or when the
        access policy has left it none."""
        if not scope:
            if not self.scopes:
                raise InvalidScopeError(description="the access policy allows this client none")
            return " ".join(sorted(self.scopes))
        asked = scope.split()
        refused = sorted(set(asked) - self.scopes)
        if refused:
            raise InvalidScopeError(description=f"this client may not hold: {' '.join(refused)}")
        return " ".join(asked)

    def check_client_secret(self, secret: str) -> bool:
        return secret_matches(self.secret_key, secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.auth_method.value

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def public_keys(self) -> KeySet:
        return KeySet.import_key_set(self.jwks or {"keys": []})  # type: ignore[arg-type]


class AuthState:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        policy: AccessPolicy,
        *,
        key_password: bytes,
        secret_key: bytes,
        token_ttl: int,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.policy = policy
        self.key_password = key_password
        self.secret_key = secret_key
        self.token_ttl = token_ttl
        self.clients: dict[str, RegisteredClient] = {}
        self._loaded: list[signing.LoadedKey] = []
        self.keys: list[signing.LoadedKey] = []
        self.public_keys: dict[str, ECKey] = {}
        self.revoked: dict[str, int] = {}
        self.blocked: dict[str, int] = {}  # throttle key -> end of its block, epoch seconds
        self._generation = -1
        self._cursor = 0
        self._lock = threading.Lock()
        self._last_refresh = 0.0

    def to_client(self, row: OAuthClient) -> RegisteredClient:
        """The client as tokens are issued to it: its registered scopes that the access policy
        still allows (defence in depth: `hub clients add` checked them against the policy of
        its day, which may since have narrowed)."""
        department, kind = Department(row.department), ClientKind(row.kind)
        registered = frozenset(row.scopes.split())
        withdrawn = self.policy.refused(kind, department, registered)
        if withdrawn:
            log.warning(
                "client %s holds scopes the access policy no longer allows (%s); its tokens"
                " leave them out",
                row.client_id,
                " ".join(withdrawn),
            )
        return RegisteredClient(
            client_id=row.client_id,
            department=department,
            kind=kind,
            scopes=registered - set(withdrawn),
            auth_method=AuthMethod(row.auth_method),
            secret_hash=row.secret_hash,
            jwks=json.loads(row.jwks) if row.jwks else None,
            secret_key=self.secret_key,
        )

    def refresh(self) -> None:
        """Bring the snapshot up to date; cheap when nothing changed."""
        with self._lock, Session(self.engine) as session:
            now = self.clock.epoch_seconds()
            generation = read_generation(session)
            if generation != self._generation:
                self._reload(session)
                self._generation = generation
            self._publish()
            fresh = revocations_after(session, self._cursor, now)
            if fresh:
                revoked = {jti: exp for jti, exp in self.revoked.items() if exp > now}
                revoked.update({row.jti: row.expires_at for row in fresh})
                self.revoked = revoked
                self._cursor = max(row.id or 0 for row in fresh)
            elif self._cursor == 0:
                self._cursor = last_revocation_id(session)
            self.blocked = blocked_keys(session, now)
            self._last_refresh = time.monotonic()

    def _reload(self, session: Session) -> None:
        clients = session.exec(select(OAuthClient).where(col(OAuthClient.disabled_at).is_(None)))
        self.clients = {row.client_id: self.to_client(row) for row in clients}
        keys = session.exec(select(SigningKey))
        self._loaded = [signing.load_key(row, self.key_password) for row in keys]

    def _publish(self) -> None:
        """Retired keys drop out once their last token has expired, even with no change."""
        keys = signing.published(self._loaded, self.clock.now(), self.token_ttl)
        if [key.kid for key in keys] != [key.kid for key in self.keys]:
            self.keys = keys
            self.public_keys = {key.kid: ECKey.import_key(key.public_jwk) for key in keys}

    def client(self, client_id: str) -> RegisteredClient | None:
        """A client from the snapshot; one added since the last refresh is read directly."""
        found = self.clients.get(client_id)
        if found is None:
            with Session(self.engine) as session:
                row = session.get(OAuthClient, client_id)
                if row is not None and row.disabled_at is None:
                    found = self.to_client(row)
        return found

    def public_key(self, kid: str) -> ECKey | None:
        """A verification key; an unknown kid refreshes at most once a second (a key rotated
        in another process), so a flood of forged kids cannot turn into database load."""
        key = self.public_keys.get(kid)
        if key is None and time.monotonic() - self._last_refresh > 1.0:
            self.refresh()
            key = self.public_keys.get(kid)
        return key

    def signing_key(self) -> signing.LoadedKey:
        key = signing.signing_key(self.keys)
        if key is None:
            raise RuntimeError("no active signing key: run `hub db upgrade`")
        return key

    def revoke_locally(self, jti: str, expires_at: int) -> None:
        self.revoked = {**self.revoked, jti: expires_at}

    def block_locally(self, blocks: dict[str, int]) -> None:
        self.blocked = {**self.blocked, **blocks}

    def blocked_for(self, keys: tuple[str, ...], now: int) -> int:
        """Seconds until none of `keys` (a client id, an address) is blocked; 0 if none is."""
        return max(0, *(self.blocked.get(key, 0) - now for key in keys))

    async def keep_fresh(self, interval: float) -> None:
        """Background loop of the app's lifespan; a failed refresh is logged and retried."""
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:
                log.exception("refreshing clients, keys and revocations failed")
