"""The real PC/SC chain for card tests: pcscd with the vsmartcard-vpcd reader, to ourselves.

A reader holds one card, and other test runs on the machine may want the same reader, so the
tests that use it hold an exclusive lock on it (a file lock every card test run takes) and
fail, not skip, when pcscd or its virtual reader is missing: `make test` provides both.
HUB_TEST_VPCD_PORT picks another virtual reader (35964 is "Virtual PCD 00 01") when the
first is taken by something that is not a test.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from smartcard import scard
from smartcard.CardConnection import CardConnection
from smartcard.System import readers

HUB = str(Path(sys.executable).parent / "hub")
FIRST_PORT = 35963
PORT = int(os.environ.get("HUB_TEST_VPCD_PORT", FIRST_PORT))
READER = f"Virtual PCD 00 {PORT - FIRST_PORT:02d}"
LOCK = Path(tempfile.gettempdir()) / f"hub-vpcd-{PORT}.lock"


def eventually(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    assert eventually(condition, timeout), f"timed out after {timeout:.0f} s waiting for {what}"


def _reader_state(context: int) -> int:
    result, states = scard.SCardGetStatusChange(context, 0, [(READER, scard.SCARD_STATE_UNAWARE)])
    if result != scard.SCARD_S_SUCCESS:
        reason = scard.SCardGetErrorMessage(result).strip()
        pytest.fail(f"pcscd has no reader {READER!r} ({reason}): is vsmartcard-vpcd installed?")
    state: int = states[0][1]
    return state


def card_present(context: int) -> bool:
    return bool(_reader_state(context) & scard.SCARD_STATE_PRESENT)


def try_lock(lock: Any) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@dataclass
class Emulator:
    """`hub card emulate` in its own process, with the reader connection of the test."""

    card_file: Path
    process: subprocess.Popen[bytes]
    connection: Any

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        data, sw1, sw2 = self.connection.transmit(list(command))
        return bytes(data), sw1 << 8 | sw2

    def remove(self, how: signal.Signals = signal.SIGTERM) -> int:
        self.process.send_signal(how)
        return self.process.wait(10)


def insert_card(context: int, card_file: Path, issuer_keys: Path | None = None) -> Emulator:
    """`hub card emulate` with `card_file` in the reader (made blank, trusting `issuer_keys`,
    if it does not exist), connected over T=1."""
    wait_for(lambda: not card_present(context), f"{READER} to see the last card go")
    extra = [] if card_file.exists() or issuer_keys is None else ["--issuer-keys", str(issuer_keys)]
    argv = [HUB, "card", "emulate", "--card", str(card_file), "--reader-port", str(PORT)]
    log_path = card_file.with_suffix(".log")
    with log_path.open("ab") as log:
        process = subprocess.Popen([*argv, *extra], stdout=log, stderr=log)
    try:
        wait_for(
            lambda: process.poll() is not None or card_present(context), f"the card in {READER}"
        )
        assert process.poll() is None, log_path.read_text()
        connection = next(r for r in readers() if str(r) == READER).createConnection()
        connection.connect(CardConnection.T1_protocol)
    except BaseException:
        # A card left in the reader would hold vpcd's one connection and fail every later test.
        process.kill()
        process.wait(10)
        raise
    return Emulator(card_file, process, connection)


def remove_all(context: int, emulators: list[Emulator]) -> None:
    for emulator in emulators:
        if emulator.process.poll() is None:
            emulator.process.kill()
            emulator.process.wait(10)
    wait_for(lambda: not card_present(context), f"{READER} to be empty again")
