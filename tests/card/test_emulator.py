"""The virtual card as a reader meets it.

Most tests drive the real chain: pyscard -> pcscd -> the vsmartcard-vpcd reader -> TCP ->
`hub card emulate` in its own process. A reader holds one card, and other test runs on the
machine may want the same reader, so those tests hold an exclusive lock on it (a file lock
every card test run takes) and fail, not skip, when pcscd or its virtual reader is missing:
`make test` provides both. HUB_TEST_VPCD_PORT picks another virtual reader (35964 is
"Virtual PCD 00 01") when the first is taken by something that is not a test.

The first tests play the reader's side of the vpcd protocol themselves (no pcscd), to pin
down the message handling exactly.
"""

from __future__ import annotations

import functools
import operator
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from smartcard import scard
from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import CardConnectionException

from hub.card import layout, protocol
from hub.card.protocol import SW, Ins
from hub.window.applet import Applet, blank_card, load_card
from hub.window.emulator import ATR, ReaderUnavailable, VirtualCard
from tests.card.apdus import ISSUER, KID, SELECT, apdu, put_data, record_for, split, write_jwks
from tests.card.pcsc import (
    HUB,
    Emulator,
    insert_card,
    remove_all,
)

# --- the vpcd protocol, with the test as the reader -------------------------------------------


