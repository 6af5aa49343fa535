"""Staff signing in and out: throttled, audited, and held to a session that ends when the
person signs out, stops using it for `staff_idle_seconds`, or their token expires.

A sign-in's failures are counted per account name (as typed) and per source address in the
shared failure table, like failed client authentications but with their own limits
(config/access.toml, [staff-sign-in]): a person types a password, so far fewer tries are
allowed than for a system's 256-bit secret. Every sign-in, failure, password change and
sign-out has its audit entry; the person is told only that the sign-in failed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from hub.audit import Actor, AuditEvent, AuditLog
from hub.auth.domain import FailureLimits, Principal, shown_client_id
from hub.auth.staff import (
    Member,
    SignInRefused,
    Staff,
    authenticate,
    change_password,
    member_of,
)
from hub.auth.state import AuthState
from hub.auth.store import RevokedToken, StaffAccount, StaffSession, count_failure
from hub.clock import Clock, naive_utc
from hub.db import unit_of_work

log = logging.getLogger(__name__)
SIGN_IN: Final = "staff.sign-in"
SIGN_OUT: Final = "staff.sign-out"
CONSOLE_PURPOSE: Final = "console"


class SignInThrottled(Exception):
    """Too many failed sign-ins for this account or from this address; wait `retry_after`."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignInDesk:
    """What signing staff in and out needs: their accounts, the throttle's snapshot and
    limits, the audit log and the clock. Built once per process (`Hub.sign_in`)."""

    engine: Engine
    staff: Staff
    state: AuthState
    limits: FailureLimits
    clock: Clock
    ticket_key: bytes

    @property
    def audit(self) -> AuditLog:
        return self.staff.audit


def _keys(name: str, address: str) -> tuple[str, str]:
    return f"staff:{shown_client_id(name)}", f"sign-in:{address}"


def sign_in(desk: SignInDesk, name: str, password: str, code: str, *, address: str) -> Member:
    """The member of staff these credentials prove, audited; SignInThrottled while the name
    or the address is blocked, SignInRefused (audited and counted) when they prove nothing."""
    now = desk.clock.now()
    wait = desk.state.blocked_for(_keys(name, address), desk.clock.epoch_seconds())
    if wait:
        raise SignInThrottled(wait)
    try:
        with unit_of_work(desk.engine) as session:
            member = authenticate(session, desk.staff, name, password, code or None, now=now)
            actor = Actor(f"staff:{member.name}", member.department.value)
            event = actor.did(SIGN_IN, "done", f"staff:{member.name}", CONSOLE_PURPOSE)
            desk.audit.record(session, event, now)
    except SignInRefused as refusal:
        _record_failure(desk, name, address, refusal.reason)
        raise
    log.info("staff %s signed in from %s", member.name, address)
    return member


def _record_failure(desk: SignInDesk, name: str, address: str, reason: str) -> None:
    """Audit and count one failed sign-in in one transaction; block here at once when a limit
    is reached (other processes follow on their next refresh)."""
    shown = shown_client_id(name)
    log.warning("staff sign-in failed: %s (account %r, address %s)", reason, shown, address)
    event = AuditEvent(
        actor_client_id=f"address:{address}",
        action=SIGN_IN,
        outcome=f"refused: {reason}",
        subject=f"staff:{shown}",
        purpose=CONSOLE_PURPOSE,
    )
    limits, epoch = desk.limits, desk.clock.epoch_seconds()
    account_key, address_key = _keys(name, address)
    blocks: dict[str, int] = {}
    with unit_of_work(desk.engine) as session:
        desk.audit.record(session, event, desk.clock.now())
        for key, limit in ((account_key, limits.per_client), (address_key, limits.per_address)):
            until = count_failure(session, key, limit, limits.window_seconds, epoch)
            if until:
                blocks[key] = until
    if blocks:
        log.warning("too many failed sign-ins: %s refused for a while", ", ".join(blocks))
        desk.state.block_locally(blocks)


TICKET_SECONDS: Final = 600


