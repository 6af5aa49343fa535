"""Citizen ID numbers: GB 11643 checks, the 422 problem, masking and encryption at rest.

Valid numbers are built here with `with_check`, which derives the MOD 11-2 check character from
its definition (weight 2**(18-i) mod 11; the full weighted sum must be 1 mod 11) rather than
from the module's tables, and is itself pinned to the two examples printed in GB 11643.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import date, timedelta

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.keyring import Keyring
from hub.permits.identity import (
    INVALID_CITIZEN_ID,
    VERSION,
    CitizenId,
    CitizenIdUnreadable,
    CitizenIdVault,
    IdFault,
    InvalidCitizenId,
    Sex,
    citizen_id_problem,
    parse_citizen_id,
)
from tests.factories import build, with_check

TODAY = date(2024, 5, 20)
GB_EXAMPLE = "11010519491231002X"  # GB 11643-1999's example: Beijing Chaoyang, 1949-12-31, female
GB_EXAMPLE_1880 = "440524188001010014"  # the standard's other example, born 1880
ENCRYPTION_KEY = bytes(range(32))
HASH_KEY = bytes(range(32, 64))


def with_x_check(region: str, born: str) -> str:
    """The first number with these parts whose check character is X."""
    return next(
        number
        for sequence in range(1000)
        if (number := build(region, born, f"{sequence:03d}")).endswith("X")
    )


def full_width(text: str) -> str:
    """ASCII digits and letters as their full-width forms (U+FF10 and on)."""
    return "".join(chr(ord(character) + 0xFEE0) for character in text)


def parse(text: str) -> CitizenId:
    return parse_citizen_id(text, today=TODAY)


def refusal(text: str) -> InvalidCitizenId:
    with pytest.raises(InvalidCitizenId) as caught:
        parse(text)
    return caught.value


# --- the check-digit helper itself -----------------------------------------------------------


@pytest.mark.parametrize("number", [GB_EXAMPLE, GB_EXAMPLE_1880])
def test_the_test_helper_reproduces_the_standards_examples(number: str) -> None:
    assert with_check(number[:17]) == number


# --- valid numbers ---------------------------------------------------------------------------


VALID = [
    # number, region, birth date, sex
    (GB_EXAMPLE, "110105", date(1949, 12, 31), Sex.FEMALE),
    (build("150402", "19850615", "013"), "150402", date(1985, 6, 15), Sex.MALE),  # Hongshan
    (build("310104", "20000229", "025"), "310104", date(2000, 2, 29), Sex.MALE),  # leap day
    (build("441900", "19921103", "551"), "441900", date(1992, 11, 3), Sex.MALE),  # Dongguan
    (build("650102", "19700101", "468"), "650102", date(1970, 1, 1), Sex.FEMALE),  # Urumqi
    (build("469003", "19630708", "237"), "469003", date(1963, 7, 8), Sex.MALE),  # Danzhou
    (build("810000", "19880808", "002"), "810000", date(1988, 8, 8), Sex.FEMALE),  # HK permit
    (build("820000", "19990101", "019"), "820000", date(1999, 1, 1), Sex.MALE),  # Macao permit
    (build("830000", "19751212", "114"), "830000", date(1975, 12, 12), Sex.FEMALE),  # Taiwan
    (build("710000", "19560304", "031"), "710000", date(1956, 3, 4), Sex.MALE),
    (with_x_check("370202", "20080315"), "370202", date(2008, 3, 15), None),  # X check digit
    (build("110101", "19000101"), "110101", date(1900, 1, 1), Sex.MALE),  # earliest allowed
    (build("110101", TODAY.strftime("%Y%m%d"), "002"), "110101", TODAY, Sex.FEMALE),  # newborn
]


@pytest.mark.parametrize(("number", "region", "born", "sex"), VALID)
def test_valid_numbers_parse_with_their_parts(
    number: str, region: str, born: date, sex: Sex | None
) -> None:
    cid = parse(number)
    assert cid.value == number
    assert cid.region_code == region
    assert cid.birth_date == born
    if sex is not None:
        assert cid.sex == sex
    assert cid == CitizenId(number)


def test_the_x_case_really_ends_in_x() -> None:
    assert with_x_check("370202", "20080315").endswith("X")
    assert any(number.endswith("X") for number, *_ in VALID)


@pytest.mark.parametrize(
    ("seventeenth", "sex"),
    [(str(digit), Sex.MALE if digit % 2 else Sex.FEMALE) for digit in range(10)],
)
def test_sex_follows_the_parity_of_the_17th_digit(seventeenth: str, sex: Sex) -> None:
    cid = parse(build("320106", "19810407", "10" + seventeenth))
    assert cid.sex == sex
    assert cid.sex == sex.value  # a StrEnum: compares as "male" / "female"


@pytest.mark.parametrize(
    "typed",
    [
        "11010519491231002x",  # lower-case x
        "  11010519491231002X\n",  # surrounding whitespace
        "\u300011010519491231002x\t",  # ideographic space around it
        full_width(GB_EXAMPLE),  # as a Chinese IME in full-width mode types it
        full_width(GB_EXAMPLE.lower()) + "\u3000",
    ],
)
def test_typing_variants_normalise_to_the_canonical_number(typed: str) -> None:
    assert parse(typed).value == GB_EXAMPLE


# --- refused numbers -------------------------------------------------------------------------


REFUSED = [
    # label, text, fault
    ("17 digits", GB_EXAMPLE[:17], IdFault.LENGTH),
    ("19 characters", GB_EXAMPLE + "1", IdFault.LENGTH),
    ("old 15-digit number", "110105491231002", IdFault.LENGTH),
    ("empty", "", IdFault.LENGTH),
    ("only whitespace", "   ", IdFault.LENGTH),
    ("letter inside", "1101051949A231002X", IdFault.CHARACTERS),
    ("letter as check", "11010519491231002A", IdFault.CHARACTERS),
    ("X not last", "1101051949123100X2", IdFault.CHARACTERS),
    ("lower-case x inside", "1101051949123100x2", IdFault.CHARACTERS),
    ("all letters", "ABCDEFGHIJKLMNOPQR", IdFault.CHARACTERS),
    ("inner space", "110105 19491231002X", IdFault.CHARACTERS),
    ("inner space, 18 long", "110105 9491231002X", IdFault.CHARACTERS),
    ("inner tab", "110105\t19491231002X", IdFault.CHARACTERS),
    ("Arabic-Indic digit", "\u066110105194912310029", IdFault.CHARACTERS),
    ("hyphenated", "110105-1949123100X", IdFault.CHARACTERS),
    ("check digit off by one", GB_EXAMPLE[:17] + "9", IdFault.CHECK_DIGIT),
    ("X where a digit belongs", build("150402", "19850615", "013")[:17] + "X", IdFault.CHECK_DIGIT),
    ("adjacent digits swapped", "11010519491231020X", IdFault.CHECK_DIGIT),
    ("one digit mistyped", "11010619491231002X", IdFault.CHECK_DIGIT),
    ("1900 not a leap year", build("110101", "19000229"), IdFault.BIRTH_DATE),
    ("2023 not a leap year", build("110101", "20230229"), IdFault.BIRTH_DATE),
    ("month 13", build("110101", "20191301"), IdFault.BIRTH_DATE),
    ("month 00", build("110101", "20190010"), IdFault.BIRTH_DATE),
    ("April 31", build("110101", "20190431"), IdFault.BIRTH_DATE),
    ("day 00", build("110101", "20190400"), IdFault.BIRTH_DATE),
    (
        "tomorrow",
        build("110101", (TODAY + timedelta(days=1)).strftime("%Y%m%d")),
        IdFault.BIRTH_DATE,
    ),
    ("next century", build("110101", "21010101"), IdFault.BIRTH_DATE),
    ("before 1900", build("110101", "18991231"), IdFault.BIRTH_DATE),
    ("the standard's 1880 example", GB_EXAMPLE_1880, IdFault.BIRTH_DATE),
    ("province 99", build("990101", "19850615"), IdFault.REGION),
    ("province 00", build("000101", "19850615"), IdFault.REGION),
    ("gap between ranges: 16", build("160101", "19850615"), IdFault.REGION),
    ("gap between ranges: 38", build("380101", "19850615"), IdFault.REGION),
    ("72 is not Taiwan", build("720000", "19850615"), IdFault.REGION),
    ("province only", build("110000", "19850615"), IdFault.REGION),
    ("province only, Inner Mongolia", build("150000", "19850615"), IdFault.REGION),
]


@pytest.mark.parametrize(
    ("text", "fault"), [(text, fault) for _, text, fault in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_refused_numbers_name_their_fault(text: str, fault: IdFault) -> None:
    error = refusal(text)
    assert error.reason is fault
    assert error.message.zh and error.message.en
    assert error.message.zh != error.message.en


@pytest.mark.parametrize(
    "text", [text for _, text, _ in REFUSED if len(text.strip()) >= 6], ids=lambda text: text
)
def test_refusals_never_repeat_the_number(text: str) -> None:
    error = refusal(text)
    said = " ".join([str(error), repr(error), error.message.zh, error.message.en])
    for part in (text, text[:6], text[6:14], text[-4:]):
        assert part not in said


def wrong_check(number: str) -> str:
    """The same number with any other check character."""
    return number[:17] + ("1" if number[17] != "1" else "2")


@pytest.mark.parametrize(
    ("number", "fault"),
    [
        (wrong_check(build("110101", "20191301")), IdFault.BIRTH_DATE),
        (wrong_check(build("110101", "20990101")), IdFault.BIRTH_DATE),
        (wrong_check(build("990101", "19850615")), IdFault.REGION),
        (wrong_check(build("990101", "20191301")), IdFault.REGION),
    ],
)
def test_region_and_date_faults_are_named_before_the_check_digit(
    number: str, fault: IdFault
) -> None:
    """A number wrong in several ways is refused for the part a person can find and fix."""
    assert refusal(number).reason is fault


def test_the_future_is_judged_against_the_given_day() -> None:
    number = build("110101", "20240521")
    assert refusal(number).reason is IdFault.BIRTH_DATE
    assert parse_citizen_id(number, today=date(2024, 5, 21)).birth_date == date(2024, 5, 21)


# --- the direct constructor --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fault"),
    [
        ("11010519491231002x", IdFault.CHARACTERS),  # canonical form only
        (" 11010519491231002X", IdFault.CHARACTERS),
        (GB_EXAMPLE[:17] + "9", IdFault.CHECK_DIGIT),
        (build("110000", "19850615"), IdFault.REGION),
        (build("110101", "20230229"), IdFault.BIRTH_DATE),
    ],
)
def test_a_citizen_id_cannot_be_built_from_an_invalid_value(value: str, fault: IdFault) -> None:
    with pytest.raises(InvalidCitizenId) as caught:
        CitizenId(value)
    assert caught.value.reason is fault


def test_the_direct_constructor_needs_no_clock() -> None:
    """Reading back a stored number must not depend on today's date."""
    assert CitizenId(build("110101", "20990101")).birth_date == date(2099, 1, 1)


