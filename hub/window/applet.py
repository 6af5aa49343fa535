"""The permit card's application: what the chip runs, as a pure function from command APDUs
to response APDUs (the emulator carries them to and from a reader), and the file that keeps
a virtual card's memory between runs.

The command set and its status words are `protocol`'s. Choices the contract leaves open:

- Until a successful SELECT of the card's AID every other command is refused with 6985
  (conditions of use not satisfied), as a multi-application card would. Power off, power on
  and reset (`Applet.reset`) end the selection and drop a pending write nonce; so does a
  new successful SELECT. A failed SELECT changes nothing.
- A command APDU that is not one of ISO 7816-4's four cases (short or extended) is 6700, and
  so is a data field or Le where the command takes none or lacks one it needs: SELECT, PUT
  DATA and INTERNAL AUTHENTICATE need data; READ BINARY, GET DATA, GET CHALLENGE and
  INTERNAL AUTHENTICATE need Le; SELECT takes Le or not (the FCI comes either way). An
  explicit Le shorter than the response is 6700 (READ BINARY aside, which returns what fits).
  Le 00 (or 0000) asks for as much as there is, up to 256 (65,536) bytes.
- P1-P2 other than the ones in the command table is 6A86, except GET DATA, whose P1-P2 names
  the data object: an unknown one is 6A88. READ BINARY with P1 bit 8 set (a short EF
  identifier) is 6A86: the card has one file, read by offset. An offset at or past the end
  of the file is 6B00.

Issuing keys. A blank card trusts the issuing keys it was made with (`blank_card`, from the
hub's JWKS). Each authorised write carries the set it is to trust afterwards, signed with the
record, so a key the hub creates later reaches the card through a key it already trusts, and
a key the hub drops (a compromised one, say) stops working on the card. A set that is empty
or holds anything but P-256 public keys is refused (6A80) rather than lock the card against
every future write. GET DATA 66 lists the kids the card trusts.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from hub.card import layout, protocol
from hub.card.protocol import SW, Ins

IssuingKeys = Mapping[str, ec.EllipticCurvePublicKey]  # kid -> public key, in trust order
Response = tuple[bytes, SW]


@dataclass(frozen=True)
class CardState:
    """What survives power off: the chip's non-volatile memory."""

    private_key: ec.EllipticCurvePrivateKey
    trusted: IssuingKeys
    record: bytes | None = None  # EF.RECORD; None on a blank card

    @property
    def point(self) -> bytes:
        return layout.point_of(self.private_key.public_key())


@dataclass(frozen=True)
class Command:
    """A parsed command APDU. `le` is None when absent; 0 means "the maximum" (Le 00 or
    0000), which is 256 bytes for a short APDU and 65,536 for an extended one."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None
    extended: bool

    @property
    def max_response(self) -> int:
        if self.le:
            return self.le
        return 65_536 if self.extended else 256


class MalformedApdu(ValueError):
    """The bytes are none of ISO 7816-4's command cases."""


def parse_apdu(apdu: bytes) -> Command:
    """Split a command APDU into header, data and Le (cases 1, 2, 3 and 4, short and
    extended); MalformedApdu if the lengths do not add up."""
    if len(apdu) < 4:
        raise MalformedApdu("shorter than a header")
    header, body = apdu[:4], apdu[4:]
    data, le, extended = _body(body)
    return Command(header[0], header[1], header[2], header[3], data, le, extended)


def _body(body: bytes) -> tuple[bytes, int | None, bool]:
    if not body:
        return b"", None, False  # case 1
    if len(body) == 1:
        return b"", body[0], False  # case 2 short
    if body[0] != 0:  # short Lc
        lc = body[0]
        if len(body) in (1 + lc, 2 + lc):
            return body[1 : 1 + lc], body[1 + lc] if len(body) == 2 + lc else None, False
        raise MalformedApdu("short Lc does not match the data")
    if len(body) == 3:
        return b"", int.from_bytes(body[1:3], "big"), True  # case 2 extended
    lc = int.from_bytes(body[1:3], "big")
    if lc and len(body) in (3 + lc, 5 + lc):
        le = int.from_bytes(body[3 + lc :], "big") if len(body) == 5 + lc else None
        return body[3 : 3 + lc], le, True
    raise MalformedApdu("extended Lc does not match the data")


class Refused(Exception):
    """A command ends with this status word and no data."""

    def __init__(self, sw: SW) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


def _forget(state: CardState) -> None:
    """A card that forgets its writes at power off (for tests that need no file)."""


