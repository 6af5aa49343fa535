"""The citizen ID number (公民身份号码, GB 11643-1999): validated on the way in, sealed at rest.

The number is the key to a person across every department, so the hub treats it as the most
sensitive field it holds. Three rules follow, each enforced here rather than left to callers:

- A number is checked when it enters (`parse_citizen_id`): a mistyped ID would attach proofs and
  permits to the wrong person, or to nobody, and the check digit catches every single typo and
  every swap of neighbouring digits. The refusal names the fault and, via `citizen_id_problem`,
  the field, so the window can fix it at once.
- A `CitizenId` never prints its number: `repr`, `str` and f-strings give a masked form, so a
  stray log line or traceback leaks at most the region code. The clear text is `.value`, an
  explicit read that a reviewer can grep for.
- At rest the number is AES-GCM ciphertext (`CitizenIdVault.seal`) and found by a keyed hash
  (`CitizenIdVault.lookup_hash`), the same hash the audit log uses as its subject, so a database
  dump without the master secret reveals neither the numbers nor which rows share one.

Region codes are checked by shape, not against a table of GB/T 2260 codes: divisions are
renamed and merged every year, but an ID keeps the code it was issued with for life, so a table
would reject real people. The shape rules are in `_check_region`.

This module is pure: no FastAPI, no SQL, no clock reads (`today` is passed in).
"""

from __future__ import annotations

import operator
import os
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.keyring import Keyring, SubjectHasher
from hub.problems import FieldError, Problem, Text, problem_type

INVALID_CITIZEN_ID = problem_type(
    "invalid-citizen-id", 422, "公民身份号码无效", "Invalid citizen ID number"
)

LENGTH: Final = 18
_DIGITS: Final = frozenset("0123456789")
# ISO 7064 MOD 11-2 as GB 11643 specifies it: weight of position i (1-based from the left, 1..17)
# is 2**(18 - i) mod 11, and the check character is the one that makes the weighted sum of all
# 18 characters (X = 10) equal 1 mod 11.
_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ZEROS: Final = ord("0") * sum(_WEIGHTS)
_CHECK_CHARACTERS: Final = "10X98765432"
EARLIEST_BIRTH_DATE: Final = date(1900, 1, 1)
"""No one alive was born earlier; a birth year like 1880 is a typo or a made-up number."""

MAINLAND_PROVINCES: Final = frozenset(
    f"{code:02d}"
    for first, last in ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65))
    for code in range(first, last + 1)
)
"""Province-level codes of GB/T 2260 for the mainland's 31 provinces, regions and cities."""

OTHER_REGIONS: Final = frozenset({"71", "81", "82", "83"})
"""Taiwan (71), and the residence permits of Hong Kong (81), Macao (82) and Taiwan (83) residents,
whose numbers carry the whole region's code, e.g. 810000."""

# Input from a Chinese IME in full-width mode: the same digits and X, each at its ASCII code point
# + 0xFEE0. Mapped one by one rather than by NFKC, which would also turn ² or ① into digits.
_FULL_WIDTH: Final = str.maketrans({chr(ord(c) + 0xFEE0): c for c in "0123456789Xx"})
_REGION_CODE: Final = re.compile("[0-9]{6}")
_CANONICAL: Final = re.compile("[0-9]{17}[0-9X]")
"""The canonical form's characters and length: one match instead of three checks for the
numbers that have it, which are nearly all (every record the hub validates carries one)."""


class IdFault(StrEnum):
    """Why a number was refused; stable values that clients may switch on."""

    LENGTH = "length"
    CHARACTERS = "characters"
    CHECK_DIGIT = "check-digit"
    BIRTH_DATE = "birth-date"
    REGION = "region"


class InvalidCitizenId(ValueError):
    """A refused number. The message never repeats the number, or part of it, so the exception
    can be logged and shown as it is."""

    def __init__(self, reason: IdFault, message: Text) -> None:
        super().__init__(f"{reason.value}: {message.en}")
        self.reason = reason
        self.message = message


class Sex(StrEnum):
    """From the parity of the 17th digit (odd: male), as GB 11643 assigns sequence codes."""

    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True, repr=False, slots=True)
