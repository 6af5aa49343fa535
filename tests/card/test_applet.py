"""The card application APDU by APDU: every command of the contract and every status word it
lists, without a reader (the emulator tests put the same applet behind pcscd)."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from hub.card import layout, protocol
from hub.card.protocol import SW, Ins
from hub.window.applet import (
    Applet,
    CardFileError,
    CardState,
    Command,
    MalformedApdu,
    blank_card,
    issuing_keys,
    load_card,
    parse_apdu,
    save_card,
)
from tests.card.apdus import ISSUER, KID, SELECT, apdu, public_jwks, put_data, record_for, split

OTHER_KID = "card-issuing-2"
OTHER = ec.generate_private_key(ec.SECP256R1())
STRANGER = ec.generate_private_key(ec.SECP256R1())
FCI = bytes([0x6F, 9, 0x84, 7, *protocol.AID])
TRUSTED = {KID: ISSUER.public_key(), OTHER_KID: OTHER.public_key()}


def send(applet: Applet, command: bytes) -> tuple[bytes, int]:
    return split(applet.process(command))


@pytest.fixture
def blank() -> Applet:
    """A selected blank card."""
    applet = Applet(blank_card(TRUSTED))
    assert send(applet, SELECT)[1] == SW.OK
    return applet


@pytest.fixture
def card(blank: Applet) -> Applet:
    """A selected card holding a record of 4 KB or so."""
    blank.state = CardState(blank.state.private_key, TRUSTED, record_for(blank.state.point))
    return blank


def challenge(applet: Applet) -> bytes:
    nonce, sw = send(applet, apdu(Ins.GET_CHALLENGE, le=16))
    assert sw == SW.OK
    return nonce


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "data", "le", "extended"),
    [
        ("00B00000", "", None, False),  # case 1
        ("00B0000010", "", 0x10, False),  # case 2 short
        ("00B0000000", "", 0, False),  # case 2 short, Le 00: up to 256
        ("00B00000000100", "", 0x100, True),  # case 2 extended
        ("00B00000000000", "", 0, True),  # case 2 extended, Le 0000: up to 65,536
        ("00DA010002AABB", "AABB", None, False),  # case 3 short
        ("00DA0100000002AABB", "AABB", None, True),  # case 3 extended
        ("0088000002AABB00", "AABB", 0, False),  # case 4 short
        ("00880000000002AABB0048", "AABB", 0x48, True),  # case 4 extended
    ],
)
def test_the_four_cases_short_and_extended(
    raw: str, data: str, le: int | None, extended: bool
) -> None:
    command = parse_apdu(bytes.fromhex(raw))
    assert (command.data, command.le, command.extended) == (bytes.fromhex(data), le, extended)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "00B000",  # shorter than a header
        "00B0000000AA",  # 00 then one byte: neither case
        "00DA010003AABB",  # short Lc 3, two bytes of data
        "00DA010001AABBCCDD",  # short Lc 1, three bytes after it
        "00DA01000000",  # extended Lc 0
        "00DA0100000003AABB",  # extended Lc 3, two bytes of data
        "00DA0100000001AABB",  # extended Lc 1, a one-byte Le
    ],
)
def test_a_malformed_apdu_is_6700(blank: Applet, raw: str) -> None:
    with pytest.raises(MalformedApdu):
        parse_apdu(bytes.fromhex(raw))
    assert send(blank, bytes.fromhex(raw)) == (b"", SW.WRONG_LENGTH)


def test_the_largest_response_fits_an_extended_le() -> None:
    assert Command(0, 0xB0, 0, 0, b"", 0, True).max_response == 65_536
    assert Command(0, 0xB0, 0, 0, b"", 0, False).max_response == 256
    assert Command(0, 0xB0, 0, 0, b"", 7, True).max_response == 7


# --- selection ------------------------------------------------------------------------------

EVERY_COMMAND = {
    "READ BINARY": apdu(Ins.READ_BINARY, le=0),
    "GET DATA card key": apdu(Ins.GET_DATA, 0x00, 0x64, le=0),
    "GET DATA trusted kids": apdu(Ins.GET_DATA, 0x00, 0x66, le=0),
    "GET CHALLENGE": apdu(Ins.GET_CHALLENGE, le=16),
    "INTERNAL AUTHENTICATE": apdu(Ins.INTERNAL_AUTHENTICATE, data=bytes(16), le=0),
    "PUT DATA": apdu(Ins.PUT_DATA, 0x01, 0x00, b"\x71\x00"),
}


@pytest.mark.parametrize("command", EVERY_COMMAND.values(), ids=EVERY_COMMAND.keys())
def test_nothing_but_select_before_the_application_is_selected(command: bytes) -> None:
    applet = Applet(blank_card(TRUSTED))
    assert send(applet, command) == (b"", SW.CONDITIONS_NOT_SATISFIED)


@pytest.mark.parametrize(
    ("command", "sw"),
    [
        (apdu(0xA4, 0x04, 0x00, protocol.AID, le=0, cla=0x80), SW.CLA_NOT_SUPPORTED),
        (apdu(Ins.READ_BINARY, le=0, cla=0xFF), SW.CLA_NOT_SUPPORTED),
        (apdu(0x20, le=0), SW.INS_NOT_SUPPORTED),  # VERIFY: no PIN on this card
        (apdu(0xB2, le=0), SW.INS_NOT_SUPPORTED),  # READ RECORD: no record files
    ],
)
def test_class_and_instruction_not_supported(command: bytes, sw: SW) -> None:
    applet = Applet(blank_card(TRUSTED))
    assert send(applet, command) == (b"", sw)  # before SELECT
    send(applet, SELECT)
    assert send(applet, command) == (b"", sw)


@pytest.mark.parametrize(
    ("command", "response", "sw"),
    [
        (SELECT, FCI, SW.OK),
        (SELECT[:-1], FCI, SW.OK),  # no Le: the FCI anyway
        (apdu(Ins.SELECT, 0x04, 0x00, protocol.AID, le=11), FCI, SW.OK),
        (apdu(Ins.SELECT, 0x04, 0x00, protocol.AID, le=10), b"", SW.WRONG_LENGTH),
        (apdu(Ins.SELECT, 0x04, 0x00, bytes.fromhex("A0000002471001"), le=0), b"", SW.NOT_FOUND),
        (apdu(Ins.SELECT, 0x04, 0x00, protocol.AID[:-1], le=0), b"", SW.NOT_FOUND),
        (apdu(Ins.SELECT, 0x00, 0x00, protocol.AID, le=0), b"", SW.WRONG_P1P2),
        (apdu(Ins.SELECT, 0x04, 0x0C, protocol.AID), b"", SW.WRONG_P1P2),
        (apdu(Ins.SELECT, 0x04, 0x00, le=0), b"", SW.WRONG_LENGTH),
    ],
)
def test_select(command: bytes, response: bytes, sw: SW) -> None:
    applet = Applet(blank_card(TRUSTED))
    data, status = send(applet, command)
    assert status == sw
    if response:
        assert data == response
    assert send(applet, apdu(Ins.GET_DATA, 0x00, 0x64, le=0))[1] == (
        SW.OK if sw == SW.OK else SW.CONDITIONS_NOT_SATISFIED
    )


def test_a_failed_select_keeps_the_application_selected(card: Applet) -> None:
    assert send(card, apdu(Ins.SELECT, 0x04, 0x00, bytes(7), le=0))[1] == SW.NOT_FOUND
    assert send(card, apdu(Ins.READ_BINARY, le=16))[1] == SW.OK


def test_reset_ends_the_selection_and_the_pending_write(card: Applet) -> None:
    nonce = challenge(card)
    card.reset()
    assert send(card, apdu(Ins.READ_BINARY, le=16)) == (b"", SW.CONDITIONS_NOT_SATISFIED)
    send(card, SELECT)
    write = put_data(card.state.point, nonce, record_for(card.state.point))
    assert send(card, write) == (b"", SW.CONDITIONS_NOT_SATISFIED)


def test_select_again_drops_the_pending_write(card: Applet) -> None:
    nonce = challenge(card)
    send(card, SELECT)
    write = put_data(card.state.point, nonce, record_for(card.state.point))
    assert send(card, write) == (b"", SW.CONDITIONS_NOT_SATISFIED)


# --- READ BINARY --------------------------------------------------------------------------


def _read_cases() -> list[tuple[str, int, int | None, bool, Callable[[bytes], bytes], SW]]:
    """(name, offset, Le, extended, expected data from the record, status word)."""
    return [
        ("short Le 00: 256 bytes", 0, 0, False, lambda r: r[:256], SW.OK),
        ("extended Le 0000: all of it", 0, 0, True, lambda r: r, SW.OK),
        ("short Le 10 at offset 5", 5, 0x10, False, lambda r: r[5:21], SW.OK),
        ("extended Le 0100 at 300", 300, 0x100, True, lambda r: r[300:556], SW.OK),
        ("extended Le 0001 at 0", 0, 1, True, lambda r: r[:1], SW.OK),
        ("extended Le FFFF: past the end", 0, 0xFFFF, True, lambda r: r, SW.END_OF_FILE),
        ("short Le 00 near the end", -10, 0, False, lambda r: r[-10:], SW.OK),
        ("extended Le 0000 near the end", -10, 0, True, lambda r: r[-10:], SW.OK),
        ("short Le 20 near the end", -10, 0x20, False, lambda r: r[-10:], SW.END_OF_FILE),
        ("exactly to the end", -10, 10, False, lambda r: r[-10:], SW.OK),
        ("offset at the end", 0, 0, False, lambda r: b"", SW.WRONG_OFFSET),
        ("offset past the end", 0x7FFF, 0, True, lambda r: b"", SW.WRONG_OFFSET),
    ]


@pytest.mark.parametrize(
    ("offset", "le", "extended", "expected", "sw"),
    [case[1:] for case in _read_cases()],
    ids=[case[0] for case in _read_cases()],
)
def test_read_binary(
    card: Applet,
    offset: int,
    le: int | None,
    extended: bool,
    expected: Callable[[bytes], bytes],
    sw: SW,
) -> None:
    record = card.state.record
    assert record is not None and len(record) > 600
    if offset < 0:
        offset += len(record)
    if sw == SW.WRONG_OFFSET and offset == 0:
        offset = len(record)
    command = apdu(Ins.READ_BINARY, offset >> 8, offset & 0xFF, le=le, extended=extended)
    assert send(card, command) == (expected(record), sw)


@pytest.mark.parametrize(
    ("command", "sw"),
    [
        (apdu(Ins.READ_BINARY), SW.WRONG_LENGTH),  # no Le
        (apdu(Ins.READ_BINARY, data=b"\x54\x00", le=0), SW.WRONG_LENGTH),
        (apdu(Ins.READ_BINARY, 0x81, 0x00, le=0), SW.WRONG_P1P2),  # short EF identifier 1
    ],
)
def test_read_binary_refusals(card: Applet, command: bytes, sw: SW) -> None:
    assert send(card, command) == (b"", sw)


def test_a_reader_reassembles_the_file_from_short_reads(card: Applet) -> None:
    data = b""
    while True:
        chunk, sw = send(card, apdu(Ins.READ_BINARY, len(data) >> 8, len(data) & 0xFF, le=0))
        if sw == SW.WRONG_OFFSET:
            break
        assert sw == SW.OK
        data += chunk
    assert data == card.state.record


def test_a_blank_card_has_no_file(blank: Applet) -> None:
    assert send(blank, apdu(Ins.READ_BINARY, le=0)) == (b"", SW.NOT_FOUND)


# --- GET DATA, GET CHALLENGE, INTERNAL AUTHENTICATE -------------------------------------------


def test_get_data_card_key(blank: Applet) -> None:
    data, sw = send(blank, apdu(Ins.GET_DATA, 0x00, 0x64, le=0))
    assert sw == SW.OK
    curve, point = layout.decode_template(data, layout.DG_CARD_KEY, 2)
    assert curve == b"P-256"
    assert layout.public_key_from_point(point) == blank.state.private_key.public_key()


def test_get_data_trusted_kids(blank: Applet) -> None:
    data, sw = send(blank, apdu(Ins.GET_DATA, 0x00, 0x66, le=0, extended=True))
    assert sw == SW.OK
    assert protocol.decode_kids(data) == (KID, OTHER_KID)


@pytest.mark.parametrize(
    ("command", "sw"),
    [
        (apdu(Ins.GET_DATA, 0x00, 0x65, le=0), SW.REFERENCE_NOT_FOUND),
        (apdu(Ins.GET_DATA, 0x01, 0x64, le=0), SW.REFERENCE_NOT_FOUND),
        (apdu(Ins.GET_DATA, 0x00, 0x64), SW.WRONG_LENGTH),  # no Le
        (apdu(Ins.GET_DATA, 0x00, 0x64, le=0x10), SW.WRONG_LENGTH),  # DG4 is 76 bytes
        (apdu(Ins.GET_DATA, 0x00, 0x66, b"\x66\x00", le=0), SW.WRONG_LENGTH),
    ],
)
def test_get_data_refusals(blank: Applet, command: bytes, sw: SW) -> None:
    assert send(blank, command) == (b"", sw)


@pytest.mark.parametrize(
    "command",
    [
        apdu(Ins.GET_CHALLENGE, le=16),
        apdu(Ins.GET_CHALLENGE, le=0),
        apdu(0x84, le=16, extended=True),
    ],
)
def test_get_challenge_gives_a_fresh_nonce(blank: Applet, command: bytes) -> None:
    first, second = send(blank, command), send(blank, command)
    assert first[1] == second[1] == SW.OK
    assert len(first[0]) == len(second[0]) == protocol.NONCE_LENGTH
    assert first[0] != second[0]


@pytest.mark.parametrize(
    ("command", "sw"),
    [
        (apdu(Ins.GET_CHALLENGE, le=8), SW.WRONG_LENGTH),
        (apdu(Ins.GET_CHALLENGE), SW.WRONG_LENGTH),
        (apdu(Ins.GET_CHALLENGE, data=bytes(16), le=16), SW.WRONG_LENGTH),
        (apdu(Ins.GET_CHALLENGE, 0x00, 0x01, le=16), SW.WRONG_P1P2),
    ],
)
def test_get_challenge_refusals(blank: Applet, command: bytes, sw: SW) -> None:
    assert send(blank, command) == (b"", sw)


@pytest.mark.parametrize(("size", "extended"), [(16, False), (32, True), (64, False)])
def test_internal_authenticate_signs_the_challenge(
    blank: Applet, size: int, extended: bool
) -> None:
    challenge_bytes = bytes(range(size))
    command = apdu(Ins.INTERNAL_AUTHENTICATE, data=challenge_bytes, le=0, extended=extended)
    signature, sw = send(blank, command)
    assert sw == SW.OK
    key_data, _ = send(blank, apdu(Ins.GET_DATA, 0x00, 0x64, le=0))
    point = layout.decode_template(key_data, layout.DG_CARD_KEY, 2)[1]
    layout.public_key_from_point(point).verify(
        signature, protocol.auth_message(challenge_bytes), ec.ECDSA(hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("command", "sw"),
    [
        (apdu(Ins.INTERNAL_AUTHENTICATE, data=bytes(15), le=0), SW.WRONG_LENGTH),
        (apdu(Ins.INTERNAL_AUTHENTICATE, data=bytes(65), le=0), SW.WRONG_LENGTH),
        (apdu(Ins.INTERNAL_AUTHENTICATE, data=bytes(16)), SW.WRONG_LENGTH),  # no Le
        (apdu(Ins.INTERNAL_AUTHENTICATE, le=0), SW.WRONG_LENGTH),  # no challenge
        (apdu(Ins.INTERNAL_AUTHENTICATE, data=bytes(16), le=8), SW.WRONG_LENGTH),
        (apdu(Ins.INTERNAL_AUTHENTICATE, 0x00, 0x81, bytes(16), le=0), SW.WRONG_P1P2),
    ],
)
def test_internal_authenticate_refusals(blank: Applet, command: bytes, sw: SW) -> None:
    assert send(blank, command) == (b"", sw)


# --- PUT DATA -------------------------------------------------------------------------------


def test_an_authorised_write_replaces_the_record_and_the_trusted_kids(blank: Applet) -> None:
    saved: list[CardState] = []
    applet = Applet(blank.state, saved.append)
    send(applet, SELECT)
    record = record_for(applet.state.point, photo_size=layout.MAX_PHOTO_BYTES)
    write = put_data(applet.state.point, challenge(applet), record, trusted={OTHER_KID: OTHER})
    assert send(applet, write) == (b"", SW.OK)
    assert send(applet, apdu(Ins.READ_BINARY, le=0, extended=True)) == (record, SW.OK)
    kids, _ = send(applet, apdu(Ins.GET_DATA, 0x00, 0x66, le=0))
    assert protocol.decode_kids(kids) == (OTHER_KID,)
    assert saved == [applet.state]


OTHER_CARD = layout.point_of(STRANGER.public_key())
Make = Callable[[bytes, bytes], bytes]  # (card point, nonce) -> PUT DATA APDU


def _forged_keys(point: bytes, nonce: bytes) -> bytes:
    """A genuine authorisation whose trusted keys were changed after signing."""
    genuine = protocol.decode_write(put_data(point, nonce, record_for(point))[7:])
    rogue = json.dumps(public_jwks({KID: ISSUER, "rogue": STRANGER})).encode()
    forged = protocol.WriteCommand(genuine.record, genuine.kid, genuine.signature, rogue)
    return apdu(Ins.PUT_DATA, 0x01, 0x00, protocol.encode_write(forged))


PUT_DATA_REFUSALS: dict[str, tuple[Make, SW]] = {
    "unknown kid": (
        lambda p, n: put_data(p, n, record_for(p), kid="rogue", key=STRANGER),
        SW.REFERENCE_NOT_FOUND,
    ),
    "signed by another key under a trusted kid": (
        lambda p, n: put_data(p, n, record_for(p), key=STRANGER),
        SW.SECURITY_NOT_SATISFIED,
    ),
    "signed for another nonce": (
        lambda p, n: put_data(p, bytes(16), record_for(p)),
        SW.SECURITY_NOT_SATISFIED,
    ),
    "signed for another card": (
        lambda p, n: put_data(OTHER_CARD, n, record_for(p)),
        SW.SECURITY_NOT_SATISFIED,
    ),
    "trusted keys changed after signing": (_forged_keys, SW.SECURITY_NOT_SATISFIED),
    "record of another card (DG4)": (
        lambda p, n: put_data(p, n, record_for(OTHER_CARD)),
        SW.WRONG_DATA,
    ),
    "record that does not decode": (
        lambda p, n: put_data(p, n, record_for(p)[:-1]),
        SW.WRONG_DATA,
    ),
    "not a write command": (
        lambda p, n: apdu(Ins.PUT_DATA, 0x01, 0x00, bytes.fromhex("7003800100")),
        SW.WRONG_DATA,
    ),
    "a write command of three fields": (
        lambda p, n: apdu(
            Ins.PUT_DATA, 0x01, 0x00, layout.encode_template(0x11, [b"r", b"k", b"s"])
        ),
        SW.WRONG_DATA,
    ),
    "a field length longer than memory": (
        lambda p, n: apdu(Ins.PUT_DATA, 0x01, 0x00, bytes.fromhex("7182014080EA") + bytes(300)),
        SW.WRONG_DATA,
    ),
    "trusted keys that are not JSON": (
        lambda p, n: put_data(p, n, record_for(p), trusted_keys=b"\xff not json"),
        SW.WRONG_DATA,
    ),
    "trusting nothing": (
        lambda p, n: put_data(p, n, record_for(p), trusted_keys=b'{"keys": []}'),
        SW.WRONG_DATA,
    ),
    "trusting a private key": (
        lambda p, n: put_data(
            p,
            n,
            record_for(p),
            trusted_keys=json.dumps(
                {"keys": [ECKey.import_key(STRANGER, {"kid": "x"}).as_dict(private=True)]}
            ).encode(),
        ),
        SW.WRONG_DATA,
    ),
    "no data": (lambda p, n: apdu(Ins.PUT_DATA, 0x01, 0x00), SW.WRONG_LENGTH),
    "no data, with Le": (lambda p, n: apdu(Ins.PUT_DATA, 0x01, 0x00, le=0), SW.WRONG_LENGTH),
    "wrong P1-P2": (
        lambda p, n: apdu(Ins.PUT_DATA, 0x00, 0x66, put_data(p, n, record_for(p))[7:]),
        SW.WRONG_P1P2,
    ),
}


@pytest.mark.parametrize(
    ("make", "sw"), PUT_DATA_REFUSALS.values(), ids=list(PUT_DATA_REFUSALS.keys())
)
def test_a_refused_write_changes_nothing_and_uses_the_nonce_up(
    card: Applet, make: Make, sw: SW
) -> None:
    before = card.state
    nonce = challenge(card)
    assert send(card, make(card.state.point, nonce)) == (b"", sw)
    assert card.state is before
    genuine = put_data(card.state.point, nonce, record_for(card.state.point))
    assert send(card, genuine) == (b"", SW.CONDITIONS_NOT_SATISFIED)


def test_a_write_needs_a_challenge_first(card: Applet) -> None:
    write = put_data(card.state.point, bytes(16), record_for(card.state.point))
    assert send(card, write) == (b"", SW.CONDITIONS_NOT_SATISFIED)


def test_a_write_may_carry_le(card: Applet) -> None:
    write = put_data(card.state.point, challenge(card), record_for(card.state.point))
    assert send(card, write + b"\x00\x00") == (b"", SW.OK)


def test_a_nonce_authorises_one_write(card: Applet) -> None:
    write = put_data(card.state.point, challenge(card), record_for(card.state.point))
    assert send(card, write) == (b"", SW.OK)
    assert send(card, write) == (b"", SW.CONDITIONS_NOT_SATISFIED)


def test_reading_between_challenge_and_write_keeps_the_nonce(card: Applet) -> None:
    nonce = challenge(card)
    send(card, apdu(Ins.READ_BINARY, le=0))
    send(card, apdu(Ins.INTERNAL_AUTHENTICATE, data=bytes(16), le=0))
    write = put_data(card.state.point, nonce, record_for(card.state.point))
    assert send(card, write) == (b"", SW.OK)


def test_a_write_rolls_the_cards_issuing_keys(card: Applet) -> None:
    """A key the hub made after the card reaches it through a key the card trusts; a key
    left out of the new set no longer authorises writes."""
    record = record_for(card.state.point)
    rolled = {"2027-new-key": STRANGER}
    write = put_data(card.state.point, challenge(card), record, trusted=rolled)
    assert send(card, write) == (b"", SW.OK)
    assert list(card.state.trusted) == ["2027-new-key"]
    kids, _ = send(card, apdu(Ins.GET_DATA, 0x00, 0x66, le=0))
    assert protocol.decode_kids(kids) == ("2027-new-key",)
    retired = put_data(card.state.point, challenge(card), record)  # signed by KID
    assert send(card, retired) == (b"", SW.REFERENCE_NOT_FOUND)
    by_new = put_data(
        card.state.point, challenge(card), record, kid="2027-new-key", key=STRANGER, trusted=rolled
    )
    assert send(card, by_new) == (b"", SW.OK)


def test_a_write_that_cannot_be_saved_does_not_happen(card: Applet) -> None:
    def fail(state: CardState) -> None:
        raise OSError("disk full")

    applet = Applet(card.state, fail)
    send(applet, SELECT)
    write = put_data(
        applet.state.point, challenge(applet), record_for(applet.state.point, photo_size=256)
    )
    with pytest.raises(OSError, match="disk full"):
        applet.process(write)
    assert applet.state is card.state


# --- the card file --------------------------------------------------------------------------


def test_the_card_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    state = blank_card(TRUSTED)
    save_card(path, state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_card(path)
    assert loaded.point == state.point and loaded.record is None
    assert list(loaded.trusted) == [KID, OTHER_KID]
    assert loaded.trusted[KID] == ISSUER.public_key()


def test_every_accepted_write_is_saved_at_once(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    save_card(path, blank_card(TRUSTED))
    applet = Applet(load_card(path), lambda state: save_card(path, state))
    send(applet, SELECT)
    record = record_for(applet.state.point)
    assert send(applet, put_data(applet.state.point, challenge(applet), record))[1] == SW.OK
    again = Applet(load_card(path))
    send(again, SELECT)
    assert send(again, apdu(Ins.READ_BINARY, le=0, extended=True)) == (record, SW.OK)
    assert list(again.state.trusted) == [KID]
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]  # no temporary file left
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json", "not a readable card file"),
        ('{"format": "other"}', "not a hub-virtual-card/1 card file"),
        ('{"format": "hub-virtual-card/1"}', "damaged"),
        ('{"format": "hub-virtual-card/1", "private_key": 5, "record": null}', "damaged"),
    ],
)
def test_a_damaged_card_file_is_refused(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "card.json"
    path.write_text(content)
    with pytest.raises(CardFileError, match=words):
        load_card(path)


def test_a_card_file_with_a_bad_record_or_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    save_card(path, blank_card(TRUSTED))
    document = json.loads(path.read_text())
    for field, value in [("record", "***"), ("private_key", "-----BEGIN PRIVATE KEY-----")]:
        path.write_text(json.dumps({**document, field: value}))
        with pytest.raises(CardFileError, match="damaged"):
            load_card(path)


def _jwk(key: ec.EllipticCurvePrivateKey, **extra: str) -> dict[str, object]:
    jwks = public_jwks({"k": key})
    keys = jwks["keys"]
    assert isinstance(keys, list)
    return {**keys[0], **extra}


@pytest.mark.parametrize(
    ("jwks", "words"),
    [
        ([], "not a JWK Set"),
        ({"keys": []}, "not a JWK Set"),
        ({"keys": [{"kty": "EC"}]}, 'no usable "kid"'),
        ({"keys": [_jwk(ISSUER, kid="")]}, 'no usable "kid"'),
        ({"keys": [_jwk(ISSUER, kid="a\nb")]}, 'no usable "kid"'),
        ({"keys": [_jwk(ISSUER), _jwk(OTHER)]}, "appears twice"),
        ({"keys": [_jwk(ISSUER, x="AAAA")]}, "not an EC public key"),
        ({"keys": [{"kty": "oct", "k": "AAAA", "kid": "s"}]}, "not an EC public key"),
        (
            {"keys": [_jwk(ec.generate_private_key(ec.SECP384R1()))]},
            "not an EC P-256 public key",
        ),
        ({"keys": [ECKey.import_key(ISSUER, {"kid": "k"}).as_dict(private=True)]}, "private half"),
    ],
)
def test_issuing_keys_refuses_what_a_card_cannot_use(jwks: object, words: str) -> None:
    with pytest.raises(CardFileError, match=words):
        issuing_keys(jwks)


def test_a_card_must_trust_some_issuing_key() -> None:
    with pytest.raises(CardFileError, match="at least one"):
        blank_card({})
