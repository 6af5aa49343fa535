"""Holders, departments and receivers the exchange's tests share: made by the registry's own
use cases, so every permit has its events, outbox snapshots and sealed citizen ID."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditEntry
from hub.clock import FixedClock
from hub.composition import Hub
from hub.connectors.store import Delivery
from hub.db import unit_of_work
from hub.permits import applications, domain, eligibility, service
from hub.permits.identity import parse_citizen_id
from hub.permits.store import Permit, Registration
from hub.schemas import agreements
from hub.schemas import domain as schema_domain
from hub.settings import Settings
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient, seed_shipped_agreements
from tests.factories import add_permits, build
from tests.servers import LoopbackServer

REGISTERED_AT = datetime(2026, 3, 3, 2, tzinfo=UTC)
NOW = datetime(2026, 10, 13, 2, tzinfo=UTC)  # seven months on: 10:00 in China
OFFICE = Actor("office-1", "public-security")
CHIFENG, NINGBO = "150429", "330203"  # 宁城县, 海曙区


DEPARTMENTS = """
[departments.education]
endpoint = "http://127.0.0.1:9/webhooks/holder-records"
secret_env = "HUB_TEST_UNUSED_SECRET"
agreement = "education-holders"
delivery = "pull"
events = ["issue", "cancel"]

[departments.hr-social-security]
endpoint = "http://127.0.0.1:9/webhooks/holder-records"
secret_env = "HUB_TEST_UNUSED_SECRET"
agreement = "hr-social-security-holders"
delivery = "both"
events = ["*"]

[departments.housing]
endpoint = "http://127.0.0.1:9/webhooks/holder-records"
secret_env = "HUB_TEST_UNUSED_SECRET"
agreement = "housing-holders"
delivery = "push"
events = ["*"]

[departments.health]
endpoint = "http://127.0.0.1:9/webhooks/holder-records"
secret_env = "HUB_TEST_UNUSED_SECRET"
agreement = "no-such-agreement"
delivery = "pull"
events = ["*"]
"""
"""Education pulls issues and cancellations; HR takes everything; housing only pushes; health
names an agreement that does not exist; civil affairs has no link at all."""


def with_departments(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "departments.toml"
    path.write_text(DEPARTMENTS, encoding="utf-8")
    return settings.model_copy(update={"departments_file": path})


def seed_agreements(hub: Hub, clock: FixedClock) -> Hub:
    """The shipped agreements, as on a first start with config/agreements; the clock at NOW."""
    clock.set(NOW)
    seed_shipped_agreements(hub)
    return hub


@dataclass(frozen=True)
class Holder:
    permit_id: str
    citizen_id: str
    id_hash: str


def citizen_id(n: int) -> str:
    """Person n: a valid number, household registered in Shenyang, born 1990."""
    return build("210102", "19900115", f"{n:03d}")


def register(hub: Hub, number: str, region: str = CHIFENG) -> str:
    """A residence registration by the registry's use case, made on REGISTERED_AT."""
    with unit_of_work(hub.engine) as session:
        registration = service.register(
            session,
            hub.lifecycle,
            hub.vault,
            hub.jurisdictions,
            service.RegistrationInput(
                citizen_id=parse_citizen_id(number, today=REGISTERED_AT.date()),
                name=f"王芳{number[-4:]}",
                ethnicity="汉族",
                household_address="辽宁省沈阳市和平区某街1号",
                household_region="210102",
                current_address="某小区2号楼",
                current_region=region,
                reason="employment",
                workplace="某建材有限公司",
                contact="13800000000",
                arrived_on=date(2026, 3, 2),
            ),
            actor=OFFICE,
            now=REGISTERED_AT,
            today=REGISTERED_AT.date(),
        )
    return registration.id


def make_holders(hub: Hub, first: int, count: int, *, issue: bool = True) -> list[Holder]:
    """Holders first..first+count-1 with accepted (and issued) permits, by the real use cases:
    each has an `accept` (and an `issue`) event with its outbox snapshot."""
    registrations = [register(hub, citizen_id(n)) for n in range(first, first + count)]
    made = []
    with unit_of_work(hub.engine) as session:
        for n, registration_id in zip(range(first, first + count), registrations, strict=True):
            outcome, permit = applications.apply_for_permit(
                session,
                hub.lifecycle,
                hub.jurisdictions,
                registration_id,
                applications.Claim(
                    "residence", "rented", None, frozenset({"id-card", "photo", "lease-contract"})
                ),
                actor=OFFICE,
                now=NOW,
                today=NOW.date(),
            )
            assert isinstance(outcome, eligibility.Accepted) and permit is not None, outcome
            if issue:
                service.perform(
                    session,
                    hub.lifecycle,
                    permit.id,
                    domain.Action.ISSUE,
                    expected_version=1,
                    actor=OFFICE,
                    now=NOW,
                    today=NOW.date(),
                )
            number = parse_citizen_id(citizen_id(n), today=NOW.date())
            made.append(Holder(permit.id, number.value, hub.vault.lookup_hash(number)))
    return made


def department(
    app_client: TestClient, register_client: RegisterClient, name: str, *scopes: str
) -> dict[str, str]:
    return bearer(access_token(app_client, register_client(name, scopes)))


def exchange_audit(hub: Hub, action: str) -> list[AuditEntry]:
    with Session(hub.engine) as session:
        query = select(AuditEntry).where(col(AuditEntry.action) == action)
        return list(session.exec(query.order_by(col(AuditEntry.seq))).all())


def set_agreement_status(
    hub: Hub, agreement_id: str, status: schema_domain.AgreementStatus
) -> None:
    with unit_of_work(hub.engine) as session:
        current = agreements.latest(session, agreement_id)
        terms = agreements.terms_of(current)
        agreements.amend(
            session,
            hub.schemas,
            hub.audit,
            agreement_id,
            schema_domain.AgreementTerms(**{**terms.__dict__, "status": status}),
            expected_version=current.version,
            actor=Actor("governance", "public-security"),
            now=hub.clock.now(),
        )


class Receiver(LoopbackServer):
    """A reference department server in a thread of this process, on its own port."""

    def received(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/received").json())


def chifeng_citizen_id(n: int) -> str:
    """A valid GB 11643 number for person n (born 1990, Chifeng)."""
    return build("150402", "19900101", f"{n:03d}")


def holders(hub: Hub, count: int) -> list[str]:
    """Accepted permits of real people: their registrations hold sealed, valid IDs."""
    ids = add_permits(hub, "accepted", count=count)
    with unit_of_work(hub.engine) as session:
        for n, permit_id in enumerate(ids, start=1):
            permit = session.get(Permit, permit_id)
            assert permit is not None
            registration = session.get(Registration, permit.registration_id)
            assert registration is not None
            number = parse_citizen_id(chifeng_citizen_id(n), today=hub.clock.today())
            registration.citizen_id_sealed = hub.vault.seal(number)
            session.add(registration)
    return ids


def act_on(hub: Hub, permit_id: str, action: domain.Action, version: int) -> None:
    with unit_of_work(hub.engine) as session:
        service.perform(
            session,
            hub.lifecycle,
            permit_id,
            action,
            expected_version=version,
            actor=Actor("office", "public-security"),
            now=hub.clock.now(),
            today=hub.clock.today(),
            details={"reason": "false-materials"} if action is domain.Action.CANCEL else None,
        )


def deliveries_of(hub: Hub) -> list[Delivery]:
    with Session(hub.engine) as session:
        query = select(Delivery).order_by(col(Delivery.event_seq), col(Delivery.department))
        return list(session.exec(query).all())
