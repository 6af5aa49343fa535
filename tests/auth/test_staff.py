"""Staff accounts on both databases: people with a department and roles, argon2id passwords
given once, a TOTP second factor for governance and admin, every change audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditEntry, AuditLog
from hub.auth.domain import Department, Role
from hub.auth.staff import (
    SignInRefused,
    Staff,
    StaffRefused,
    add_staff,
    authenticate,
    disable_staff,
    list_staff,
    reset_staff,
)
from hub.auth.store import StaffAccount, jurisdictions_of
from hub.db import unit_of_work
from tests.commands import hub_env, run_console_script, run_hub

pytestmark = pytest.mark.new_database  # the rows its services write, counted from none

NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
ADMIN = Actor("hub-admin", "hub")
AUDIT = AuditLog(b"a" * 32)
DESK = Staff(
    AUDIT,
    b"t" * 32,
    PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1),
    frozenset({"chifeng", "nanning"}),
)


def add(
    engine: Engine, name: str, *roles: str, department: str = "public-security"
) -> tuple[str, str | None]:
    with unit_of_work(engine) as session:
        given = add_staff(
            session,
            DESK,
            name=name,
            display_name="王芳",
            department=department,
            roles=roles,
            actor=ADMIN,
            now=NOW,
        )
    return given.password, given.otpauth_uri


def sign_in(engine: Engine, name: str, password: str, code: str | None = None) -> Role | str:
    with Session(engine) as session:
        try:
            member = authenticate(session, DESK, name, password, code, now=NOW)
        except SignInRefused as refused:
            return refused.reason
    assert member.name == name
    return member.roles[0]


def code_of(uri: str | None, at: datetime = NOW) -> str:
    assert uri is not None
    return pyotp.TOTP(pyotp.parse_uri(uri).secret).at(at)


def test_a_clerk_signs_in_with_the_password_given_once(engine: Engine) -> None:
    password, uri = add(engine, "li.lei", "window-clerk")
    assert uri is None and len(password) >= 16
    assert sign_in(engine, "li.lei", password) is Role.WINDOW_CLERK
    assert sign_in(engine, "li.lei", password + "x") == "wrong-password"
    assert sign_in(engine, "nobody", password) == "unknown-account"
    assert sign_in(engine, "NOT A NAME", password) == "unknown-account"
    with Session(engine) as session:
        row = session.get(StaffAccount, "li.lei")
        assert row is not None and row.must_change_password
        assert row.password_hash.startswith("$argon2id$") and password not in row.password_hash


def test_governance_needs_the_second_factor(engine: Engine) -> None:
    password, uri = add(engine, "wang.fang", "governance", "auditor")
    assert uri is not None and uri.startswith("otpauth://totp/permit-hub:wang.fang?")
    assert sign_in(engine, "wang.fang", password) == "wrong-code"
    assert sign_in(engine, "wang.fang", password, "abcdef") == "wrong-code"
    assert (
        sign_in(engine, "wang.fang", password, code_of(uri, NOW - timedelta(minutes=5)))
        == "wrong-code"
    )
    assert sign_in(engine, "wang.fang", password, code_of(uri)) is Role.AUDITOR
    secret = pyotp.parse_uri(uri).secret
    with Session(engine) as session:
        row = session.get(StaffAccount, "wang.fang")
        assert row is not None and row.totp_sealed is not None
        assert secret.encode() not in row.totp_sealed  # sealed, never in clear
    (member,) = list_staff(Session(engine))
    assert member.second_factor and member.scopes == {"schemas:read", "schemas:admin", "audit:read"}


def test_reset_and_disable(engine: Engine) -> None:
    old, _ = add(engine, "li.lei", "acceptance-office")
    with unit_of_work(engine) as session:
        assert disable_staff(session, DESK, "li.lei", actor=ADMIN, now=NOW)
    with unit_of_work(engine) as session:
        assert not disable_staff(session, DESK, "li.lei", actor=ADMIN, now=NOW)
    assert sign_in(engine, "li.lei", old) == "disabled"
    with unit_of_work(engine) as session:
        new = reset_staff(session, DESK, "li.lei", actor=ADMIN, now=NOW).password
    assert sign_in(engine, "li.lei", old) == "wrong-password"
    assert sign_in(engine, "li.lei", new) is Role.ACCEPTANCE_OFFICE
    with Session(engine) as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        assert [(entry.action, entry.subject) for entry in entries] == [
            ("staff.add", "staff:li.lei"),
            ("staff.disable", "staff:li.lei"),
            ("staff.reset", "staff:li.lei"),
        ]
        assert AUDIT.verify(session).intact


@pytest.mark.parametrize(
    ("name", "department", "roles", "words"),
    [
        ("Wang", "education", ["auditor"], "account name"),
        ("wang.fang", "planning", ["auditor"], "unknown department planning"),
        ("wang.fang", "education", ["boss"], "unknown role boss"),
        ("wang.fang", "education", [], "at least one role"),
    ],
)
def test_bad_accounts_are_refused_and_nothing_is_written(
    engine: Engine, name: str, department: str, roles: list[str], words: str
) -> None:
    with pytest.raises(StaffRefused, match=words):
        add(engine, name, *roles, department=department)
    with Session(engine) as session:
        assert session.exec(select(StaffAccount)).all() == []
        assert session.exec(select(AuditEntry)).all() == []


def test_an_acceptance_clerk_serves_the_jurisdictions_given(engine: Engine) -> None:
    def clerk(session: Session, *jurisdictions: str) -> None:
        add_staff(
            session,
            DESK,
            name="zhao.lei",
            display_name="赵磊",
            department="public-security",
            roles=["acceptance-office"],
            actor=ADMIN,
            now=NOW,
            jurisdictions=jurisdictions,
        )

    with unit_of_work(engine) as session:
        with pytest.raises(StaffRefused, match="unknown jurisdiction ningbo; one of: chifeng"):
            clerk(session, "ningbo")
        clerk(session, "chifeng")
    with Session(engine) as session:
        assert jurisdictions_of(session, "staff:zhao.lei") == {"chifeng"}
        assert jurisdictions_of(session, "zhao.lei") == frozenset()


def test_a_name_is_taken_once(engine: Engine) -> None:
    add(engine, "li.lei", "window-clerk")
    with pytest.raises(StaffRefused, match=r"already an account li\.lei"):
        add(engine, "li.lei", "auditor", department=Department.EDUCATION.value)


def test_staff_at_the_console(database_url: str, tmp_path: Path) -> None:
    """`hub staff` as an operator uses it: the console script once, then in process."""
    env = hub_env(database_url)
    assert run_console_script("db", "upgrade", env=env).returncode == 0
    added = run_console_script(
        "staff",
        "add",
        "wang.fang",
        "--display-name",
        "王芳",
        "--department",
        "public-security",
        "--roles",
        "governance,auditor",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    assert "one-time password: " in added.stdout and "otpauth://totp/" in added.stdout
    clerk = run_hub(
        "staff",
        "add",
        "li.lei",
        "--display-name",
        "李雷",
        "--department",
        "education",
        "--roles",
        "window-clerk",
        env=env,
    )
    assert clerk.returncode == 0 and "otpauth" not in clerk.stdout
    password = clerk.stdout.split("one-time password: ")[1].split()[0]
    assert run_hub("staff", "disable", "li.lei", env=env).stdout == "li.lei: disabled\n"
    listed = run_hub("staff", "list", env=env).stdout.splitlines()
    assert listed == [
        "li.lei\t李雷\teducation\twindow-clerk\tpassword\tdisabled\t-",
        "wang.fang\t王芳\tpublic-security\tauditor,governance\ttotp\tactive\t-",
    ]
    assert password not in run_hub("staff", "list", env=env).stdout
    refused = run_hub(
        "staff",
        "add",
        "li.lei",
        "--display-name",
        "x",
        "--department",
        "education",
        "--roles",
        "auditor",
        env=env,
    )
    assert (
        refused.returncode == 2 and refused.stderr == "hub: there is already an account li.lei.\n"
    )
    missing = run_hub("staff", "reset", "nobody", env=env)
    assert missing.returncode == 2 and missing.stderr == "hub: there is no account nobody.\n"