class CitizenId:
    """A valid 18-character citizen ID, in canonical form (upper-case X).

    Constructing one checks everything except "not born in the future", which needs today's date
    and is checked by `parse_citizen_id`, the way in for anything a person typed. The direct
    constructor is for numbers that were valid when stored (e.g. `CitizenIdVault.open`): a number
    stays valid as time passes, and it should not need a clock to be read back.

    Printing shows `masked()`. Only the region code stays visible: it is coarse (a county or
    city, shared by hundreds of thousands), and it is what staff and rules need to see. The last
    four characters, often left visible elsewhere, are not: with the region and the last four
    known, only the birth date is missing, and about 36,500 candidate dates of which the check
    digit rules out ten in eleven take a fraction of a second to try.
    """

    value: str
    """The clear number: read it only to seal it, hash it, or show it to its holder."""

    def __post_init__(self) -> None:
        _check(self.value, today=None)

    @property
    def region_code(self) -> str:
        """The six-digit address code: the county of household registration when the number was
        issued. A number never changes when its holder moves their registration, so rules about
        the *current* household registration (e.g. Chifeng's three districts) must use the
        declared household address, not this."""
        return self.value[:6]

    @property
    def birth_date(self) -> date:
        """Digits 7-14, YYYYMMDD; e.g. for "a minor under 16" rules."""
        born = _birth_date(self.value)
        assert born is not None, "checked on construction"
        return born

    @property
    def sex(self) -> Sex:
        """Odd 17th digit: male; even: female."""
        return Sex.MALE if int(self.value[16]) % 2 else Sex.FEMALE

    def masked(self) -> str:
        """For windows, logs and receipts: the region code, then one `*` per hidden character,
        so it still reads as an 18-character number."""
        return self.value[:6] + "*" * (LENGTH - 6)

    def __str__(self) -> str:
        return self.masked()

    def __repr__(self) -> str:
        return f"CitizenId({self.masked()})"


def parse_citizen_id(text: str, *, today: date) -> CitizenId:
    """Check a number as typed and return it in canonical form, or raise InvalidCitizenId.

    Forgiven, since they are how people and IMEs type: surrounding whitespace, a lower-case x,
    full-width digits. Refused: anything inside the number that is not a digit, including spaces
    ("110105 1949..." is more likely two fields run together than a grouped number).

    Faults are reported in a fixed order: length and characters, then region, birth date and
    finally the check digit. A typo in the region or date is named where it is; the check digit
    is the catch-all for a wrong digit anywhere else.
    """
    value = text.strip().translate(_FULL_WIDTH)
    if value[-1:] == "x":
        value = value[:-1] + "X"
    _check(value, today=today)
    return CitizenId(value)


def citizen_id_problem(error: InvalidCitizenId, pointer: str) -> Problem:
    """The 422 a router returns for a refused number, naming the field by JSON pointer
    (e.g. "/citizen_id", "/guardian/citizen_id") so a form can mark it.

    `reason` is added as an extension for clients that want to act on the fault, e.g. focus the
    birth-date digits; the wording is for people and may change.
    """
    return Problem(
        INVALID_CITIZEN_ID,
        detail=error.message,
        errors=[FieldError(detail=error.message, pointer=pointer)],
        extensions={"reason": error.reason.value},
    )


def is_citizen_id(text: str) -> bool:
    """Whether `text` is a valid citizen ID exactly as stored and exchanged: canonical form
    (upper-case X, no whitespace, ASCII digits), right length, region shape, birth date and check
    digit. The predicate behind the `citizen-id` JSON Schema format.

    Unlike `parse_citizen_id` it forgives nothing: records and proofs are written by programs,
    which must send the canonical form, not by people at a keyboard. It cannot check "not born in
    the future" (no clock here, as for `CitizenId`).
    """
    try:
        _check(text, today=None)
    except InvalidCitizenId:
        return False
    return True


def is_region_code(text: str) -> bool:
    """Whether `text` is six ASCII digits shaped like a GB/T 2260 county-level address code,
    by the rules of `_check_region` (which see for why it is a shape check, not a table look-up).
    The predicate behind the `region-code` JSON Schema format."""
    if _REGION_CODE.fullmatch(text) is None:
        return False
    try:
        _check_region(text)
    except InvalidCitizenId:
        return False
    return True


