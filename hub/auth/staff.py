"""Staff accounts: people, not OAuth clients. Each has a department and roles, from which the
scopes of their console session follow (`auth.domain.ROLE_SCOPES`).

A local account's password is stored as an argon2id hash (argon2-cffi's defaults, RFC 9106's
second recommended parameters), never in clear; an administrator never chooses one: `add` and
`reset` make a one-time password the person must change at first sign-in. Roles that change
what every department receives or who may act (`SECOND_FACTOR_ROLES`) also get a TOTP secret
(RFC 6238, pyotp), kept sealed with AES-GCM under a key derived from the master secret, and
shown once as an otpauth URI for the person's authenticator app. Every change is audited.
"""

from __future__ import annotations

import functools
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditLog
from hub.auth.domain import (
    SECOND_FACTOR_ROLES,
    Department,
    Role,
    jurisdiction_list,
    staff_scopes,
)
from hub.auth.store import StaffAccount

TOTP_KEY_PURPOSE: Final = "staff-totp"
"""The keyring purpose of the key that seals TOTP secrets."""
ISSUER: Final = "permit-hub"
"""The issuer an authenticator app shows beside the account."""
STAFF_PURPOSE: Final = "staff-administration"
NAME: Final = re.compile(r"[a-z][a-z0-9._-]{2,63}")
_NONCE_BYTES: Final = 12


class StaffRefused(ValueError):
    """A request about staff the hub cannot carry out, in one sentence."""


