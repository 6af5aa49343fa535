"""Local verification of access tokens.

A token's signature is checked once per process: the verified caller is cached under the
exact token string, and each later use re-checks only what can change (expiry, revocation),
in memory. No database read happens on a guarded request; revocations reach the in-memory
set through AuthState's refresh (see hub/auth/state.py). No web framework here: commands
build a Hub, and with it a verifier, without one.
"""

from __future__ import annotations

import json
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError

from hub.auth.domain import (
    TOKEN_ALGORITHM,
    TOKEN_TYPE,
    Principal,
    TokenFault,
    TokenRefused,
    check_claims,
)
from hub.auth.state import AuthState
from hub.clock import Clock


class TokenVerifier:
    """Checks the hub's access tokens against this process's snapshot of keys and revocations."""

    def __init__(
        self,
        state: AuthState,
        issuer: str,
        audience: str,
        clock: Clock,
        leeway: int = 30,
        cache_size: int = 50_000,
    ) -> None:
        self.state = state
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.leeway = leeway
        self.cache_size = cache_size
        self._verified: dict[str, Principal] = {}

    def verify(self, token: str) -> Principal:
        """The caller behind a bearer token, or TokenRefused saying why not."""
        principal = self._verified.get(token)
        if principal is None:
            principal = self.verify_claims(self.signed_claims(token))
            if len(self._verified) >= self.cache_size:
                self._verified.clear()
            self._verified[token] = principal
            return principal
        # Signature, issuer, audience and not-before held on first use; only time and
        # revocation can change since.
        if self.clock.epoch_seconds() >= principal.expires_at + self.leeway:
            del self._verified[token]
            raise TokenRefused(TokenFault.EXPIRED, "the token has expired")
        self._refuse_revoked(principal)
        return principal

    def verify_claims(self, claims: dict[str, Any]) -> Principal:
        """Every claim check of a signed token, revocation included."""
        now = self.clock.epoch_seconds()
        principal = check_claims(
            claims, issuer=self.issuer, audience=self.audience, now=now, leeway=self.leeway
        )
        self._refuse_revoked(principal)
        return principal

    def _refuse_revoked(self, principal: Principal) -> None:
        if principal.token_id in self.state.revoked:
            raise TokenRefused(TokenFault.REVOKED, "the token has been revoked")

    def signed_claims(self, token: str) -> dict[str, Any]:
        """Claims of a token whose header and signature are the hub's; lifetime not checked."""
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError, UnicodeError):
            raise TokenRefused(TokenFault.MALFORMED, "not a compact JWS") from None
        if header.get("alg") != TOKEN_ALGORITHM:
            raise TokenRefused(TokenFault.ALGORITHM, f"alg must be {TOKEN_ALGORITHM}")
        if header.get("typ") != TOKEN_TYPE:
            raise TokenRefused(TokenFault.MALFORMED, f"typ must be {TOKEN_TYPE}")
        key = self.state.public_key(str(header.get("kid", "")))
        if key is None:
            raise TokenRefused(TokenFault.UNKNOWN_KEY, "signed by a key the hub does not publish")
        try:
            payload = jws.deserialize_compact(token, key, algorithms=[TOKEN_ALGORITHM]).payload
            claims = json.loads(payload)
        except JoseError:
            raise TokenRefused(TokenFault.SIGNATURE, "the signature does not verify") from None
        except ValueError:
            raise TokenRefused(TokenFault.MALFORMED, "the payload is not JSON") from None
        if not isinstance(claims, dict):
            raise TokenRefused(TokenFault.MALFORMED, "the payload is not a JSON object")
        return claims