def _check(value: str, *, today: date | None) -> None:
    """All of GB 11643's rules, in the order `parse_citizen_id` documents."""
    if _CANONICAL.fullmatch(value) is None:
        _check_characters(value)
    _check_region(value[:6])
    _check_birth_date(value, today)
    expected = _check_character(value[:17])
    if value[17] != expected:
        raise InvalidCitizenId(
            IdFault.CHECK_DIGIT,
            Text(
                "公民身份号码校验码不符，请逐位核对",
                "The check digit does not match; please compare the number digit by digit",
            ),
        )


def _check_characters(value: str) -> None:
    """Why a number is not 17 ASCII digits and a digit or X, the first rule it breaks."""
    if any(character.isspace() for character in value):
        raise InvalidCitizenId(
            IdFault.CHARACTERS,
            Text("公民身份号码中不得含有空格", "The citizen ID number must not contain spaces"),
        )
    if len(value) != LENGTH:
        raise InvalidCitizenId(
            IdFault.LENGTH,
            Text(
                f"公民身份号码应为 18 位，实为 {len(value)} 位",
                f"A citizen ID number has 18 characters, not {len(value)}",
            ),
        )
    if not (set(value[:17]) <= _DIGITS and (value[17] in _DIGITS or value[17] == "X")):
        raise InvalidCitizenId(
            IdFault.CHARACTERS,
            Text(
                "公民身份号码前 17 位应为数字，最后一位应为数字或 X",
                "A citizen ID number is 17 digits followed by a digit or X",
            ),
        )


def with_check_character(first17: str) -> str:
    """A number made of 17 ASCII digits and its check character (for generated data)."""
    return first17 + _check_character(first17)