class SignInRefused(Exception):
    """Why a sign-in failed; the person is told only that it failed, the audit log why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Staff:
    """What managing staff and signing them in needs of the hub: the audit log, the key that
    seals TOTP secrets and the password hasher. Built once per process (`Hub.staff`)."""

    audit: AuditLog
    totp_key: bytes
    hasher: PasswordHasher
    jurisdictions: frozenset[str] = frozenset()  # the codes the hub serves


@dataclass(frozen=True)
class Credentials:
    """What a new or reset account is given, shown once: the one-time password and, for a
    role that needs a second factor, the otpauth URI of its TOTP secret."""

    name: str
    password: str
    otpauth_uri: str | None


@dataclass(frozen=True)
class Member:
    """A staff account as the console and `hub staff list` show it: nothing secret."""

    name: str
    display_name: str
    department: Department
    roles: tuple[Role, ...]
    second_factor: bool
    disabled: bool
    must_change_password: bool = False
    jurisdictions: tuple[str, ...] = ()  # where an acceptance-office clerk finds people

    @property
    def scopes(self) -> frozenset[str]:
        return staff_scopes(self.roles)


def _roles(names: Iterable[str]) -> tuple[Role, ...]:
    chosen = sorted(set(names))
    unknown = [name for name in chosen if name not in {role.value for role in Role}]
    if unknown:
        known = ", ".join(role.value for role in Role)
        raise StaffRefused(f"unknown role {', '.join(unknown)} (the roles: {known})")
    if not chosen:
        raise StaffRefused("a member of staff needs at least one role")
    return tuple(Role(name) for name in chosen)


def _department(name: str) -> Department:
    try:
        return Department(name)
    except ValueError:
        known = ", ".join(department.value for department in Department)
        raise StaffRefused(f"unknown department {name} (the departments: {known})") from None


def _seal(key: bytes, secret: str) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, secret.encode("ascii"), b"staff-totp")


def _unseal(key: bytes, blob: bytes) -> str:
    return AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], b"staff-totp").decode()


def _new_secrets(
    desk: Staff, name: str, roles: Sequence[Role]
) -> tuple[str, str, bytes | None, str | None]:
    """A one-time password with its hash, and a TOTP secret (sealed, and as a URI) where a
    role needs it."""
    password = secrets.token_urlsafe(12)
    if not SECOND_FACTOR_ROLES & set(roles):
        return password, desk.hasher.hash(password), None, None
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)
    return password, desk.hasher.hash(password), _seal(desk.totp_key, secret), uri


def member_of(row: StaffAccount) -> Member:
    return Member(
        row.name,
        row.display_name,
        Department(row.department),
        tuple(Role(role) for role in row.roles.split()),
        row.totp_sealed is not None,
        row.disabled_at is not None,
        row.must_change_password,
        tuple(row.jurisdictions.split()),
    )


def _audit(
    session: Session, desk: Staff, actor: Actor, action: str, name: str, now: datetime
) -> None:
    desk.audit.record(session, actor.did(action, "done", f"staff:{name}", STAFF_PURPOSE), now)


def add_staff(
    session: Session,
    desk: Staff,
    *,
    name: str,
    display_name: str,
    department: str,
    roles: Iterable[str],
    actor: Actor,
    now: datetime,
    jurisdictions: Iterable[str] = (),
) -> Credentials:
    """A new local account, with a one-time password (and a TOTP secret for the roles that
    need one); StaffRefused for a bad name, department or role, or a name already taken."""
    if NAME.fullmatch(name) is None:
        raise StaffRefused(
            f"an account name is 3 to 64 characters: a lower-case letter, then lower-case"
            f" letters, digits, '.', '_' or '-' (not {name!r})"
        )
    display_name = display_name.strip()
    if not display_name or len(display_name) > 128 or not display_name.isprintable():
        raise StaffRefused("a display name is 1 to 128 printable characters")
    chosen, place = _roles(roles), _department(department)
    try:
        served = jurisdiction_list(jurisdictions, desk.jurisdictions)
    except ValueError as exc:
        raise StaffRefused(str(exc)) from None
    if session.get(StaffAccount, name) is not None:
        raise StaffRefused(f"there is already an account {name}")
    password, hashed, sealed, uri = _new_secrets(desk, name, chosen)
    session.add(
        StaffAccount(
            name=name,
            display_name=display_name,
            department=place.value,
            roles=" ".join(role.value for role in chosen),
            password_hash=hashed,
            must_change_password=True,
            totp_sealed=sealed,
            created_at=now,
            changed_at=now,
            jurisdictions=served,
        )
    )
    _audit(session, desk, actor, "staff.add", name, now)
    return Credentials(name, password, uri)


def _account(session: Session, name: str) -> StaffAccount:
    row = session.get(StaffAccount, name, with_for_update=True)
    if row is None:
        raise StaffRefused(f"there is no account {name}")
    return row


def reset_staff(
    session: Session, desk: Staff, name: str, *, actor: Actor, now: datetime
) -> Credentials:
    """A new one-time password (and TOTP secret, where a role needs one) for a person who
    lost theirs; the old ones stop working at once. A disabled account is enabled again."""
    row = _account(session, name)
    password, hashed, sealed, uri = _new_secrets(desk, name, member_of(row).roles)
    row.password_hash, row.totp_sealed = hashed, sealed
    row.must_change_password, row.disabled_at, row.changed_at = True, None, now
    session.add(row)
    _audit(session, desk, actor, "staff.reset", name, now)
    return Credentials(name, password, uri)


def disable_staff(session: Session, desk: Staff, name: str, *, actor: Actor, now: datetime) -> bool:
    """No more sign-ins for the account (it is kept, with its history); False if it was
    disabled already."""
    row = _account(session, name)
    if row.disabled_at is not None:
        return False
    row.disabled_at, row.changed_at = now, now
    session.add(row)
    _audit(session, desk, actor, "staff.disable", name, now)
    return True


def list_staff(session: Session) -> list[Member]:
    rows = session.exec(select(StaffAccount).order_by(col(StaffAccount.name))).all()
    return [member_of(row) for row in rows]


def authenticate(
    session: Session, desk: Staff, name: str, password: str, code: str | None, *, now: datetime
) -> Member:
    """The member of staff these credentials prove, or SignInRefused with the reason: no such
    account, disabled, a wrong password, or a missing or wrong TOTP code where the account has
    a second factor. The hash is checked even for an unknown name, so the time taken does not
    tell which names exist."""
    row = session.get(StaffAccount, name, with_for_update=True) if NAME.fullmatch(name) else None
    try:
        desk.hasher.verify(row.password_hash if row else _decoy(desk.hasher), password)
        matched = row is not None
    except (VerificationError, InvalidHashError):
        matched = False
    if row is None:
        raise SignInRefused("unknown-account")
    if row.disabled_at is not None:
        raise SignInRefused("disabled")
    if not matched:
        raise SignInRefused("wrong-password")
    if row.totp_sealed is not None:
        try:
            secret = _unseal(desk.totp_key, row.totp_sealed)
        except InvalidTag:
            raise SignInRefused("second-factor-unreadable") from None
        step = _accepted_step(secret, code or "", now, row.totp_last_step)
        if step is None:
            raise SignInRefused("wrong-code")
        row.totp_last_step = step
        session.add(row)
    return member_of(row)


def _accepted_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step a TOTP code belongs to (the current one or a neighbour, for a phone's
    clock drift), or None: also when that step or a later one was used already, so a code
    seen over a shoulder cannot sign in a second time (RFC 6238 §5.2)."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current, current - 1, current + 1):
        fresh = last_step is None or step > last_step
        if fresh and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


PASSWORD_LENGTH: Final = range(12, 129)


def change_password(
    session: Session, desk: Staff, name: str, new_password: str, *, now: datetime
) -> None:
    """The person's own password in place of a one-time one; StaffRefused when it is too
    short or long, or is the password it replaces. Length is the rule (NIST SP 800-63B
    §3.1.1.2): no composition rules, which make passwords no stronger and harder to keep."""
    if len(new_password) not in PASSWORD_LENGTH or not new_password.isprintable():
        raise StaffRefused(
            f"a password is {PASSWORD_LENGTH.start} to {PASSWORD_LENGTH.stop - 1} printable"
            " characters"
        )
    row = _account(session, name)
    try:
        desk.hasher.verify(row.password_hash, new_password)
    except (VerificationError, InvalidHashError):
        pass
    else:
        raise StaffRefused("the new password must differ from the one it replaces")
    row.password_hash, row.must_change_password, row.changed_at = (
        desk.hasher.hash(new_password),
        False,
        now,
    )
    session.add(row)
    actor = Actor(f"staff:{name}", row.department)
    _audit(session, desk, actor, "staff.password-change", name, now)


@functools.cache
def _decoy(hasher: PasswordHasher) -> str:
    """A hash to check against when the name is unknown (see `authenticate`), made on the
    first such sign-in rather than when a command imports this module."""
    return hasher.hash(secrets.token_urlsafe(16))
