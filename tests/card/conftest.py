"""The card tests' PC/SC context (see tests/card/pcsc.py), the hub on loopback, a window
terminal of the education department with its agent, and the hand that swaps cards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from smartcard import scard
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.app import create_app
from hub.auth.domain import ClientKind
from hub.card import issuing
from hub.clock import FixedClock
from hub.composition import Hub
from hub.settings import Settings
from hub.window.agent import SCOPE, Cache, WindowAgent
from hub.window.hubclient import HubClient
from hub.window.reader import CardLink
from hub.window.writer import SCOPE as WRITER_SCOPE
from hub.window.writer import personalise_card
from tests.auth.helpers import access_token, bearer
from tests.card.helpers import issued_permit, tiny_png
from tests.card.pcsc import (
    LOCK,
    PORT,
    READER,
    Emulator,
    card_present,
    eventually,
    insert_card,
    remove_all,
    try_lock,
    wait_for,
)
from tests.conftest import RegisterClient, seed_shipped_agreements
from tests.servers import LoopbackServer


@pytest.fixture(scope="module")
def pcsc() -> Iterator[int]:
    """A PC/SC context with the reader to ourselves: the lock shared by every card test run,
    then pcscd and its virtual reader, empty."""
    with LOCK.open("w") as lock:
        # In a parallel run (make test: pytest -n) the other worker may hold it for a whole
        # card module: minutes, not seconds.
        wait_for(lambda: try_lock(lock), f"the virtual reader lock {LOCK}", timeout=1800)
        result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if result != scard.SCARD_S_SUCCESS:
            pytest.fail(
                f"pcscd is not running ({scard.SCardGetErrorMessage(result)}): the card tests "
                "need pcscd with the vsmartcard-vpcd driver (`make pcscd`)"
            )
        try:
            if not eventually(lambda: not card_present(context), 3):
                pytest.fail(
                    f"{READER} already holds a card: something other than a test is connected "
                    f"to port {PORT} (see HUB_TEST_VPCD_PORT)"
                )
            yield context
        finally:
            scard.SCardReleaseContext(context)


@pytest.fixture
def office(app_client: TestClient, register_client: RegisterClient) -> dict[str, str]:
    """Headers of an acceptance office's system (registry:read and registry:write)."""
    new = register_client("public-security", ("registry:read", "registry:write"))
    return bearer(access_token(app_client, new))


SERVICE = "compulsory-education"  # education's; needs a valid permit, no minimum residence


@dataclass
class Window:
    """A terminal of the education department at a window, and its agent."""

    client: HubClient
    agent: WindowAgent
    client_id: str
    secret: str


@pytest.fixture
def live(
    settings: Settings, engine: Engine, clock: FixedClock, hub: Hub
) -> Iterator[LoopbackServer]:
    """The hub on a loopback port (the same database and clock as `hub`), with the shipped
    agreements."""
    seed_shipped_agreements(hub)
    server = LoopbackServer(create_app(settings, engine=engine, clock=clock))
    yield server
    server.stop()


@pytest.fixture
def writer(live: LoopbackServer, register_client: RegisterClient) -> Iterator[HubClient]:
    new = register_client("public-security", ("registry:read", "registry:write"))
    assert new.secret
    client = HubClient(live.url, new.client_id, new.secret, WRITER_SCOPE)
    yield client
    client.close()


@pytest.fixture
def window(
    live: LoopbackServer, register_client: RegisterClient, tmp_path: Path
) -> Iterator[Window]:
    new = register_client("education", (SCOPE,), kind=ClientKind.WINDOW_TERMINAL)
    assert new.secret
    client = HubClient(live.url, new.client_id, new.secret, SCOPE, language="en")
    yield Window(
        client, WindowAgent(client, SERVICE, Cache(tmp_path / "window")), new.client_id, new.secret
    )
    client.close()


class Cards:
    """The test's hand at the reader: `cards(card_file)` takes out the card in it, if any,
    and inserts the card in a file (a new blank card trusting the hub's issuing keys)."""

    def __init__(self, pcsc: int, keys: Path) -> None:
        self.pcsc, self.keys = pcsc, keys
        self.inserted: list[Emulator] = []

    def __call__(self, card_file: Path) -> Emulator:
        self.empty()
        self.inserted.append(insert_card(self.pcsc, card_file, self.keys))
        return self.inserted[-1]

    def empty(self) -> None:
        for emulator in self.inserted:
            if emulator.process.poll() is None:
                emulator.remove()
        wait_for(lambda: not card_present(self.pcsc), f"{READER} to see the last card go")


@pytest.fixture
def cards(pcsc: int, hub: Hub, tmp_path: Path) -> Iterator[Cards]:
    keys = tmp_path / "issuing.jwks"
    with Session(hub.engine) as session:
        keys.write_text(json.dumps(issuing.issuing_jwks(session)))
    hand = Cards(pcsc, keys)
    yield hand
    remove_all(pcsc, hand.inserted)


def card_link(emulator: Emulator) -> CardLink:
    link = CardLink(emulator.connection)
    link.select()
    return link


@pytest.fixture
def personalised(
    app_client: TestClient,
    hub: Hub,
    office: dict[str, str],
    writer: HubClient,
    cards: Cards,
    tmp_path: Path,
) -> tuple[str, Path]:
    """A permit issued through the registry and its card, personalised through the reader."""
    permit_id = issued_permit(hub, app_client, office)
    card_file = tmp_path / "holder.card"
    serial = personalise_card(writer, card_link(cards(card_file)), permit_id, tiny_png())
    assert serial
    return permit_id, card_file