class FakeReader:
    """The reader's end of vpcd as pcscd's driver speaks it: each message's length and payload
    in two writes (the pattern that costs 40 ms a message without TCP_QUICKACK)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(5)
        self.port = self.server.getsockname()[1]
        self.connection: socket.socket | None = None

    def accept(self) -> None:
        self.connection, _ = self.server.accept()
        self.connection.settimeout(5)

    def send(self, payload: bytes) -> None:
        assert self.connection is not None
        self.connection.sendall(len(payload).to_bytes(2, "big"))
        self.connection.sendall(payload)

    def receive(self) -> bytes:
        return self._exactly(int.from_bytes(self._exactly(2), "big"))

    def _exactly(self, size: int) -> bytes:
        assert self.connection is not None
        data = b""
        while len(data) < size:
            chunk = self.connection.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the card left")
            data += chunk
        return data

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.server.close()


@pytest.fixture
def fake_reader() -> Iterator[tuple[FakeReader, VirtualCard, threading.Thread]]:
    """A card inserted into a FakeReader and serving it from a thread."""
    reader = FakeReader()
    card = VirtualCard(Applet(blank_card({KID: ISSUER.public_key()})), port=reader.port)
    card.insert()
    reader.accept()
    thread = threading.Thread(target=card.serve, daemon=True)
    thread.start()
    yield reader, card, thread
    card.remove()
    reader.close()
    thread.join(5)


def test_the_atr_is_well_formed_and_names_the_application() -> None:
    assert ATR[:1] == b"\x3b" and ATR[2:4] == b"\x80\x01"  # T=1, PC/SC contactless form
    assert functools.reduce(operator.xor, ATR[1:]) == 0  # TCK
    historical = ATR[4:-1]
    assert len(historical) == ATR[1] & 0x0F
    assert historical == b"\x80\xf7" + protocol.AID + b"\x82\x90\x00"


def test_the_card_answers_every_vpcd_message(
    fake_reader: tuple[FakeReader, VirtualCard, threading.Thread],
) -> None:
    reader, _, _ = fake_reader
    reader.send(b"\x04")
    assert reader.receive() == ATR
    reader.send(b"\x01")  # power on: no answer
    reader.send(SELECT)
    assert split(reader.receive())[1] == SW.OK
    reader.send(apdu(Ins.GET_DATA, 0x00, 0x66, le=0))
    assert protocol.decode_kids(split(reader.receive())[0]) == (KID,)
    reader.send(b"\x07")  # an unknown control byte: ignored, no answer
    reader.send(b"")  # an empty message: ignored, no answer
    reader.send(b"\x00\xb0\x00")  # too short to be an APDU, yet an APDU
    assert reader.receive() == SW.WRONG_LENGTH.to_bytes(2, "big")


@pytest.mark.parametrize("control", [b"\x00", b"\x02"], ids=["power off", "reset"])
def test_power_off_and_reset_end_the_selection(
    fake_reader: tuple[FakeReader, VirtualCard, threading.Thread], control: bytes
) -> None:
    reader, _, _ = fake_reader
    reader.send(SELECT)
    reader.receive()
    reader.send(control)
    reader.send(apdu(Ins.GET_DATA, 0x00, 0x64, le=0))
    assert reader.receive() == SW.CONDITIONS_NOT_SATISFIED.to_bytes(2, "big")


def test_removing_the_card_ends_the_connection(
    fake_reader: tuple[FakeReader, VirtualCard, threading.Thread],
) -> None:
    reader, card, thread = fake_reader
    card.remove()
    thread.join(5)
    assert not thread.is_alive() and card.removed
    with pytest.raises(ConnectionError):
        reader.receive()


def test_the_reader_going_away_ends_serving(
    fake_reader: tuple[FakeReader, VirtualCard, threading.Thread],
) -> None:
    reader, card, thread = fake_reader
    reader.close()
    thread.join(5)
    assert not thread.is_alive() and not card.removed


def test_no_reader_is_a_clear_error_after_some_patience() -> None:
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]
    card = VirtualCard(Applet(blank_card({KID: ISSUER.public_key()})), port=port)
    started = time.monotonic()
    with pytest.raises(ReaderUnavailable, match=f"no virtual reader at 127.0.0.1:{port}"):
        card.insert(patience=0.5)
    assert 0.5 <= time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("setup", "args", "words"),
    [
        (None, (), ("does not exist", "--issuer-keys")),
        ("keys:not json", ("--issuer-keys", "{keys}"), ("not a JSON JWK Set",)),
        ("keys:{}", ("--issuer-keys", "{keys}"), ("not a JWK Set",)),
        ("card:{}", (), ("not a hub-virtual-card/1 card file",)),
    ],
)
def test_emulate_refuses_in_one_sentence(
    tmp_path: Path, setup: str | None, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    card, keys = tmp_path / "card.json", tmp_path / "keys.json"
    if setup:
        kind, content = setup.split(":", 1)
        (card if kind == "card" else keys).write_text(content)
    argv = [HUB, "card", "emulate", "--card", str(card), *(a.format(keys=keys) for a in args)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hub: ") and lines[0].endswith(".")
    assert all(word in lines[0] for word in words), lines[0]


# --- the real chain: pyscard, pcscd, vpcd, the emulator process -------------------------------


@pytest.fixture
def start(pcsc: int, tmp_path: Path) -> Iterator[Callable[[], Emulator]]:
    """Put the card of `tmp_path` (blank at first) into the reader and connect to it."""
    keys = write_jwks(tmp_path / "issuing.jwks", {KID: ISSUER})
    started: list[Emulator] = []

    def insert() -> Emulator:
        started.append(insert_card(pcsc, tmp_path / "card.json", keys))
        return started[-1]

    yield insert
    remove_all(pcsc, started)


def test_the_reader_sees_the_atr_and_speaks_t1(start: Callable[[], Emulator]) -> None:
    emulator = start()
    assert bytes(emulator.connection.getATR()) == ATR
    assert emulator.connection.getProtocol() == CardConnection.T1_protocol


def test_personalised_through_the_reader_the_card_keeps_its_record(
    start: Callable[[], Emulator],
) -> None:
    emulator = start()
    assert emulator.transmit(SELECT)[1] == SW.OK
    dg4, _ = emulator.transmit(apdu(Ins.GET_DATA, 0x00, 0x64, le=0))
    point = layout.decode_template(dg4, layout.DG_CARD_KEY, 2)[1]
    nonce, _ = emulator.transmit(apdu(Ins.GET_CHALLENGE, le=16))
    record = record_for(point, photo_size=layout.MAX_PHOTO_BYTES)
    assert emulator.transmit(put_data(point, nonce, record)) == (b"", SW.OK)

    assert emulator.transmit(apdu(Ins.READ_BINARY, le=0, extended=True)) == (record, SW.OK)
    challenge = os.urandom(32)
    signature, sw = emulator.transmit(apdu(Ins.INTERNAL_AUTHENTICATE, data=challenge, le=0))
    assert sw == SW.OK
    layout.public_key_from_point(point).verify(
        signature, protocol.auth_message(challenge), ec.ECDSA(hashes.SHA256())
    )
    assert load_card(emulator.card_file).record == record

    assert emulator.remove() == 0
    again = start()
    again.transmit(SELECT)
    assert again.transmit(apdu(Ins.READ_BINARY, le=0, extended=True)) == (record, SW.OK)
    assert layout.decode(record).verify(ISSUER.public_key())


def test_apdus_do_not_wait_for_delayed_acks(start: Callable[[], Emulator]) -> None:
    emulator = start()
    emulator.transmit(SELECT)
    started = time.perf_counter()
    for _ in range(200):
        assert emulator.transmit(apdu(Ins.GET_DATA, 0x00, 0x64, le=0))[1] == SW.OK
    assert time.perf_counter() - started < 2.0  # about 0.3 ms each; 40 ms with delayed ACKs


def test_a_reset_through_the_reader_ends_the_selection(start: Callable[[], Emulator]) -> None:
    emulator = start()
    emulator.transmit(SELECT)
    emulator.connection.reconnect(CardConnection.T1_protocol, disposition=scard.SCARD_RESET_CARD)
    assert emulator.transmit(apdu(Ins.GET_DATA, 0x00, 0x64, le=0)) == (
        b"",
        SW.CONDITIONS_NOT_SATISFIED,
    )
    assert emulator.transmit(SELECT)[1] == SW.OK


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_removed_card_is_an_error_not_a_hang(
    start: Callable[[], Emulator], how: signal.Signals
) -> None:
    emulator = start()
    emulator.transmit(SELECT)
    code = emulator.remove(how)
    assert code == (0 if how == signal.SIGTERM else -signal.SIGKILL)
    outcome: list[BaseException | tuple[bytes, int]] = []

    def attempt() -> None:
        try:
            outcome.append(emulator.transmit(apdu(Ins.GET_DATA, 0x00, 0x64, le=0)))
        except CardConnectionException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(10)
    assert outcome, "a transmit to a removed card did not return"
    assert isinstance(outcome[0], CardConnectionException), outcome
