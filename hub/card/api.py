"""Routes for the acceptance office's card writer, under /registry/v1 (registry:write)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from hub.audit import Actor
from hub.auth.guard import GuardedRoute, actor_of, requires
from hub.card import layout, protocol, service
from hub.composition import Hub
from hub.deps import CurrentHub, DbSession, StandardBase64, base64_length
from hub.openapi import ClosedView

router = APIRouter(prefix="/registry/v1", tags=["Permit cards"], route_class=GuardedRoute)

CardKey = Annotated[
    bytes, StandardBase64("the card's P-256 public point, 65 bytes uncompressed", size=65)
]
Nonce = Annotated[
    bytes, StandardBase64("the card's write nonce from GET CHALLENGE", size=protocol.NONCE_LENGTH)
]
Photo = Annotated[
    bytes,
    StandardBase64(f"PNG or JPEG, at most {layout.MAX_PHOTO_BYTES:,} bytes"),
    # The limit is stated, and checked by the card service, which answers card-photo-invalid
    # for a photo too large as for one that is not PNG or JPEG.
    Field(json_schema_extra={"maxLength": base64_length(layout.MAX_PHOTO_BYTES)}),
]
Record = Annotated[bytes, StandardBase64("the card's current EF.RECORD, from READ BINARY")]


# A real P-256 point and a real 1x1 grey PNG: the example is refused only for its kid, which
# stands for the kids a card trusts (GET DATA 66; `hub card issuing-keys` lists the hub's).
_EXAMPLE_KEY = (
    "BHgqG8AZIO0wU4aRcxktpFPdCJFZPrHpKCcL5hrVaiqOf0U1L6RMiGYGN2N4w+EZIgwyAIuUnmROeyxl+bsNh5k="
)
_EXAMPLE_PHOTO = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg=="
)


class CardInReader(BaseModel):
    """What the writer read from the card: GET DATA 64, GET CHALLENGE, GET DATA 66."""

    card_key: CardKey
    nonce: Nonce
    trusted_kids: list[Annotated[str, Field(max_length=64)]] = Field(max_length=16)


class Personalisation(CardInReader):
    photo: Photo

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "card_key": _EXAMPLE_KEY,
                    "nonce": "q83vEjRWeJq83vEjRWeJqw==",
                    "trusted_kids": ["20261126-1a2b3c4d"],
                    "photo": _EXAMPLE_PHOTO,
                }
            ]
        }
    }


class Refresh(CardInReader):
    record: Record


class CardWrite(ClosedView):
    serial: str
    kid: str = Field(description="the issuing key that authorised the write")
    write: str = Field(description="PUT DATA command data (tag 71), standard base64")


def _answer(written: service.Written) -> CardWrite:
    data = protocol.encode_write(written.command)
    return CardWrite(
        serial=written.serial, kid=written.command.kid, write=base64.b64encode(data).decode()
    )


def _writer(body: CardInReader) -> service.CardWriter:
    return service.CardWriter(body.card_key, body.nonce, tuple(body.trusted_kids))


def _issuer(hub: Hub) -> service.Issuer:
    return service.Issuer(
        hub.audit, hub.vault, hub.card_key_password, hub.jurisdictions, hub.issuing_keys
    )


def _written(request: Request, write: Callable[[Actor], service.Written]) -> CardWrite:
    """Run `write` for the caller (its refusals are problems of their own)."""
    return _answer(write(actor_of(request)))


@router.post(
    "/permits/{permit_id}/card/personalisation",
    summary="Bind a blank card to the permit's live card serial and get its first write",
    responses={
        404: {"description": "No such permit"},
        409: {"description": "Not writable now; the type names why"},
        422: {"description": "The card key is not a P-256 point, or the photo not PNG or JPEG"},
    },
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
    responses={
        404: {"description": "No such permit"},
        409: {"description": "Not writable now, or not the registered card; the type names why"},
    },
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
