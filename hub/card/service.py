"""Writing a permit card: personalisation at issuance, a new validity after endorsement.

The acceptance office's card writer reads the blank card's public key, a fresh write nonce and
the issuing keys the card trusts, and sends them here. The hub registers the card key for the
permit's live card serial (from then on a tap must prove possession of its private half),
builds the record from the registry's current facts, signs it, and returns a PUT DATA only
this card will accept, once. The writer never holds a key that could write a card.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from hub.audit import Actor, AuditLog
from hub.card import issuing, layout, protocol
from hub.card.problems import REFUSED
from hub.card.store import Card
from hub.permits.domain import PermitState
from hub.permits.identity import CitizenIdVault
from hub.permits.jurisdictions import Jurisdiction
from hub.permits.service import permit_of
from hub.permits.store import Permit, Registration
from hub.problems import DomainProblem, Problem, Text

PHOTO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


class CardRefused(DomainProblem):
    """The card cannot be written now; `code` names the rule (a problem type slug)."""

    def __init__(self, code: str, text: Text) -> None:
        super().__init__(text.en)
        self.code, self.text = code, text

    def problem(self) -> Problem:
        return Problem(REFUSED[self.code], self.text)


@dataclass(frozen=True)
class CardWriter:
    """What the card writer read from the card in the reader."""

    card_key: bytes  # the card's public point
    nonce: bytes  # from GET CHALLENGE, good for one PUT DATA
    trusted_kids: Sequence[str]


@dataclass(frozen=True)
class Issuer:
    """What writing a card needs of the hub: its audit log, the sealed-ID vault, the issuing
    keys (their password and the public-key cache) and the jurisdictions' rules."""

    audit: AuditLog
    vault: CitizenIdVault
    password: bytes
    jurisdictions: Mapping[str, Jurisdiction]
    keys: issuing.IssuingKeyCache


@dataclass(frozen=True)
class Written:
    serial: str
    command: protocol.WriteCommand


def photo_type(image: bytes) -> str:
    """The media type of a PNG or JPEG photo; CardRefused for anything else or too large."""
    if len(image) > layout.MAX_PHOTO_BYTES:
        raise CardRefused(
            "card-photo-invalid",
            Text(
                f"照片超过 {layout.MAX_PHOTO_BYTES} 字节",
                f"the photo is over {layout.MAX_PHOTO_BYTES} bytes",
            ),
        )
    for magic, media_type in PHOTO_TYPES.items():
        if image.startswith(magic):
            return media_type
    raise CardRefused(
        "card-photo-invalid", Text("照片不是 PNG 或 JPEG", "the photo is not PNG or JPEG")
    )


def personalise(
    session: Session,
    issuer: Issuer,
    *,
    permit_id: str,
    writer: CardWriter,
    photo: bytes,
    actor: Actor,
    now: datetime,
) -> Written:
    """Bind the card in the reader to the permit's live card serial and write its record.

    Writing the same card again (a write interrupted, say) is allowed; a serial already bound
    to another card is not: that card must be replaced through the registry."""
    permit, card, registration = _live_card(session, permit_id)
    _check_key(writer.card_key)
    if card.public_key is not None and card.public_key != writer.card_key:
        raise CardRefused(
            "card-already-personalised",
            Text(
                f"卡号 {card.serial} 已写入另一张卡",
                f"card {card.serial} was personalised with another card",
            ),
        )
    photo_group = layout.Photo(photo_type(photo), photo)  # checked before anything is written
    session.execute(
        sa.update(Card)
        .where(col(Card.serial) == card.serial)
        .values(public_key=writer.card_key, personalised_at=now)
    )
    written = _write(
        session, issuer, _record(issuer, permit, registration, writer, photo_group), writer
    )
    issuer.audit.record(
        session,
        actor.did("card.personalise", "written", permit.citizen_id_hash, "issuance"),
        now,
    )
    return written


