"""The permit card as seen through a PC/SC reader (pyscard), for the card writer and the window.

Only this module and the window agent import pyscard, so the hub serves without it. Every
failure a person at a window can meet (no reader, no card, the card pulled out mid-read, a
mute or foreign card, a refusal by the card) becomes a `CardError` with a sentence in
Chinese and English; nothing from the PC/SC layer escapes raw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import CardConnectionException, NoCardException, SmartcardException
from smartcard.System import readers as pcsc_readers

from hub.card import layout, protocol
from hub.card.protocol import SW, Ins

EXTENDED_MAX = 65536  # Le 0000 in an extended APDU: "as much as there is"


class CardError(Exception):
    """Something at the reader went wrong; `zh` and `en` say what, for the clerk."""

    def __init__(self, zh: str, en: str, sw: int | None = None) -> None:
        super().__init__(en)
        self.zh, self.en, self.sw = zh, en, sw


NO_READER = CardError("未找到读卡器", "No card reader found")
CARD_LOST = CardError(
    "读卡时卡被移开，请重新放卡", "The card was removed while being read; tap again"
)
MUTE = CardError("卡片无响应或不是居住证卡", "The card does not answer or is not a permit card")


def command(ins: int, p1: int = 0, p2: int = 0, data: bytes = b"", ne: int = 0) -> bytes:
    """An ISO 7816-4 command APDU (CLA 00): short when it fits, extended otherwise.
    `ne` is the number of response bytes expected (0: none)."""
    header = bytes([0x00, ins, p1, p2])
    if len(data) <= 255 and ne <= 256:
        body = (bytes([len(data)]) + data) if data else b""
        return header + body + (bytes([ne % 256]) if ne else b"")
    lc = (b"\x00" + len(data).to_bytes(2, "big") + data) if data else b""
    if not ne:
        return header + lc
    le = (ne % EXTENDED_MAX).to_bytes(2, "big")
    return header + lc + (le if data else b"\x00" + le)


@dataclass
class CardLink:
    """A connected card; `apdus` counts the commands sent (the tap budget is four)."""

    connection: CardConnection
    apdus: int = field(default=0)

    def send(self, apdu: bytes, *, accept: tuple[int, ...] = (SW.OK,)) -> bytes:
        self.apdus += 1
        try:
            data, sw1, sw2 = self.connection.transmit(list(apdu))
        except (NoCardException, CardConnectionException):
            raise CARD_LOST from None
        except SmartcardException:
            raise MUTE from None
        sw = (sw1 << 8) | sw2
        if sw not in accept:
            raise _refused(sw)
        return bytes(data)

    def select(self) -> None:
        try:
            self.send(command(Ins.SELECT, 0x04, 0x00, protocol.AID, ne=256))
        except CardError as error:
            if error.sw == SW.NOT_FOUND:
                raise MUTE from None
            raise

    def read_record(self) -> bytes:
        """EF.RECORD in one extended READ BINARY."""
        return self.send(
            command(Ins.READ_BINARY, 0, 0, ne=EXTENDED_MAX), accept=(SW.OK, SW.END_OF_FILE)
        )

    def authenticate(self, challenge: bytes) -> bytes:
        return self.send(command(Ins.INTERNAL_AUTHENTICATE, 0, 0, challenge, ne=256))

    def card_key(self) -> bytes:
        data = self.send(command(Ins.GET_DATA, 0x00, protocol.TAG_CARD_KEY, ne=256))
        _curve, point = layout.decode_template(data, layout.DG_CARD_KEY, 2)
        return point

    def trusted_kids(self) -> tuple[str, ...]:
        data = self.send(command(Ins.GET_DATA, 0x00, protocol.TAG_TRUSTED_KIDS, ne=256))
        return protocol.decode_kids(data)

    def write_nonce(self) -> bytes:
        return self.send(command(Ins.GET_CHALLENGE, 0, 0, ne=protocol.NONCE_LENGTH))

    def put_data(self, write: bytes) -> None:
        self.send(command(Ins.PUT_DATA, 0x01, 0x00, write))


_REFUSALS: dict[int, tuple[str, str]] = {
    SW.SECURITY_NOT_SATISFIED: ("卡片拒绝：未获授权", "the card refused: not authorised"),
    SW.CONDITIONS_NOT_SATISFIED: ("卡片拒绝：条件不满足", "the card refused: conditions not met"),
    SW.WRONG_DATA: ("卡片拒绝：数据有误", "the card refused: wrong data"),
    SW.NOT_FOUND: ("卡内没有居住证数据", "the card holds no permit data"),
    SW.REFERENCE_NOT_FOUND: ("卡片不认识该密钥", "the card does not know that key"),
}


def _refused(sw: int) -> CardError:
    zh, en = _REFUSALS.get(sw, ("卡片返回错误", "the card answered with an error"))
    return CardError(f"{zh}（状态字 {sw:04X}）", f"{en} (status word {sw:04X})", sw)


def reader_names() -> list[str]:
    try:
        return [str(reader) for reader in pcsc_readers()]
    except SmartcardException:
        return []  # pcscd not running: no readers, as far as a window can tell


def connect(reader_name: str | None = None) -> CardLink:
    """The card in `reader_name` (default: the first reader), connected and selected."""
    try:
        available = pcsc_readers()
    except SmartcardException:
        raise NO_READER from None
    chosen = [r for r in available if reader_name is None or str(r) == reader_name]
    if not chosen:
        raise NO_READER
    connection = chosen[0].createConnection()
    try:
        connection.connect()
    except NoCardException:
        raise CardError("读卡器上没有卡", "No card on the reader") from None
    except (CardConnectionException, SmartcardException):
        raise MUTE from None
    link = CardLink(connection)
    link.select()
    return link
