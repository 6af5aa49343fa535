"""The demo's year of activity around the histories (hub.demo): card taps at the partner
departments' windows, each decided and audited as the window would have it; and reports by
employers and property managers [CF §6-9], most about registered people (then on file), some
about people who have not registered (the office's worklist, a few already overdue).

Written through the same use cases and tables as the real thing, so the statistics, the
access report, the points evidence and the worklist all have something to show.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import sqlalchemy as sa
from sqlmodel import Session, col

from hub.audit import Actor
from hub.auth.domain import ReporterRole, credit_code_check_character
from hub.card.store import Card
from hub.clock import CHINA
from hub.composition import Hub
from hub.db import unit_of_work
from hub.permits import reports
from hub.permits.identity import parse_citizen_id, with_check_character
from hub.permits.store import Permit, Registration
from hub.verification.domain import Reason, audit_outcome
from hub.verification.service import TAP_ACTION, purpose_of
from hub.verification.store import WindowDecision

TAP_SHARE: Final = 0.3
"""Of the holders with a live card, those who used it at a window in the last year."""
REPORTED_SHARE: Final = 0.08
"""Of the registered, those an employer or property manager also reported."""
UNREGISTERED_REPORTS: Final = 0.015
"""People reported who never registered, per holder of the demo."""
ORGANISATIONS: Final = (
    ("赤峰华达物流有限公司", ReporterRole.EMPLOYER, "chifeng"),
    ("赤峰草原乳业有限公司", ReporterRole.EMPLOYER, "chifeng"),
    ("红山区锦绣家园物业服务中心", ReporterRole.PROPERTY_MANAGER, "chifeng"),
    ("宁波港城建材有限公司", ReporterRole.EMPLOYER, "ningbo"),
    ("海曙区天一物业管理有限公司", ReporterRole.PROPERTY_MANAGER, "ningbo"),
    ("南宁青秀人力资源服务有限公司", ReporterRole.AGENCY, "nanning"),
    ("漳州芗城电子厂", ReporterRole.EMPLOYER, "zhangzhou"),
    ("呼和浩特新城物业有限公司", ReporterRole.PROPERTY_MANAGER, "inner-mongolia"),
)


def credit_code(seed: int) -> str:
    """A made-up unified social credit code with its GB 32100 check character."""
    body = f"911504{seed:08d}MA0"
    return body + credit_code_check_character(body)


def add_activity(hub: Hub, seed: int, today: date) -> None:
    """A year of taps and the third parties' reports, after the histories are loaded. Each
    holder's share is drawn from a generator seeded by the seed and their keyed ID hash, so
    the same seed gives the same activity whatever order the rows come back in."""
    with unit_of_work(hub.engine) as session:
        _taps(hub, session, seed, today)
    with unit_of_work(hub.engine) as session:
        _reports(hub, session, random.Random(f"{seed}:reports"), seed, today)


def _moment(rng: random.Random, day: date) -> datetime:
    minutes = rng.randint(0, 8 * 60)
    return (datetime.combine(day, time(8, 30), CHINA) + timedelta(minutes=minutes)).astimezone(UTC)


def _taps(hub: Hub, session: Session, seed: int, today: date) -> None:
    cards = session.execute(
        sa.select(col(Card.serial), col(Permit.citizen_id_hash), col(Permit.jurisdiction))
        .join(Permit, col(Permit.id) == col(Card.permit_id))
        .where(col(Card.status) == "live", col(Permit.state) == "valid")
        .order_by(col(Permit.citizen_id_hash))
    ).all()
    services = sorted(hub.catalogue.services.values(), key=lambda service: service.code)
    for serial, holder, place in cards:
        rng = random.Random(f"{seed}:taps:{holder}")
        if rng.random() >= TAP_SHARE:
            continue
        for _ in range(rng.randint(1, 5)):
            service = rng.choice(services)
            day = today - timedelta(days=rng.randint(0, 364))
            moment = _moment(rng, day)
            granted = service.jurisdictions is None or place in service.jurisdictions
            reasons: list[str] = [] if granted else [Reason.WRONG_JURISDICTION.value]
            if granted and rng.random() < 0.06:
                granted, reasons = False, [Reason.RESIDENCE_TOO_SHORT.value]
            decision = "grant" if granted else "deny"
            client = f"demo-window-{service.department.value}-{rng.randint(1, 3)}"
            session.add(
                WindowDecision(
                    id=str(uuid.uuid4()),
                    client_id=client,
                    department=service.department.value,
                    service=service.code,
                    card_serial=serial,
                    decision=decision,
                    reasons=reasons,
                    offline=False,
                    decided_at=moment,
                    recorded_at=moment,
                )
            )
            actor = Actor(client, service.department.value)
            event = actor.did(
                TAP_ACTION, audit_outcome(decision, reasons), holder, purpose_of(service.code)
            )
            hub.audit.record(session, event, moment)


def _reports(hub: Hub, session: Session, rng: random.Random, seed: int, today: date) -> None:
    desk = reports.Desk(hub.audit, hub.vault, hub.lifecycle.calendar)
    reporters = [
        (
            reports.Reporter(f"demo-reporter-{n}", credit_code(n + 1), name, role.value),
            place,
        )
        for n, (name, role, place) in enumerate(ORGANISATIONS)
        if place in hub.jurisdictions
    ]
    registered = (
        session.execute(sa.select(Registration).order_by(col(Registration.citizen_id_hash)))
        .scalars()
        .all()
    )
    for registration in registered:
        mine = random.Random(f"{seed}:report:{registration.citizen_id_hash}")
        if mine.random() >= REPORTED_SHARE:
            continue
        choices = [r for r in reporters if r[1] == registration.jurisdiction]
        if not choices:
            continue
        reporter, place = mine.choice(choices)
        citizen_id = hub.vault.open(registration.citizen_id_sealed)
        occurred = registration.arrived_on + timedelta(days=mine.randint(0, 20))
        _file(
            hub,
            session,
            desk,
            (reporter, place),
            (citizen_id.value, registration.name),
            (registration.current_address, registration.current_region),
            min(occurred, today),
        )
    unregistered = max(1, int(len(registered) * UNREGISTERED_REPORTS))
    regions = {r.jurisdiction: (r.current_region, r.current_address) for r in registered}
    for n in range(unregistered):
        reporter, place = rng.choice(reporters)
        if place not in regions:
            continue
        region, address = regions[place]
        person = (_citizen_id(rng, n), _name(rng))
        occurred = today - timedelta(days=rng.randint(0, 40))
        _file(hub, session, desk, (reporter, place), person, (address, region), occurred)


def _file(
    hub: Hub,
    session: Session,
    desk: reports.Desk,
    by: tuple[reports.Reporter, str],
    person: tuple[str, str],
    where: tuple[str, str],
    occurred: date,
) -> None:
    """One report: by (reporter, its jurisdiction), about person (number, name), at where
    (address, region), received three days after it happened."""
    (reporter, place), (number, name), (address, region) = by, person, where
    kind = "hire" if reporter.role in ("employer", "agency") else "tenancy"
    report_id = (
        f"{kind.upper()}-{occurred:%Y%m%d}-{hashlib.sha256(number.encode()).hexdigest()[:8]}"
    )
    received = _moment(random.Random(report_id), occurred + timedelta(days=3))
    data = reports.ReportInput(
        kind=kind,
        report_id=report_id,
        content_hash=hashlib.sha256(f"{report_id}:{number}".encode()).hexdigest(),
        citizen_id=parse_citizen_id(number, today=occurred),
        name=name,
        address=address,
        region=region,
        occurred_on=occurred,
    )
    reports.file_report(
        session,
        desk,
        hub.jurisdictions[place],
        reporter,
        data,
        actor=Actor(reporter.client_id, "public-security"),
        now=received,
    )


_SURNAMES: Final = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴")
_GIVEN: Final = ("伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰")


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(("", *_GIVEN))


def _citizen_id(rng: random.Random, n: int) -> str:
    """A valid number of someone born 1975-2004 in Liaoning, Hebei or Shandong."""
    region = rng.choice(("210102", "130102", "370102", "410105"))
    born = date(1975, 1, 1) + timedelta(days=rng.randint(0, 29 * 365))
    return with_check_character(f"{region}{born:%Y%m%d}{(n % 900) + 100:03d}")