def refresh(
    session: Session,
    issuer: Issuer,
    *,
    permit_id: str,
    writer: CardWriter,
    current: bytes,
    actor: Actor,
    now: datetime,
) -> Written:
    """Rewrite a personalised card with the registry's current facts (after an endorsement,
    an address change): the photo is kept from the card's own record, whose signature must
    verify, and the card must be the one registered for the serial."""
    permit, card, registration = _live_card(session, permit_id)
    if card.public_key is None or card.public_key != writer.card_key:
        raise CardRefused(
            "card-not-registered",
            Text(
                f"该卡不是卡号 {card.serial} 登记的卡",
                f"this card is not the one registered for serial {card.serial}",
            ),
        )
    try:
        signed = layout.decode(current)
    except layout.MalformedRecord as malformed:
        raise CardRefused(
            "card-record-invalid",
            Text("卡内记录无法读取", f"the card's record is unreadable: {malformed}"),
        ) from None
    key = issuer.keys.public_key(session, signed.kid)
    if key is None or not signed.verify(key) or signed.record.card_key != card.public_key:
        raise CardRefused(
            "card-record-invalid",
            Text("卡内记录不是本平台签发的", "the card's record is not one the hub signed"),
        )
    written = _write(
        session, issuer, _record(issuer, permit, registration, writer, signed.record.photo), writer
    )
    issuer.audit.record(
        session, actor.did("card.refresh", "written", permit.citizen_id_hash, "endorsement"), now
    )
    return written


def _live_card(session: Session, permit_id: str) -> tuple[Permit, Card, Registration]:
    row = session.execute(
        select(Permit, Card, Registration)
        .join(Card, col(Card.serial) == col(Permit.card_serial))
        .join(Registration, col(Registration.id) == col(Permit.registration_id))
        .where(col(Permit.id) == permit_id)
    ).first()
    if row is None:
        permit_of(session, permit_id)  # PermitNotFound if there is no such permit
        raise CardRefused(
            "card-not-issued", Text("该居住证尚未发卡", "the permit has no card issued yet")
        )
    permit, card, registration = row
    if permit.state != PermitState.VALID or card.status != "live":
        raise CardRefused(
            "card-not-writable",
            Text(
                "只能为有效居住证的在用卡写卡",
                f"only a valid permit's live card is written"
                f" (permit {permit.state}, card {card.status})",
            ),
        )
    return permit, card, registration


def _check_key(point: bytes) -> None:
    try:
        layout.public_key_from_point(point)
    except layout.MalformedRecord:
        raise CardRefused(
            "card-key-invalid",
            Text("卡公钥不是 P-256 公钥", "the card key is not a P-256 public point"),
        ) from None


def _record(
    issuer: Issuer,
    permit: Permit,
    registration: Registration,
    writer: CardWriter,
    photo: layout.Photo,
) -> layout.CardRecord:
    assert permit.card_serial and permit.valid_from and permit.expires_on  # a live card's
    return layout.CardRecord(
        holder=layout.Holder(
            name=registration.name,
            sex=registration.sex,
            ethnicity=registration.ethnicity,
            birth_date=registration.birth_date,
            citizen_id=issuer.vault.open(registration.citizen_id_sealed).value,
            household_address=registration.household_address,
            current_address=registration.current_address,
        ),
        photo=photo,
        card=layout.CardFacts(
            serial=permit.card_serial,
            permit_id=permit.id,
            jurisdiction=permit.jurisdiction,
            issuing_authority=issuer.jurisdictions[permit.jurisdiction].permit.issuing_authority.zh,
            valid_from=permit.valid_from,
            valid_until=permit.expires_on,
        ),
        card_key=writer.card_key,
    )


def _write(
    session: Session, issuer: Issuer, record: layout.CardRecord, writer: CardWriter
) -> Written:
    signed = issuing.sign_record(session, issuer.password, record)
    try:
        command = issuing.authorise_write(
            session,
            issuer.password,
            card_point=writer.card_key,
            nonce=writer.nonce,
            record=signed.encode(),
            card_trusts=writer.trusted_kids,
        )
    except issuing.NoTrustedKey:
        raise CardRefused(
            "card-trusts-no-hub-key",
            Text(
                "该卡不信任本平台的任何签发密钥", "the card trusts none of this hub's issuing keys"
            ),
        ) from None
    return Written(record.card.serial, command)