def change_ticket(desk: SignInDesk, member: Member) -> str:
    """What lets a person who just proved a one-time password choose their own, for ten
    minutes and once: it is bound to the hash of the password it replaces."""
    expires = desk.clock.epoch_seconds() + TICKET_SECONDS
    with Session(desk.engine) as session:
        row = session.get(StaffAccount, member.name)
        current = row.password_hash if row else ""
    return f"{member.name}.{expires}.{_ticket_mac(desk, member.name, expires, current)}"


def _ticket_mac(desk: SignInDesk, name: str, expires: int, password_hash: str) -> str:
    message = f"{name}|{expires}|{password_hash}".encode()
    return hmac.new(desk.ticket_key, message, hashlib.sha256).hexdigest()


def change_password_by_ticket(desk: SignInDesk, ticket: str, new_password: str) -> Member:
    """The person's new password set, audited; SignInRefused("ticket") for a ticket that is
    forged, expired or used, StaffRefused for a password the rules refuse."""
    rest, _, mac = ticket.rpartition(".")  # a name may hold dots; the rest holds none
    name, _, expires_text = rest.rpartition(".")
    if not expires_text.isdigit() or int(expires_text) <= desk.clock.epoch_seconds():
        raise SignInRefused("ticket")
    with unit_of_work(desk.engine) as session:
        row = session.get(StaffAccount, name, with_for_update=True)
        expected = _ticket_mac(desk, name, int(expires_text), row.password_hash if row else "")
        if row is None or not hmac.compare_digest(mac, expected):
            raise SignInRefused("ticket")
        change_password(session, desk.staff, name, new_password, now=desk.clock.now())
        return member_of(row)


def open_session(session: Session, principal: Principal, *, address: str, now: datetime) -> None:
    """The session of a staff token just issued to the console."""
    session.add(
        StaffSession(
            token_id=principal.token_id,
            staff_name=principal.client_id.removeprefix("staff:"),
            address=address[:64],
            started_at=now,
            last_seen_at=now,
            expires_at=principal.expires_at,
        )
    )


def session_alive(desk: SignInDesk, principal: Principal, idle_seconds: int) -> bool:
    """Whether the console session of this token is still open; each use keeps it so for
    `idle_seconds` more. One left idle too long is ended (audited) and its token revoked."""
    now = desk.clock.now()
    with unit_of_work(desk.engine) as session:
        row = session.get(StaffSession, principal.token_id, with_for_update=True)
        if row is None or row.ended_at is not None:
            return False
        if naive_utc(row.last_seen_at) + timedelta(seconds=idle_seconds) < naive_utc(now):
            _end(session, desk, principal, row, "idle", now)
            return False
        if naive_utc(now) - naive_utc(row.last_seen_at) >= timedelta(seconds=10):
            row.last_seen_at = now  # written at most every 10 s: pages fetch several parts
            session.add(row)
    return True


def sign_out(desk: SignInDesk, principal: Principal) -> None:
    """End the session and revoke its token, here at once and elsewhere on the next refresh."""
    now = desk.clock.now()
    with unit_of_work(desk.engine) as session:
        row = session.get(StaffSession, principal.token_id, with_for_update=True)
        if row is not None and row.ended_at is None:
            _end(session, desk, principal, row, "signed-out", now)
    desk.state.revoke_locally(principal.token_id, principal.expires_at)


def _end(
    session: Session,
    desk: SignInDesk,
    principal: Principal,
    row: StaffSession,
    reason: str,
    now: datetime,
) -> None:
    row.ended_at, row.end_reason = now, reason
    session.add(row)
    revoked = select(RevokedToken).where(RevokedToken.jti == principal.token_id)
    if session.exec(revoked).first() is None:
        session.add(
            RevokedToken(
                jti=principal.token_id,
                client_id=principal.client_id,
                expires_at=principal.expires_at,
                revoked_at=now,
            )
        )
    actor = Actor.of(principal)
    desk.audit.record(
        session, actor.did(SIGN_OUT, reason, principal.client_id, CONSOLE_PURPOSE), now
    )
