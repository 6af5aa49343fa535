"""Card personalisation and refresh through the registry API: the hub binds the card's key to
the live serial, signs the record, and authorises a write only that card accepts."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.audit import AuditEntry
from hub.card import issuing, layout, protocol
from hub.card.store import Card
from hub.clock import FixedClock
from hub.composition import Hub
from hub.permits.store import Permit
from tests.auth.helpers import access_token, bearer
from tests.card.helpers import b64, issued_permit, new_card_key, tiny_png
from tests.conftest import RegisterClient


def _kids(hub: Hub) -> list[str]:
    with Session(hub.engine) as session:
        return [key["kid"] for key in issuing.issuing_jwks(session)["keys"]]


def _reader(card: ec.EllipticCurvePrivateKey, hub: Hub, **overrides: Any) -> dict[str, Any]:
    body = {
        "card_key": b64(layout.point_of(card.public_key())),
        "nonce": b64(secrets.token_bytes(protocol.NONCE_LENGTH)),
        "trusted_kids": _kids(hub),
    }
    return {**body, **overrides}


def _personalise(
    client: TestClient, office: dict[str, str], permit_id: str, body: dict[str, Any]
) -> Any:
    return client.post(
        f"/registry/v1/permits/{permit_id}/card/personalisation",
        json={"photo": b64(tiny_png()), **body},
        headers=office,
    )


def _public(hub: Hub, kid: str) -> ec.EllipticCurvePublicKey:
    with Session(hub.engine) as session:
        key = hub.issuing_keys.public_key(session, kid)
    assert key is not None
    return key


def _checked_write(hub: Hub, answer: dict[str, Any], point: bytes, nonce: bytes) -> bytes:
    """The record the write carries, after checking the write as the card will."""
    command = protocol.decode_write(base64.b64decode(answer["write"]))
    assert command.kid == answer["kid"]
    message = protocol.write_message(point, nonce, command.record, command.trusted_keys)
    _public(hub, command.kid).verify(command.signature, message, ec.ECDSA(hashes.SHA256()))
    installed = json.loads(command.trusted_keys)["keys"]
    assert [key["kid"] for key in installed] == _kids(hub)
    return command.record


def test_personalisation_binds_the_card_and_signs_its_record(
    app_client: TestClient, hub: Hub, office: dict[str, str]
) -> None:
    permit_id = issued_permit(hub, app_client, office)
    card = new_card_key()
    body = _reader(card, hub)
    answer = _personalise(app_client, office, permit_id, body)
    assert answer.status_code == 200, answer.text

    point = layout.point_of(card.public_key())
    record = _checked_write(hub, answer.json(), point, base64.b64decode(body["nonce"]))
    signed = layout.decode(record)
    assert signed.verify(_public(hub, signed.kid))
    with Session(hub.engine) as session:
        permit = session.get(Permit, permit_id)
        assert permit is not None
        stored = session.get(Card, permit.card_serial)
        assert stored is not None and stored.public_key == point
        actions = session.exec(select(AuditEntry.action)).all()
    assert signed.record.card_key == point
    assert signed.record.card.serial == permit.card_serial == answer.json()["serial"]
    assert signed.record.card.valid_until == permit.expires_on
    assert signed.record.card.issuing_authority == "赤峰市公安局"
    assert signed.record.holder.name == "张三" and len(signed.record.holder.citizen_id) == 18
    assert signed.record.photo == layout.Photo("image/png", tiny_png())
    assert "card.personalise" in actions


def test_a_serial_binds_one_card(app_client: TestClient, hub: Hub, office: dict[str, str]) -> None:
    permit_id = issued_permit(hub, app_client, office)
    card = new_card_key()
    assert _personalise(app_client, office, permit_id, _reader(card, hub)).status_code == 200
    again = _personalise(app_client, office, permit_id, _reader(card, hub))
    assert again.status_code == 200  # the same card, written again (a write interrupted)
    other = _personalise(app_client, office, permit_id, _reader(new_card_key(), hub))
    assert other.status_code == 409
    assert other.json()["type"].endswith("/card-already-personalised")


@pytest.mark.parametrize(
    ("override", "status", "slug"),
    [
        ({"trusted_kids": ["someone-else"]}, 409, "card-trusts-no-hub-key"),
        ({"photo": b64(b"GIF89a" + bytes(40))}, 422, "card-photo-invalid"),
        ({"photo": b64(tiny_png(400, 400) + bytes(20_000))}, 422, "card-photo-invalid"),
        ({"card_key": b64(b"\x04" + bytes(64))}, 422, "card-key-invalid"),
        ({"nonce": "not base64!"}, 422, "validation-failed"),
    ],
)
def test_refusals(
    app_client: TestClient,
    hub: Hub,
    office: dict[str, str],
    override: dict[str, Any],
    status: int,
    slug: str,
) -> None:
    permit_id = issued_permit(hub, app_client, office)
    answer = _personalise(app_client, office, permit_id, _reader(new_card_key(), hub, **override))
    assert answer.status_code == status, answer.text
    assert answer.json()["type"].endswith(f"/{slug}")
    with Session(hub.engine) as session:
        keys = session.exec(select(Card.public_key).where(col(Card.public_key).is_not(None)))
        assert keys.all() == []  # nothing half-written


def test_unknown_permit_unissued_permit_and_scope(
    app_client: TestClient, hub: Hub, office: dict[str, str], register_client: RegisterClient
) -> None:
    body = _reader(new_card_key(), hub)
    assert _personalise(app_client, office, "no-such-permit", body).status_code == 404
    permit_id = issued_permit(hub, app_client, office)
    reader_only = bearer(access_token(app_client, register_client("public-security")))
    assert _personalise(app_client, reader_only, permit_id, body).status_code == 403


def test_refresh_after_endorsement_keeps_the_photo(
    app_client: TestClient,
    hub: Hub,
    office: dict[str, str],
    clock: FixedClock,
    register_client: RegisterClient,
) -> None:
    permit_id = issued_permit(hub, app_client, office)
    card = new_card_key()
    point = layout.point_of(card.public_key())
    first = _personalise(app_client, office, permit_id, _reader(card, hub)).json()
    current = protocol.decode_write(base64.b64decode(first["write"])).record

    clock.set(clock.now() + timedelta(days=350))  # inside the endorsement window
    new = register_client("public-security", ("registry:read", "registry:write"))
    office = bearer(access_token(app_client, new))
    endorsed = app_client.post(
        f"/registry/v1/permits/{permit_id}/endorse", headers={**office, "If-Match": '"2"'}
    )
    assert endorsed.status_code == 200, endorsed.text
    body = _reader(card, hub, record=b64(current))
    answer = app_client.post(
        f"/registry/v1/permits/{permit_id}/card/refresh", json=body, headers=office
    )
    assert answer.status_code == 200, answer.text
    record = layout.decode(
        _checked_write(hub, answer.json(), point, base64.b64decode(body["nonce"]))
    ).record
    assert record.card.valid_until.isoformat() == endorsed.json()["expires_on"]
    assert record.card.valid_until > layout.decode(current).record.card.valid_until
    assert record.photo.image == tiny_png()

    stranger = _reader(new_card_key(), hub, record=b64(current))
    refused = app_client.post(
        f"/registry/v1/permits/{permit_id}/card/refresh", json=stranger, headers=office
    )
    assert refused.status_code == 409 and refused.json()["type"].endswith("/card-not-registered")
    tampered = _reader(card, hub, record=b64(current.replace("张三".encode(), "李四".encode())))
    refused = app_client.post(
        f"/registry/v1/permits/{permit_id}/card/refresh", json=tampered, headers=office
    )
    assert refused.status_code == 409 and refused.json()["type"].endswith("/card-record-invalid")


def test_a_rotated_issuing_key_reaches_the_card_through_the_old_one(
    app_client: TestClient, hub: Hub, office: dict[str, str]
) -> None:
    permit_id = issued_permit(hub, app_client, office)
    old = _kids(hub)
    with Session(hub.engine) as session:
        issuing.rotate_issuing_key(session, hub.clock.now(), hub.card_key_password)
        session.commit()
    card = new_card_key()
    answer = _personalise(app_client, office, permit_id, _reader(card, hub, trusted_kids=old))
    assert answer.status_code == 200, answer.text
    command = protocol.decode_write(base64.b64decode(answer.json()["write"]))
    assert command.kid == old[0]  # the card can check only the key it was made with
    assert len(json.loads(command.trusted_keys)["keys"]) == 2  # and learns the new one
    signed = layout.decode(command.record)
    assert signed.kid != old[0]  # the record itself is signed by the active key
    assert signed.verify(_public(hub, signed.kid))
