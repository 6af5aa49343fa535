"""The acceptance office's card writer: read what the hub needs from the card in the reader,
ask the hub for the write, and hand the write to the card. It holds no key that could write a
card by itself."""

from __future__ import annotations

import base64

from hub.window.hubclient import HubClient
from hub.window.reader import CardLink

SCOPE = "registry:write"


def _card_in_reader(link: CardLink) -> dict[str, object]:
    return {
        "card_key": base64.b64encode(link.card_key()).decode(),
        "trusted_kids": list(link.trusted_kids()),
        "nonce": base64.b64encode(link.write_nonce()).decode(),  # last: it is good for one write
    }


def personalise_card(client: HubClient, link: CardLink, permit_id: str, photo: bytes) -> str:
    """Write a blank card for an issued permit; returns the card serial written."""
    body = {**_card_in_reader(link), "photo": base64.b64encode(photo).decode()}
    answer = client.post(f"/registry/v1/permits/{permit_id}/card/personalisation", body)
    link.put_data(base64.b64decode(answer["write"]))
    return str(answer["serial"])


def refresh_card(client: HubClient, link: CardLink, permit_id: str) -> str:
    """Rewrite a personalised card with the registry's current facts (after an endorsement)."""
    record = base64.b64encode(link.read_record()).decode()
    body = {**_card_in_reader(link), "record": record}
    answer = client.post(f"/registry/v1/permits/{permit_id}/card/refresh", body)
    link.put_data(base64.b64decode(answer["write"]))
    return str(answer["serial"])
