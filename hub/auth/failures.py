"""Failed client authentications at /oauth/token, /oauth/introspect and /oauth/revoke.

Each one is logged and audited ("client.authenticate", the reason as outcome, the client id as
given as subject; never the secret or the assertion) and counted per client id and per source
address in the shared `client_auth_failure` table, within the same transaction as its audit
entry. Once a count reaches its limit (config/access.toml), attempts naming that client id or
coming from that address are refused with a 429 until the window ends.

The check before each attempt reads only this process's snapshot (AuthState.blocked): a
successful token request pays no database read or write for it. Blocks reached through other
processes arrive with the snapshot's refresh.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from joserfc import jws
from joserfc.errors import JoseError
from sqlalchemy.engine import Engine

from hub.audit import AuditEvent, AuditLog
from hub.auth.domain import AuthFailure, FailureLimits, basic_credentials, shown_client_id
from hub.auth.state import AuthState
from hub.auth.store import count_failure
from hub.clock import Clock
from hub.db import unit_of_work

log = logging.getLogger(__name__)
ACTION = "client.authenticate"


@dataclass(frozen=True)
class Attempt:
    """Who a request to an OAuth endpoint says it is, and where it comes from; unverified."""

    endpoint: str
    client_id: str  # as given (shown_client_id), "" when the request names none
    address: str
    unreadable: bool = False  # Basic credentials that are not base64 of UTF-8

    def counted(self, limits: FailureLimits) -> tuple[tuple[str, int], ...]:
        """The throttle keys this attempt counts against, each with its limit."""
        by_address = (f"address:{self.address}", limits.per_address)
        if not self.client_id:
            return (by_address,)
        return (f"client:{self.client_id}", limits.per_client), by_address


def attempt_of(
    endpoint: str, headers: Mapping[str, str], form: Mapping[str, str], address: str
) -> Attempt:
    """Read the client id a request claims: from its Basic credentials, else from the `sub`
    of its client assertion (not verified yet: this only picks the counter)."""
    authorization = headers.get("authorization", "")
    if authorization.partition(" ")[0].lower() == "basic":
        credentials = basic_credentials(authorization)
        if credentials is None:
            return Attempt(endpoint, "", address, unreadable=True)
        return Attempt(endpoint, shown_client_id(credentials[0]), address)
    return Attempt(endpoint, shown_client_id(_assertion_subject(form)), address)


def _assertion_subject(form: Mapping[str, str]) -> str:
    assertion = form.get("client_assertion")
    if not assertion:
        return ""
    try:
        claims = json.loads(jws.extract_compact(assertion.encode()).payload)
    except (JoseError, ValueError, UnicodeError):
        return ""
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) else ""


class FailedAuthentications:
    """Records failures and answers whether an attempt is throttled."""

    def __init__(self, state: AuthState, engine: Engine, audit: AuditLog, clock: Clock) -> None:
        self.state = state
        self.engine = engine
        self.audit = audit
        self.clock = clock

    def retry_after(self, attempt: Attempt) -> int:
        """Seconds the attempt must wait (0: go ahead); from memory only."""
        keys = tuple(key for key, _ in attempt.counted(self.state.policy.failed_authentication))
        return self.state.blocked_for(keys, self.clock.epoch_seconds())

    def record(self, attempt: Attempt, reason: AuthFailure) -> None:
        """Log, audit and count one failure, in one transaction; block here at once when a
        limit is reached (other processes follow on their next refresh)."""
        now, epoch = self.clock.now(), self.clock.epoch_seconds()
        limits = self.state.policy.failed_authentication
        log.warning(
            "client authentication failed at %s: %s (client id %r, address %s)",
            attempt.endpoint,
            reason.value,
            attempt.client_id,
            attempt.address,
        )
        event = AuditEvent(
            actor_client_id=f"address:{attempt.address}",
            action=ACTION,
            outcome=f"refused: {reason.value}",
            subject=f"client:{attempt.client_id}" if attempt.client_id else None,
            purpose=attempt.endpoint,
        )
        blocks: dict[str, int] = {}
        with unit_of_work(self.engine) as session:
            self.audit.record(session, event, now)
            for key, limit in attempt.counted(limits):
                until = count_failure(session, key, limit, limits.window_seconds, epoch)
                if until:
                    blocks[key] = until
        if blocks:
            log.warning(
                "too many failed client authentications: %s refused until %s (epoch seconds)",
                ", ".join(blocks),
                max(blocks.values()),
            )
            self.state.block_locally(blocks)
