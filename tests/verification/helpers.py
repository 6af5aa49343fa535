"""Cards and taps for the verification tests.

A card is what personalisation makes: a P-256 key pair of its own (the private half "on the
card", here in the test), a record built from the registry's facts and signed by the hub's
active issuing key, and the card's public key registered on the permit's live card row.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditEntry
from hub.card import issuing, layout, protocol
from hub.card.store import Card
from hub.composition import Hub
from hub.db import unit_of_work
from hub.permits import domain, service
from hub.permits.store import Permit, Registration
from tests.card.helpers import b64, new_card_key, tiny_png

OFFICE = Actor("office-1", "public-security")


@dataclass(frozen=True)
class PermitCard:
    permit_id: str
    serial: str
    key: ec.EllipticCurvePrivateKey
    record: bytes


def sign_record(hub: Hub, permit_id: str, card_point: bytes, **changes: Any) -> bytes:
    """The EF.RECORD personalisation would write, signed by the hub's active issuing key;
    `changes` replace card facts (a serial, say)."""
    with Session(hub.engine) as session:
        permit = session.get(Permit, permit_id)
        assert permit is not None and permit.card_serial
        assert permit.valid_from is not None and permit.expires_on is not None
        registration = session.get(Registration, permit.registration_id)
        assert registration is not None
        kid, private = issuing.active_signer(session, hub.card_key_password)
    facts = layout.CardFacts(
        serial=permit.card_serial,
        permit_id=permit.id,
        jurisdiction=permit.jurisdiction,
        issuing_authority="赤峰市公安局",
        valid_from=permit.valid_from,
        valid_until=permit.expires_on,
    )
    record = layout.CardRecord(
        holder=layout.Holder(
            name=registration.name,
            sex=registration.sex,
            ethnicity=registration.ethnicity,
            birth_date=registration.birth_date,
            citizen_id=hub.vault.open(registration.citizen_id_sealed).value,
            household_address=registration.household_address,
            current_address=registration.current_address,
        ),
        photo=layout.Photo("image/png", tiny_png()),
        card=replace(facts, **changes),
        card_key=card_point,
    )
    return layout.sign(record, kid, private).encode()


def register_key(hub: Hub, serial: str, point: bytes | None) -> None:
    with unit_of_work(hub.engine) as session:
        session.execute(sa.update(Card).where(col(Card.serial) == serial).values(public_key=point))


def personalise(hub: Hub, permit_id: str) -> PermitCard:
    """A new card for the permit's live serial, its key registered."""
    with Session(hub.engine) as session:
        permit = session.get(Permit, permit_id)
        assert permit is not None and permit.card_serial
    key = new_card_key()
    point = layout.point_of(key.public_key())
    register_key(hub, permit.card_serial, point)
    return PermitCard(permit_id, permit.card_serial, key, sign_record(hub, permit_id, point))


def perform(hub: Hub, permit_id: str, action: domain.Action, **kwargs: Any) -> None:
    """A lifecycle action by the registry's use case, on `today` (default: the hub's)."""
    with unit_of_work(hub.engine) as session:
        permit = session.get(Permit, permit_id)
        assert permit is not None
        service.perform(
            session,
            hub.lifecycle,
            permit_id,
            action,
            expected_version=permit.version,
            actor=OFFICE,
            now=hub.clock.now(),
            today=kwargs.get("today", hub.clock.today()),
        )


def permit_of(hub: Hub, permit_id: str) -> Permit:
    with Session(hub.engine) as session:
        permit = session.get(Permit, permit_id)
        assert permit is not None
        return permit


def challenge(client: TestClient, headers: dict[str, str]) -> tuple[str, bytes]:
    answer = client.post("/verification/v1/challenges", headers=headers)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    text = body["challenge"]
    return body["challenge_id"], base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def answer(key: ec.EllipticCurvePrivateKey, nonce: bytes) -> str:
    """The card's INTERNAL AUTHENTICATE answer to `nonce`, base64."""
    return b64(key.sign(protocol.auth_message(nonce), ec.ECDSA(hashes.SHA256())))


def tap_body(challenge_id: str, service_code: str, record: bytes, signature: str) -> dict[str, str]:
    return {
        "challenge_id": challenge_id,
        "service": service_code,
        "record": b64(record),
        "card_signature": signature,
    }


def tap(
    client: TestClient,
    headers: dict[str, str],
    card: PermitCard,
    service_code: str = "compulsory-education",
    *,
    record: bytes | None = None,
    signer: ec.EllipticCurvePrivateKey | None = None,
    language: str = "en",
) -> Any:
    """A whole tap: a challenge for `headers`' client, the card's answer, the decision."""
    challenge_id, nonce = challenge(client, headers)
    body = tap_body(
        challenge_id,
        service_code,
        card.record if record is None else record,
        answer(signer or card.key, nonce),
    )
    return client.post(
        "/verification/v1/taps", json=body, headers={**headers, "Accept-Language": language}
    )


def reasons(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    assert response.json()["offline"] is False
    codes = [reason["code"] for reason in response.json()["reasons"]]
    assert response.json()["decision"] == ("deny" if codes else "grant")
    return codes


def audit_entries(hub: Hub, action: str) -> list[AuditEntry]:
    with Session(hub.engine) as session:
        query = select(AuditEntry).where(col(AuditEntry.action) == action)
        return list(session.exec(query.order_by(col(AuditEntry.seq))).all())