def _check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 over the first 17 digits (ASCII, as `_check` has made sure): over
    their character codes, less what the weighted codes of "0" add up to."""
    total = sum(map(operator.mul, first17.encode("ascii"), _WEIGHTS)) - _ZEROS

    return _CHECK_CHARACTERS[total % 11]


def _check_region(code: str) -> None:
    """The shape of the address code, PPCCDD (province, city, county).

    - PP must be a real province-level code, or 71/81/82/83 (Taiwan, and the residence permits
      of Hong Kong, Macao and Taiwan residents). Those four are accepted with any CCDD: the
      permits use PP0000, and later code tables number Hong Kong's and Macao's districts.
    - A mainland PP0000 is refused: it names a whole province, never a household address.
    - PPCC00 is accepted: prefecture-level cities without counties (Dongguan 441900, Zhongshan
      442000, Jiayuguan 620200) give their residents exactly that code.
    - Nothing else is refused. Without a code table the hub cannot tell a retired code from a
      made-up one, and refusing a real person's lifelong number is worse than accepting a
      fake whose check digit still has to be right.
    """
    province, rest = code[:2], code[2:]
    if province in OTHER_REGIONS:
        return
    if province not in MAINLAND_PROVINCES:
        raise InvalidCitizenId(
            IdFault.REGION,
            Text(
                "公民身份号码前两位不是有效的省级行政区划代码",
                "The first two digits are not a province-level region code",
            ),
        )
    if rest == "0000":
        raise InvalidCitizenId(
            IdFault.REGION,
            Text(
                "公民身份号码前六位只到省级，不是有效的户籍地址码",
                "The first six digits name only a province, not a household address",
            ),
        )


def _birth_date(value: str) -> date | None:
    """Digits 7-14 as a date, or None if they are not one (e.g. 20230229 or 20191301)."""
    try:
        return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def _check_birth_date(value: str, today: date | None) -> None:
    """A real date, from 1900-01-01 to `today` (no upper bound when `today` is None)."""
    born = _birth_date(value)
    if born is None:
        message = Text(
            "公民身份号码第 7 至 14 位不是有效的出生日期",
            "Characters 7-14 are not a valid date of birth",
        )
    elif born < EARLIEST_BIRTH_DATE:
        message = Text(
            "公民身份号码中的出生日期早于 1900 年",
            "The date of birth in the number is before 1900",
        )
    elif today is not None and born > today:
        message = Text(
            "公民身份号码中的出生日期晚于今天",
            "The date of birth in the number is after today",
        )
    else:
        return
    raise InvalidCitizenId(IdFault.BIRTH_DATE, message)


# --- encryption at rest -------------------------------------------------------------------


class CitizenIdUnreadable(ValueError):
    """A sealed number that cannot be opened: altered, truncated, sealed under another key, or
    of a format version this hub does not know. Never guessed around: the row is suspect."""


KEY_SIZE: Final = 32
VERSION: Final = 1
"""First byte of every sealed number. It names the key and format used, so a later hub can hold
the old key under version 1, seal with version 2 and re-seal rows at its own pace."""
_NONCE_SIZE: Final = 12
_PURPOSE: Final = b"citizen-id"


class CitizenIdVault:
    """Seals numbers for storage and computes the keyed hash that finds them again.

    AES-256-GCM with a fresh random 96-bit nonce per seal: sealing one number twice gives two
    unrelated blobs, so equal ciphertexts never reveal equal numbers; look-ups go through
    `lookup_hash` instead. The associated data binds a blob to this purpose and version, so a
    blob of another kind sealed under the same key, or a rewritten version byte, fails to open.

    Layout: version (1 byte) | nonce (12) | ciphertext (18) | tag (16) = 47 bytes.
    """

    __slots__ = ("_aead", "_hasher")

    def __init__(self, encryption_key: bytes, hash_key: bytes) -> None:
        for name, key in (("encryption_key", encryption_key), ("hash_key", hash_key)):
            if len(key) != KEY_SIZE:
                raise ValueError(f"{name} must be {KEY_SIZE} bytes, got {len(key)}")
        if encryption_key == hash_key:
            raise ValueError("encryption_key and hash_key must differ: one key, one purpose")
        self._aead = AESGCM(encryption_key)
        self._hasher = SubjectHasher(hash_key)

    @classmethod
    def from_keyring(cls, keyring: Keyring) -> CitizenIdVault:
        """The hub's vault. The hash key is the audit log's subject key, so the hash that finds
        a holder's row is the subject of that holder's audit entries."""
        return cls(keyring.derive("citizen-id-encryption"), keyring.subject_hasher().key)

    def seal(self, cid: CitizenId) -> bytes:
        """Encrypt for storage; the result contains nothing readable without the key."""
        header = bytes([VERSION])
        nonce = os.urandom(_NONCE_SIZE)
        sealed = self._aead.encrypt(nonce, cid.value.encode("ascii"), _PURPOSE + header)
        return header + nonce + sealed

    def open(self, blob: bytes) -> CitizenId:
        """Decrypt a sealed number, or raise CitizenIdUnreadable saying which check failed."""
        if len(blob) < 1 + _NONCE_SIZE + 16:
            raise CitizenIdUnreadable(f"sealed citizen ID is too short ({len(blob)} bytes)")
        header, nonce, sealed = blob[:1], blob[1 : 1 + _NONCE_SIZE], blob[1 + _NONCE_SIZE :]
        if header[0] != VERSION:
            raise CitizenIdUnreadable(f"sealed citizen ID has unknown version {header[0]}")
        try:
            clear = self._aead.decrypt(nonce, sealed, _PURPOSE + header)
        except InvalidTag:
            raise CitizenIdUnreadable(
                "sealed citizen ID failed authentication: altered, or sealed under another key"
            ) from None
        try:
            return CitizenId(clear.decode("ascii"))
        except (UnicodeDecodeError, InvalidCitizenId):
            # Authentic but not a valid number: sealed by a bug, not an attacker.
            raise CitizenIdUnreadable("sealed citizen ID decrypts to an invalid number") from None

    def lookup_hash(self, cid: CitizenId) -> str:
        """The keyed hash (64 hex characters) to index and find a number by, and the audit
        subject for its holder."""
        return self._hasher(cid.value)

    def __repr__(self) -> str:
        return f"CitizenIdVault(version={VERSION})"
