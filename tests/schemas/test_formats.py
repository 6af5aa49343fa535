"""The formats the registry enforces: good and bad values for each, and JSON Schema's rule that
formats apply only to strings."""

from __future__ import annotations

import jsonschema_rs
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from hub.schemas.formats import FORMATS, format_callbacks, format_checker

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def with_check(first17: str) -> str:
    """GB 11643's check character, computed here independently of the code under test."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def full_width(digits: str) -> str:
    """The digits as a Chinese IME types them in full-width mode (U+FF10..U+FF19)."""
    return "".join(chr(ord(digit) + 0xFEE0) for digit in digits)


def wrong_check(number: str) -> str:
    """The same number with any other check character."""
    return number[:17] + ("0" if number[17] != "0" else "1")


GOOD: list[tuple[str, str]] = [
    ("citizen-id", "11010519491231002X"),  # the standard's own example
    ("citizen-id", with_check("15042119900315002")),
    ("citizen-id", with_check("44190020000101123")),  # Dongguan: a city without counties
    ("citizen-id", with_check("81000019900101001")),  # Hong Kong resident's permit
    ("citizen-id", with_check("11010519000101001")),  # earliest birth date accepted
    ("phone-cn", "13800138000"),
    ("phone-cn", "19912345678"),
    ("phone-cn", "+8613800138000"),
    ("phone-cn", "+86 13800138000"),
    ("phone-cn", "010-12345678"),
    ("phone-cn", "01012345678"),
    ("phone-cn", "0471-1234567"),
    ("phone-cn", "0471-12345678"),
    ("phone-cn", "04711234567"),
    ("phone-cn", "010-12345678-801"),
    ("phone-cn", "0471-1234567-1"),
    ("phone-cn", "010-12345678-123456"),
    ("region-code", "110105"),
    ("region-code", "150402"),
    ("region-code", "441900"),
    ("region-code", "810000"),
    ("region-code", "710000"),
    ("region-code", "820001"),
    ("date", "2024-02-29"),
    ("date", "1900-01-01"),
    ("date-time", "2025-03-14T09:30:00+08:00"),
    ("date-time", "2025-03-14T01:30:00Z"),
    ("date-time", "2025-03-14t01:30:00z"),
    ("date-time", "2025-03-14T09:30:00.123456+08:00"),
    ("date-time", "2025-03-14T01:30:00-05:00"),
    ("email", "window@chifeng.gov.cn"),
    ("uuid", "03664491-377a-4edd-b5f1-1314e17b46b7"),
    ("uuid", "03664491-377A-4EDD-B5F1-1314E17B46B7"),
]

BAD: list[tuple[str, str, str]] = [
    ("citizen-id", "11010519491231002x", "lower-case x is not the canonical form"),
    ("citizen-id", wrong_check("11010519491231002X"), "wrong check digit"),
    ("citizen-id", wrong_check(with_check("15042119900315002")), "wrong check digit"),
    ("citizen-id", with_check("11010520230229001"), "no such birth date"),
    ("citizen-id", with_check("11010519891301001"), "month 13"),
    ("citizen-id", with_check("11010518991231001"), "born before 1900"),
    ("citizen-id", with_check("99010519491231001"), "no such province"),
    ("citizen-id", with_check("11000019491231001"), "province only"),
    ("citizen-id", "11010519491231002", "17 characters"),
    ("citizen-id", "11010519491231002X1", "19 characters"),
    ("citizen-id", " 11010519491231002X", "surrounding whitespace"),
    ("citizen-id", "110105 19491231002X", "inner space"),
    ("citizen-id", full_width("11010519491231002") + "X", "full-width digits"),
    ("citizen-id", "1101051949123100AX", "a letter inside"),
    ("citizen-id", "", "empty"),
    ("phone-cn", "12800138000", "no mobile prefix 12"),
    ("phone-cn", "1380013800", "10 digits"),
    ("phone-cn", "138001380001", "12 digits"),
    ("phone-cn", "+86  13800138000", "two spaces after +86"),
    ("phone-cn", "+86-13800138000", "hyphen after +86"),
    ("phone-cn", "86 13800138000", "86 without +"),
    ("phone-cn", "0086 13800138000", "00 prefix"),
    ("phone-cn", "+86 010-12345678", "+86 on a landline"),
    ("phone-cn", "(010)12345678", "brackets"),
    ("phone-cn", "010 12345678", "space separator"),
    ("phone-cn", "138 0013 8000", "grouped mobile"),
    ("phone-cn", "010-123456", "6-digit local number"),
    ("phone-cn", "010-123456789", "9-digit local number"),
    ("phone-cn", "10-12345678", "area code without 0"),
    ("phone-cn", "010-12345678-", "empty extension"),
    ("phone-cn", "010-12345678-1234567", "7-digit extension"),
    ("phone-cn", "13800138000\n", "trailing newline"),
    ("phone-cn", full_width("13800138000"), "full-width digits"),
    ("phone-cn", "", "empty"),
    ("region-code", "110000", "a whole province"),
    ("region-code", "990101", "no such province"),
    ("region-code", "000000", "no such province"),
    ("region-code", "15040", "5 digits"),
    ("region-code", "1504021", "7 digits"),
    ("region-code", "15040a", "a letter"),
    ("region-code", full_width("150402"), "full-width digits"),
    ("region-code", "150402\n", "trailing newline"),
    ("region-code", "", "empty"),
    ("date", "2023-02-29", "no such day"),
    ("date", "2024-13-01", "month 13"),
    ("date", "2024-1-1", "no zero padding"),
    ("date", "20240101", "basic format"),
    ("date", "2024-01-01T00:00:00Z", "a date-time"),
    ("date", "2024-01-01\n", "trailing newline"),
    ("date-time", "2025-03-14T09:30:00", "no time zone"),
    ("date-time", "2025-03-14 09:30:00+08:00", "space separator"),
    ("date-time", "2025-03-14T09:30:00+0800", "zone without colon"),
    ("date-time", "2025-02-30T09:30:00Z", "no such day"),
    ("date-time", "2025-03-14T25:00:00Z", "hour 25"),
    ("date-time", "2025-03-14", "a date"),
    ("date-time", "2025-03-14T09:30:00Z\n", "trailing newline"),
    ("email", "window.chifeng.gov.cn", "no @"),
    ("uuid", "not-a-uuid", "not hex"),
    ("uuid", "03664491377a4eddb5f11314e17b46b7", "no hyphens"),
    ("uuid", "{03664491-377a-4edd-b5f1-1314e17b46b7}", "braces"),
    ("uuid", "urn:uuid:03664491-377a-4edd-b5f1-1314e17b46b7", "URN form"),
    ("uuid", full_width("0") + "3664491-377a-4edd-b5f1-1314e17b46b7", "a full-width digit"),
    ("uuid", "03664491-377a-4edd-b5f1-1314e17b46b7\n", "trailing newline"),
    ("uuid", "03664491-377a-4edd-b5f1-1314e17b46b", "35 characters"),
]


def _document_validator(name: str) -> jsonschema_rs.Validator:
    """What validates documents: jsonschema-rs, as `hub.schemas.validation` builds it."""
    return jsonschema_rs.Draft202012Validator(
        {"format": name}, formats=format_callbacks(), validate_formats=True
    )


@pytest.mark.parametrize(("name", "value"), GOOD)
def test_good_values_conform(name: str, value: str) -> None:
    assert format_checker().conforms(value, name)
    assert _document_validator(name).is_valid(value)


@pytest.mark.parametrize(("name", "value", "why"), BAD)
def test_bad_values_are_refused(name: str, value: str, why: str) -> None:
    assert not format_checker().conforms(value, name), why
    assert not _document_validator(name).is_valid(value), why


def test_every_format_has_good_and_bad_cases() -> None:
    assert {name for name, _ in GOOD} == FORMATS
    assert {name for name, _, _ in BAD} == FORMATS


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("value", [5, 1.5, None, True, [], {}])
def test_formats_apply_only_to_strings(name: str, value: object) -> None:
    assert format_checker().conforms(value, name)


def test_the_checker_enforces_exactly_the_named_formats() -> None:
    assert set(format_checker().checkers) == FORMATS
    named = {"date", "date-time", "email", "uuid", "citizen-id", "phone-cn", "region-code"}
    assert named == FORMATS


def test_other_formats_are_not_checked() -> None:
    """A format outside FORMATS stays an annotation, whatever jsonschema could check."""
    assert format_checker().conforms("not a host name!", "hostname")
    assert format_checker().conforms("::not-an-ip", "ipv4")
    for name, value in (("hostname", "not a host name!"), ("ipv4", "::"), ("time", "25:99")):
        assert _document_validator(name).is_valid(value), name


def test_the_checker_is_built_once() -> None:
    assert format_checker() is format_checker()


def test_a_validator_given_the_checker_refuses_a_bad_value() -> None:
    """Formats assert only when the checker is passed; without it 2020-12 ignores them."""
    schema = {
        "type": "object",
        "properties": {"citizen_id": {"type": "string", "format": "citizen-id"}},
    }
    bad = {"citizen_id": wrong_check("11010519491231002X")}
    assert Draft202012Validator(schema).is_valid(bad)
    checked = Draft202012Validator(schema, format_checker=format_checker())
    assert not checked.is_valid(bad)
    assert checked.is_valid({"citizen_id": "11010519491231002X"})
