"""Routes for the acceptance office's card writer, under /registry/v1 (registry:write)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Request
from pydantic import Base64Bytes, BaseModel, Field

from hub.audit import Actor
from hub.auth.guard import GuardedRoute, principal_of, requires
from hub.card import protocol, service
from hub.deps import CurrentHub, DbSession
from hub.permits.api import PERMIT_NOT_FOUND
from hub.problems import Problem, ProblemType, Text, problem_type

if TYPE_CHECKING:
    from hub.app import Hub

router = APIRouter(prefix="/registry/v1", tags=["Permit cards"], route_class=GuardedRoute)

_TITLES = {
    "card-photo-invalid": (422, "照片无效", "Invalid photo"),
    "card-key-invalid": (422, "卡公钥无效", "Invalid card key"),
    "card-not-issued": (409, "尚未发卡", "No card issued"),
    "card-not-writable": (409, "该卡不能写入", "Card not writable"),
    "card-already-personalised": (409, "卡号已绑定另一张卡", "Card serial bound to another card"),
    "card-not-registered": (409, "不是登记的卡", "Not the registered card"),
    "card-record-invalid": (409, "卡内记录无效", "Card record invalid"),
    "card-trusts-no-hub-key": (409, "卡不信任本平台密钥", "Card trusts no hub key"),
}
REFUSED: dict[str, ProblemType] = {
    code: problem_type(code, status, zh, en) for code, (status, zh, en) in _TITLES.items()
}
Encoded = Annotated[Base64Bytes, Field(description="standard base64")]


class CardInReader(BaseModel):
    """What the writer read from the card: GET DATA 64, GET CHALLENGE, GET DATA 66."""

    card_key: Encoded = Field(description="the card's P-256 public point, 65 bytes uncompressed")
    nonce: Encoded = Field(description="the card's write nonce, from GET CHALLENGE")
    trusted_kids: list[Annotated[str, Field(max_length=64)]] = Field(max_length=16)


class Personalisation(CardInReader):
    photo: Encoded = Field(description="PNG or JPEG, at most 16,384 bytes")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "card_key": "BK3x...(65 bytes)",
                    "nonce": "q83vEjRWeJq83vEjRWeJqw==",
                    "trusted_kids": ["20261126-1a2b3c4d"],
                    "photo": "iVBORw0KGgo...",
                }
            ]
        }
    }


class Refresh(CardInReader):
    record: Encoded = Field(description="the card's current EF.RECORD, from READ BINARY")


class CardWrite(BaseModel):
    serial: str
    kid: str = Field(description="the issuing key that authorised the write")
    write: str = Field(description="PUT DATA command data (tag 71), standard base64")


def _answer(written: service.Written) -> CardWrite:
    data = protocol.encode_write(written.command)
    return CardWrite(
        serial=written.serial, kid=written.command.kid, write=base64.b64encode(data).decode()
    )


def _refused(refused: service.CardRefused) -> Problem:
    return Problem(REFUSED[refused.code], Text(refused.zh, refused.en))


def _writer(body: CardInReader) -> service.CardWriter:
    return service.CardWriter(body.card_key, body.nonce, tuple(body.trusted_kids))


def _issuer(hub: Hub) -> service.Issuer:
    return service.Issuer(
        hub.audit, hub.vault, hub.card_key_password, hub.jurisdictions, hub.issuing_keys
    )


def _written(request: Request, write: Callable[[Actor], service.Written]) -> CardWrite:
    """Run `write` for the caller; its refusals as problems."""
    principal = principal_of(request)
    try:
        written = write(Actor(principal.client_id, principal.department.value))
    except LookupError:
        raise Problem(PERMIT_NOT_FOUND) from None
    except service.CardRefused as refused:
        raise _refused(refused) from None
    return _answer(written)


@router.post(
    "/permits/{permit_id}/card/personalisation",
    summary="Bind a blank card to the permit's live card serial and get its first write",
    responses={404: {"description": "No such permit"}, 409: {"description": "Not writable"}},
)
@requires("registry:write")
def personalise(
    request: Request, permit_id: str, body: Personalisation, session: DbSession, hub: CurrentHub
) -> CardWrite:
    return _written(
        request,
        lambda actor: service.personalise(
            session,
            _issuer(hub),
            permit_id=permit_id,
            writer=_writer(body),
            photo=body.photo,
            actor=actor,
            now=hub.clock.now(),
        ),
    )


@router.post(
    "/permits/{permit_id}/card/refresh",
    summary="Rewrite the registered card with the registry's current facts (new validity)",
    responses={404: {"description": "No such permit"}, 409: {"description": "Not writable"}},
)
@requires("registry:write")
def refresh(
    request: Request, permit_id: str, body: Refresh, session: DbSession, hub: CurrentHub
) -> CardWrite:
    return _written(
        request,
        lambda actor: service.refresh(
            session,
            _issuer(hub),
            permit_id=permit_id,
            writer=_writer(body),
            current=body.record,
            actor=actor,
            now=hub.clock.now(),
        ),
    )
