"""A virtual permit card in a virtual reader: a vpcd client (the vsmartcard project's protocol).

pcscd's vsmartcard-vpcd driver is the reader; it listens on TCP (127.0.0.1:35963 for
"Virtual PCD 00 00") and the card connects to it, so connecting is inserting the card and
closing the connection is removing it. Every message either way is a 2-byte big-endian length
and a payload. From the reader, a 1-byte payload is a control byte (power off, power on,
reset, or "send your ATR", answered with the ATR); a longer one is a command APDU, answered
with the response APDU.

Latency: the reader writes each message in two parts (length, then payload). With delayed
ACKs on the card's side, the second part waits for the first's ACK, about 40 ms per APDU
on Linux; TCP_QUICKACK, which the kernel clears again after use, is set before every read.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import operator
import socket
import sys
import time

from hub.card import protocol
from hub.window.applet import Applet

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963
POWER_OFF, POWER_ON, RESET, SEND_ATR = 0x00, 0x01, 0x02, 0x04

# PC/SC part 3's form for a contactless card (3B 8n 80 01, historical bytes, TCK): T=1, and
# historical bytes in COMPACT-TLV (category 80) naming the card's application (tag F, its AID)
# with a status indicator (tag 8) of 9000.
_HISTORICAL = bytes([0x80, 0xF0 | len(protocol.AID), *protocol.AID, 0x82, 0x90, 0x00])
_INTERFACE = bytes([0x80 | len(_HISTORICAL), 0x80, 0x01])
ATR = bytes(
    [0x3B, *_INTERFACE, *_HISTORICAL, functools.reduce(operator.xor, _INTERFACE + _HISTORICAL)]
)

_log = logging.getLogger(__name__)


class ReaderUnavailable(ConnectionError):
    """No virtual reader is listening where the card was to be inserted."""


class VirtualCard:
    """The applet, in a reader once `insert`ed; `serve` answers the reader until the card is
    removed (`remove`, safe from a signal handler or another thread) or the reader goes."""

    def __init__(self, applet: Applet, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.applet = applet
        self.address = (host, port)
        self._socket: socket.socket | None = None
        self.removed = False

    def insert(self, patience: float = 5.0) -> None:
        """Connect to the reader, retrying for `patience` seconds while it refuses: pcscd may
        be starting, or restarting. The reader holds one card: while another is in it, this
        connection is accepted but stays silent until that card is removed."""
        deadline = time.monotonic() + patience
        while (connection := self._connect(patience)) is None:
            if time.monotonic() > deadline:
                raise ReaderUnavailable(
                    f"no virtual reader at {self._where} "
                    "(is pcscd running with the vsmartcard-vpcd driver?)"
                )
            time.sleep(0.1)
        connection.settimeout(None)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket = connection

    def serve(self) -> None:
        """Answer the reader until the card is removed or the reader closes the connection
        (then `removed` is False)."""
        reader = self._socket
        if reader is None:
            raise RuntimeError("insert the card before serving the reader")
        with reader, contextlib.suppress(ConnectionError):
            while not self.removed and (message := _receive(reader)) is not None:
                reply = self._answer(message)
                if reply is not None:
                    reader.sendall(len(reply).to_bytes(2, "big") + reply)

    def remove(self) -> None:
        """Take the card out: the blocked `serve` sees the connection end and returns."""
        self.removed = True
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)

    @property
    def _where(self) -> str:
        host, port = self.address
        return f"{host}:{port}"

    def _connect(self, timeout: float) -> socket.socket | None:
        try:
            return socket.create_connection(self.address, timeout=timeout)
        except ConnectionRefusedError:
            return None
        except OSError as exc:
            raise ReaderUnavailable(
                f"cannot reach the virtual reader at {self._where} ({exc})"
            ) from None

    def _answer(self, message: bytes) -> bytes | None:
        if not message:
            _log.warning("empty vpcd message ignored")
            return None
        if len(message) > 1:
            return self.applet.process(message)
        if message[0] == SEND_ATR:
            return ATR
        if message[0] in (POWER_OFF, POWER_ON, RESET):
            self.applet.reset()
        else:
            _log.warning("unknown vpcd control byte %02X ignored", message[0])
        return None


def _receive(reader: socket.socket) -> bytes | None:
    """The next message, or None when the connection has ended."""
    header = _read(reader, 2)
    if header is None:
        return None
    return _read(reader, int.from_bytes(header, "big"))


def _read(reader: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        if sys.platform == "linux":
            reader.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = reader.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)
