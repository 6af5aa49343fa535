"""Reads of personal data in the registry are audited, and its problem details never repeat an
identifier a caller typed (it could be a citizen ID), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub import etags
from hub.audit import AuditEntry
from hub.clock import FixedClock
from hub.permits.store import Registration
from hub.problems import Problem
from tests.auth.helpers import access_token, bearer
from tests.conftest import RegisterClient
from tests.factories import build
from tests.factories import registration_body as registration_body

A_CITIZEN_ID = build("110105", "19491231", "002")
RENTED = {
    "condition": "residence",
    "form": "rented",
    "materials": ["id-card", "photo", "lease-contract"],
}


def _office(
    clock: FixedClock,
    app_client: TestClient,
    register_client: RegisterClient,
    when: datetime,
    scopes: tuple[str, ...] = ("registry:read", "registry:write"),
) -> tuple[str, dict[str, str]]:
    clock.set(when)
    new = register_client("public-security", scopes)
    return new.client_id, bearer(access_token(app_client, new))


@pytest.fixture
def accepted(
    app_client: TestClient, register_client: RegisterClient, clock: FixedClock
) -> tuple[str, str]:
    """A registration of 3 March 2026 and its permit accepted on 13 October, not issued by
    12 November (30 days [CF §17]); the clock is then on 20 November."""
    _, office = _office(clock, app_client, register_client, datetime(2026, 3, 3, 2, tzinfo=UTC))
    registration = app_client.post(
        "/registry/v1/registrations",
        headers=office,
        json=registration_body(arrived_on="2026-03-02", current_region="150429"),
    ).json()
    _, office = _office(clock, app_client, register_client, datetime(2026, 10, 13, 2, tzinfo=UTC))
    permit = app_client.post(
        "/registry/v1/applications",
        headers=office,
        json={"registration_id": registration["id"], **RENTED},
    ).json()["permit"]
    clock.set(datetime(2026, 11, 20, 2, tzinfo=UTC))
    return registration["id"], permit["id"]


def _audited(engine: Engine, after: int) -> list[AuditEntry]:
    with Session(engine) as session:
        query = select(AuditEntry).where(col(AuditEntry.seq) > after)
        return list(session.exec(query.order_by(col(AuditEntry.seq))).all())


def _last_seq(engine: Engine) -> int:
    entries = _audited(engine, 0)
    return entries[-1].seq if entries else 0


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ("/registrations/{registration}", "registration.read"),
        ("/permits/{permit}", "permit.read"),
        ("/permits/{permit}/events", "permit.events.read"),
        ("/permits/{permit}/residence?on=2026-11-01", "permit.residence.read"),
        ("/permits-overdue", "permit.overdue.read"),
    ],
)
def test_every_read_of_personal_data_is_audited(
    app_client: TestClient,
    register_client: RegisterClient,
    clock: FixedClock,
    engine: Engine,
    accepted: tuple[str, str],
    path: str,
    action: str,
) -> None:
    registration_id, permit_id = accepted
    client_id, office = _office(clock, app_client, register_client, clock.now())
    with Session(engine) as session:
        registration = session.get(Registration, registration_id)
        assert registration is not None
        holder = registration.citizen_id_hash
    before = _last_seq(engine)

    url = "/registry/v1" + path.format(registration=registration_id, permit=permit_id)
    response = app_client.get(url, headers=office)

    assert response.status_code == 200, response.text
    assert response.json()  # something was disclosed
    (entry,) = _audited(engine, before)
    assert (entry.action, entry.outcome, entry.purpose) == (action, "disclosed", "registry")
    assert (entry.subject, entry.actor_client_id) == (holder, client_id)
    assert entry.actor_department == "public-security"


def test_a_read_refused_or_of_nothing_is_not_an_audited_disclosure(
    app_client: TestClient,
    register_client: RegisterClient,
    clock: FixedClock,
    engine: Engine,
    accepted: tuple[str, str],
) -> None:
    _, permit_id = accepted
    _, writer = _office(clock, app_client, register_client, clock.now(), ("registry:write",))
    _, office = _office(clock, app_client, register_client, clock.now())
    before = _last_seq(engine)
    refused = app_client.get(f"/registry/v1/permits/{permit_id}", headers=writer)
    assert refused.status_code == 403
    missing = app_client.get("/registry/v1/permits/no-such-permit", headers=office)
    assert missing.status_code == 404
    assert _audited(engine, before) == []


@pytest.mark.parametrize(
    ("method", "path", "slug"),
    [
        ("GET", "/registrations/{cid}", "registration-not-found"),
        ("GET", "/permits/{cid}", "permit-not-found"),
        ("GET", "/permits/{cid}/events", "permit-not-found"),
        ("GET", "/permits/{cid}/residence", "permit-not-found"),
        ("POST", "/permits/{cid}/issue", "permit-not-found"),
        ("POST", "/permits/{cid}/cancel", "permit-not-found"),
        ("POST", "/permits/{cid}/address-change", "permit-not-found"),
    ],
)
def test_not_found_does_not_repeat_a_citizen_id_in_the_path(
    app_client: TestClient,
    register_client: RegisterClient,
    clock: FixedClock,
    method: str,
    path: str,
    slug: str,
) -> None:
    _, office = _office(clock, app_client, register_client, clock.now())
    move = {
        "new_address": "赤峰市松山区某小区5号楼",
        "new_region": "150404",
        "moved_on": "2026-10-20",
    }
    response = app_client.request(
        method,
        "/registry/v1" + path.format(cid=A_CITIZEN_ID),
        headers={**office, "If-Match": '"1"', "Accept-Language": "zh-CN"},
        json=move if path.endswith("address-change") else None,
    )
    assert response.status_code == 404, response.text
    assert response.json()["type"] == f"/problems/{slug}"
    assert A_CITIZEN_ID not in response.text


def test_identifiers_in_bodies_and_headers_are_not_repeated(
    app_client: TestClient,
    register_client: RegisterClient,
    clock: FixedClock,
    accepted: tuple[str, str],
) -> None:
    _, permit_id = accepted
    _, office = _office(clock, app_client, register_client, clock.now())
    unknown = app_client.post(
        "/registry/v1/applications",
        headers=office,
        json={"registration_id": A_CITIZEN_ID, **RENTED},
    )
    assert unknown.status_code == 404 and A_CITIZEN_ID not in unknown.text

    # A social-insurance number is the citizen ID number: a department's proof id may be one.
    proof = {
        "citizen_id": registration_body()["citizen_id"],
        "kind": "social-insurance",
        "source_department": "hr-social-security",
        "source_proof_id": A_CITIZEN_ID,
        "valid_from": "2026-03-01",
        "details": {"months": 8, "continuous": True},
    }
    assert app_client.post("/registry/v1/proofs", headers=office, json=proof).status_code == 201
    conflict = app_client.post(
        "/registry/v1/proofs", headers=office, json={**proof, "valid_from": "2026-04-01"}
    )
    assert conflict.status_code == 409 and A_CITIZEN_ID not in conflict.text

    # Codes are codes: a citizen ID where one belongs is refused without being repeated.
    for claim in (
        {"form": A_CITIZEN_ID},
        {"exemption": A_CITIZEN_ID},
        {"materials": [A_CITIZEN_ID]},
    ):
        coded = app_client.post(
            "/registry/v1/applications", headers=office, json={"registration_id": "x", **claim}
        )
        assert coded.status_code == 422 and A_CITIZEN_ID not in coded.text

    stale = app_client.post(
        f"/registry/v1/permits/{permit_id}/issue",
        headers={**office, "If-Match": f'"{A_CITIZEN_ID}"'},
    )
    assert stale.status_code == 412 and A_CITIZEN_ID not in stale.text


@pytest.mark.parametrize(
    "tag",
    [
        b'"2147483648"',  # INT_MAX + 1
        b'"' + b"9" * 5000 + b'"',  # more digits than Python turns into an int
        b'W/"1e3"',
    ],
)
def test_if_match_outside_the_version_range_is_a_412(
    app_client: TestClient,
    register_client: RegisterClient,
    clock: FixedClock,
    accepted: tuple[str, str],
    tag: bytes,
) -> None:
    """Versions are int4 columns: a number beyond `hub.db.INT_MAX`, or not a number in ASCII
    digits, names no version of the permit."""
    _, permit_id = accepted
    _, office = _office(clock, app_client, register_client, clock.now())
    response = app_client.post(
        f"/registry/v1/permits/{permit_id}/issue",
        headers={**office, "If-Match": tag},
    )
    assert response.status_code == 412, response.text
    assert response.json()["type"] == "/problems/stale-write"
    current = app_client.get(f"/registry/v1/permits/{permit_id}", headers=office)
    assert current.json()["state"] == "accepted" and current.headers["etag"] == '"1"'


def test_if_match_in_latin1_digits_is_a_412_not_a_500() -> None:
    """A server hands header bytes over as they came and Starlette reads them as Latin-1, where
    0xB2 is "²": a digit to str.isdigit, not to int(). (The test client re-encodes header
    values as UTF-8, so the request is built as the server builds it.)"""
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"if-match", b'"\xb2"')]}
    with pytest.raises(Problem) as raised:
        etags.expected_version(Request(scope))
    assert raised.value.kind is etags.STALE_WRITE