def test_a_citizen_id_is_immutable_and_hashable() -> None:
    cid = parse(GB_EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cid.value = "110105194912310038"  # type: ignore[misc]
    assert {cid, parse(GB_EXAMPLE.lower())} == {cid}
    clear: object = GB_EXAMPLE
    assert cid != clear  # a CitizenId is not a str, so it cannot leak as one


# --- the 422 problem ---------------------------------------------------------------------------


def test_the_problem_names_the_field_in_chinese() -> None:
    problem = citizen_id_problem(refusal(GB_EXAMPLE[:17] + "9"), "/holder/citizen_id")
    assert problem.render("zh-CN") == {
        "type": "/problems/invalid-citizen-id",
        "title": "公民身份号码无效",
        "status": 422,
        "detail": "公民身份号码校验码不符，请逐位核对",
        "errors": [
            {"detail": "公民身份号码校验码不符，请逐位核对", "pointer": "/holder/citizen_id"}
        ],
        "reason": "check-digit",
    }


def test_the_problem_names_the_field_in_english() -> None:
    problem = citizen_id_problem(refusal(build("110101", "20230229")), "/citizen_id")
    assert problem.kind is INVALID_CITIZEN_ID
    assert problem.render("en", instance="/registrations") == {
        "type": "/problems/invalid-citizen-id",
        "title": "Invalid citizen ID number",
        "status": 422,
        "detail": "Characters 7-14 are not a valid date of birth",
        "instance": "/registrations",
        "errors": [
            {"detail": "Characters 7-14 are not a valid date of birth", "pointer": "/citizen_id"}
        ],
        "reason": "birth-date",
    }


@pytest.mark.parametrize(("_", "text", "fault"), REFUSED, ids=[r[0] for r in REFUSED])
def test_every_fault_renders_as_a_422_with_its_pointer(_: str, text: str, fault: IdFault) -> None:
    for language in ("zh-CN", "en"):
        body = citizen_id_problem(refusal(text), "/guardian/citizen_id").render(language)
        assert body["status"] == 422
        assert body["reason"] == fault.value
        assert [error["pointer"] for error in body["errors"]] == ["/guardian/citizen_id"]


# --- masking -----------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [number for number, *_ in VALID])
def test_the_clear_number_never_shows_in_printed_forms(
    number: str, caplog: pytest.LogCaptureFixture
) -> None:
    cid = parse(number)
    masked = number[:6] + "*" * 12
    assert cid.masked() == masked
    assert str(cid) == masked
    assert f"{cid}" == masked
    assert "%s" % cid == masked  # noqa: UP031 - old-style formatting is what logging uses
    assert repr(cid) == f"CitizenId({masked})"
    assert repr([cid]) == f"[CitizenId({masked})]"
    with caplog.at_level(logging.INFO):
        logging.getLogger("hub.test").info("registered %s (%r)", cid, cid)
    logged = caplog.records[-1].getMessage()
    assert logged == f"registered {masked} (CitizenId({masked}))"
    printed = [cid.masked(), str(cid), repr(cid), logged]
    for text in printed:
        assert number not in text
        assert number[6:] not in text  # birth date, sequence and check digit
        assert number[-4:] not in text.replace(number[:6], "")


# --- encryption at rest ----------------------------------------------------------------------


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(b"identity-test-master-secret-0123456789abcdef")


@pytest.fixture
def vault(keyring: Keyring) -> CitizenIdVault:
    return CitizenIdVault.from_keyring(keyring)


@pytest.mark.parametrize("number", [number for number, *_ in VALID])
def test_sealing_round_trips(vault: CitizenIdVault, number: str) -> None:
    cid = parse(number)
    blob = vault.seal(cid)
    assert vault.open(blob) == cid
    assert blob[0] == VERSION
    assert len(blob) == 1 + 12 + 18 + 16


def test_two_seals_differ_but_hash_alike(vault: CitizenIdVault) -> None:
    cid = parse(GB_EXAMPLE)
    first, second = vault.seal(cid), vault.seal(cid)
    assert first != second
    assert first[1:13] != second[1:13]  # fresh nonces
    assert vault.open(first) == vault.open(second) == cid
    assert vault.lookup_hash(cid) == vault.lookup_hash(parse(" 11010519491231002x "))
    assert vault.lookup_hash(cid) != vault.lookup_hash(parse(build("110101", "19850615")))


def test_lookup_hash_is_the_audit_subject(keyring: Keyring, vault: CitizenIdVault) -> None:
    cid = parse(GB_EXAMPLE)
    digest = vault.lookup_hash(cid)
    assert digest == keyring.subject_hasher()(GB_EXAMPLE)
    assert len(digest) == 64 and int(digest, 16) >= 0
    other = CitizenIdVault.from_keyring(Keyring(b"another-master-secret-0123456789abcdef-0"))
    assert other.lookup_hash(cid) != digest


def test_every_altered_byte_is_caught(vault: CitizenIdVault) -> None:
    blob = vault.seal(parse(GB_EXAMPLE))
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(CitizenIdUnreadable) as caught:
            vault.open(bytes(tampered))
        expected = "unknown version" if position == 0 else "failed authentication"
        assert expected in str(caught.value), position


@pytest.mark.parametrize("size", [0, 1, 13, 28, 29, 46])
def test_truncated_blobs_are_refused(vault: CitizenIdVault, size: int) -> None:
    blob = vault.seal(parse(GB_EXAMPLE))
    with pytest.raises(CitizenIdUnreadable):
        vault.open(blob[:size])


def test_appended_bytes_are_refused(vault: CitizenIdVault) -> None:
    with pytest.raises(CitizenIdUnreadable, match="failed authentication"):
        vault.open(vault.seal(parse(GB_EXAMPLE)) + b"\x00")


def test_another_key_cannot_open(vault: CitizenIdVault) -> None:
    blob = vault.seal(parse(GB_EXAMPLE))
    stranger = CitizenIdVault.from_keyring(Keyring(b"another-master-secret-0123456789abcdef-0"))
    with pytest.raises(CitizenIdUnreadable, match="failed authentication"):
        stranger.open(blob)
    # The same encryption key with another hash key opens: the keys are independent.
    own = CitizenIdVault(ENCRYPTION_KEY, HASH_KEY)
    assert CitizenIdVault(ENCRYPTION_KEY, bytes(32)).open(own.seal(parse(GB_EXAMPLE))).value == (
        GB_EXAMPLE
    )
    with pytest.raises(CitizenIdUnreadable):
        CitizenIdVault(HASH_KEY, ENCRYPTION_KEY).open(own.seal(parse(GB_EXAMPLE)))


def test_a_blob_sealed_for_another_purpose_does_not_open() -> None:
    """Associated data binds a blob to citizen IDs: the same key sealing, say, a phone number
    must not yield something that opens as an ID."""
    nonce = bytes(12)
    foreign = AESGCM(ENCRYPTION_KEY).encrypt(nonce, GB_EXAMPLE.encode(), b"phone-number\x01")
    with pytest.raises(CitizenIdUnreadable, match="failed authentication"):
        CitizenIdVault(ENCRYPTION_KEY, HASH_KEY).open(bytes([VERSION]) + nonce + foreign)


def test_an_authentic_blob_with_an_invalid_number_is_refused() -> None:
    nonce = bytes(12)
    aad = b"citizen-id" + bytes([VERSION])
    forged = AESGCM(ENCRYPTION_KEY).encrypt(nonce, (GB_EXAMPLE[:17] + "9").encode(), aad)
    with pytest.raises(CitizenIdUnreadable, match="invalid number"):
        CitizenIdVault(ENCRYPTION_KEY, HASH_KEY).open(bytes([VERSION]) + nonce + forged)


def test_the_sealed_bytes_hide_the_number(vault: CitizenIdVault) -> None:
    for number, *_ in VALID:
        blob = vault.seal(parse(number))
        for part in (number, number[:6], number[6:14], number[-4:]):
            assert part.encode() not in blob
            assert part.encode("utf-16-le") not in blob
        assert number not in repr(vault)


@pytest.mark.parametrize(
    ("encryption_key", "hash_key", "message"),
    [
        (bytes(16), HASH_KEY, "encryption_key must be 32 bytes"),
        (ENCRYPTION_KEY, bytes(64), "hash_key must be 32 bytes"),
        (ENCRYPTION_KEY, ENCRYPTION_KEY, "must differ"),
    ],
)
def test_keys_are_checked(encryption_key: bytes, hash_key: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CitizenIdVault(encryption_key, hash_key)


def test_the_vault_does_not_print_its_keys(keyring: Keyring, vault: CitizenIdVault) -> None:
    encryption_key = keyring.derive("citizen-id-encryption")
    printed = repr(vault) + str(vault)
    assert encryption_key.hex() not in printed and repr(encryption_key) not in printed
    assert keyring.subject_hasher().key.hex() not in printed