class Applet:
    """The card application: `process` one command APDU, get the response APDU."""

    def __init__(self, state: CardState, persist: Callable[[CardState], None] = _forget) -> None:
        """`persist` is called with the new state before a write is acknowledged, so a 9000
        means the write survives power off; if it raises, the write did not happen."""
        self.state = state
        self._persist = persist
        self._selected = False
        self._nonce: bytes | None = None
        self._handlers: dict[int, Callable[[Command], Response]] = {
            Ins.SELECT: self._select,
            Ins.READ_BINARY: self._read_binary,
            Ins.GET_DATA: self._get_data,
            Ins.GET_CHALLENGE: self._get_challenge,
            Ins.INTERNAL_AUTHENTICATE: self._internal_authenticate,
            Ins.PUT_DATA: self._put_data,
        }

    def reset(self) -> None:
        """Power off, power on or reset: the card keeps nothing of the session."""
        self._selected = False
        self._nonce = None

    def process(self, apdu: bytes) -> bytes:
        try:
            data, sw = self._dispatch(parse_apdu(apdu))
        except MalformedApdu:
            data, sw = b"", SW.WRONG_LENGTH
        except Refused as refusal:
            data, sw = b"", refusal.sw
        return data + sw.to_bytes(2, "big")

    def _dispatch(self, command: Command) -> Response:
        if command.cla != 0x00:
            raise Refused(SW.CLA_NOT_SUPPORTED)
        handler = self._handlers.get(command.ins)
        if handler is None:
            raise Refused(SW.INS_NOT_SUPPORTED)
        if not self._selected and command.ins != Ins.SELECT:
            raise Refused(SW.CONDITIONS_NOT_SATISFIED)
        return handler(command)

    def _select(self, command: Command) -> Response:
        _expect_p1p2(command, 0x04, 0x00)
        if not command.data:
            raise Refused(SW.WRONG_LENGTH)
        if command.data != protocol.AID:
            raise Refused(SW.NOT_FOUND)
        fci = bytes([0x6F, len(protocol.AID) + 2, 0x84, len(protocol.AID)]) + protocol.AID
        response = fci if command.le is None else _fit(fci, command)
        self._selected = True
        self._nonce = None
        return response, SW.OK

    def _read_binary(self, command: Command) -> Response:
        if command.p1 & 0x80:
            raise Refused(SW.WRONG_P1P2)
        le = _expect_no_data(command).le
        record = self.state.record
        if record is None:
            raise Refused(SW.NOT_FOUND)
        offset = command.p1 << 8 | command.p2
        if offset >= len(record):
            raise Refused(SW.WRONG_OFFSET)
        rest = record[offset:]
        if le and le > len(rest):
            return rest, SW.END_OF_FILE
        return rest[: command.max_response], SW.OK

    def _get_data(self, command: Command) -> Response:
        tag = command.p1 << 8 | command.p2
        if tag == protocol.TAG_CARD_KEY:
            value = layout.encode_template(
                layout.DG_CARD_KEY, [layout.CURVE_NAME.encode(), self.state.point]
            )
        elif tag == protocol.TAG_TRUSTED_KIDS:
            value = protocol.encode_kids(list(self.state.trusted))
        else:
            raise Refused(SW.REFERENCE_NOT_FOUND)
        return _fit(value, _expect_no_data(command)), SW.OK

    def _get_challenge(self, command: Command) -> Response:
        _expect_p1p2(command, 0x00, 0x00)
        if _expect_no_data(command).le not in (0, protocol.NONCE_LENGTH):
            raise Refused(SW.WRONG_LENGTH)
        self._nonce = secrets.token_bytes(protocol.NONCE_LENGTH)
        return self._nonce, SW.OK

    def _internal_authenticate(self, command: Command) -> Response:
        _expect_p1p2(command, 0x00, 0x00)
        if command.le is None or not (
            protocol.MIN_CHALLENGE <= len(command.data) <= protocol.MAX_CHALLENGE
        ):
            raise Refused(SW.WRONG_LENGTH)
        signature = self.state.private_key.sign(
            protocol.auth_message(command.data), ec.ECDSA(hashes.SHA256())
        )
        return _fit(signature, command), SW.OK

    def _put_data(self, command: Command) -> Response:
        nonce, self._nonce = self._nonce, None  # any attempt uses the nonce up
        _expect_p1p2(command, 0x01, 0x00)
        if not command.data:
            raise Refused(SW.WRONG_LENGTH)
        if nonce is None:
            raise Refused(SW.CONDITIONS_NOT_SATISFIED)
        try:
            write = protocol.decode_write(command.data)
        except ValueError:
            raise Refused(SW.WRONG_DATA) from None
        state = self._authorised(write, nonce)
        self._persist(state)
        self.state = state
        return b"", SW.OK

    def _authorised(self, write: protocol.WriteCommand, nonce: bytes) -> CardState:
        """The state `write` leads to, once every check of the contract has passed."""
        issuer = self.state.trusted.get(write.kid)
        if issuer is None:
            raise Refused(SW.REFERENCE_NOT_FOUND)
        message = protocol.write_message(self.state.point, nonce, write.record, write.trusted_keys)
        try:
            issuer.verify(write.signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise Refused(SW.SECURITY_NOT_SATISFIED) from None
        try:
            signed = layout.decode(write.record)
        except layout.MalformedRecord:
            raise Refused(SW.WRONG_DATA) from None
        if signed.record.card_key != self.state.point:
            raise Refused(SW.WRONG_DATA)
        try:
            trusted = issuing_keys(json.loads(write.trusted_keys))
        except (ValueError, CardFileError):
            raise Refused(SW.WRONG_DATA) from None
        return replace(self.state, record=write.record, trusted=trusted)


def _expect_p1p2(command: Command, p1: int, p2: int) -> None:
    if (command.p1, command.p2) != (p1, p2):
        raise Refused(SW.WRONG_P1P2)


def _expect_no_data(command: Command) -> Command:
    """A command that only reads: no data field, and an Le to say how much."""
    if command.data or command.le is None:
        raise Refused(SW.WRONG_LENGTH)
    return command


def _fit(data: bytes, command: Command) -> bytes:
    if len(data) > command.max_response:
        raise Refused(SW.WRONG_LENGTH)
    return data


# --- the card file: a virtual card's non-volatile memory as JSON -----------------------------

CARD_FORMAT = "hub-virtual-card/1"


class CardFileError(ValueError):
    """A card file or issuing-key set that cannot be used (the reason is the message)."""


def blank_card(trusted: IssuingKeys) -> CardState:
    """A card fresh from manufacture: its own new key pair, the issuing keys it will accept
    writes from, no record."""
    if not trusted:
        raise CardFileError("a card must trust at least one issuing key")
    return CardState(ec.generate_private_key(ec.SECP256R1()), dict(trusted))


def issuing_keys(jwks: Any) -> dict[str, ec.EllipticCurvePublicKey]:
    """The EC P-256 public keys of a JWK Set ({"keys": [...]}, each with a "kid"), in order."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise CardFileError('the issuing keys are not a JWK Set with a non-empty "keys" list')
    found: dict[str, ec.EllipticCurvePublicKey] = {}
    for jwk in keys:
        kid, key = _issuing_key(jwk)
        if kid in found:
            raise CardFileError(f"issuing key {kid!r} appears twice")
        found[kid] = key
    return found


def _issuing_key(jwk: Any) -> tuple[str, ec.EllipticCurvePublicKey]:
    kid = jwk.get("kid") if isinstance(jwk, dict) else None
    if not isinstance(kid, str) or not kid or "\n" in kid:
        raise CardFileError('an issuing key has no usable "kid"')
    try:
        key = ECKey.import_key(jwk).get_op_key("verify")
    except (JoseError, ValueError, TypeError) as exc:
        raise CardFileError(f"issuing key {kid!r} is not an EC public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CardFileError(f"issuing key {kid!r} is not an EC P-256 public key")
    if "d" in jwk:
        raise CardFileError(f"issuing key {kid!r} includes its private half: give public keys")
    return kid, key


def load_card(path: Path) -> CardState:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CardFileError(f"{path} is not a readable card file ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != CARD_FORMAT:
        raise CardFileError(f"{path} is not a {CARD_FORMAT} card file")
    try:
        return CardState(
            _private_key(document["private_key"]),
            issuing_keys(document["trusted_keys"]),
            _record(document["record"]),
        )
    except (KeyError, TypeError, ValueError, UnsupportedAlgorithm) as exc:
        raise CardFileError(f"{path} is a damaged card file ({exc})") from None


def _private_key(pem: Any) -> ec.EllipticCurvePrivateKey:
    if not isinstance(pem, str):
        raise TypeError("the private key is not PEM text")
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the private key is not an EC P-256 key")
    return key


def _record(text: Any) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError("the record is not base64 text")
    return base64.b64decode(text, validate=True)


def save_card(path: Path, state: CardState) -> None:
    """Write the card file whole or not at all (a temporary file renamed over it), readable
    by its owner only: it holds the card's private key in clear."""
    document = {
        "format": CARD_FORMAT,
        "private_key": state.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "trusted_keys": {
            "keys": [
                ECKey.import_key(key, {"kid": kid}).as_dict(private=False)
                for kid, key in state.trusted.items()
            ]
        },
        "record": None if state.record is None else base64.b64encode(state.record).decode(),
    }
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as file:
            json.dump(document, file, indent=2)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
