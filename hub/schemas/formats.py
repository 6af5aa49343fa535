"""The `format` keywords the hub's schema registry enforces, and the one checker that enforces them.

JSON Schema 2020-12 treats `format` as an annotation unless the validator is told to assert
it, so a schema saying `"format": "citizen-id"` checks nothing by itself. Documents are
validated by jsonschema-rs with `format_callbacks()`, and anything validated with jsonschema
takes `format_checker()`: the same functions, which make these formats assertions:

- `date` (RFC 3339 full-date, e.g. 2024-02-29: ASCII digits, a real calendar day),
  `date-time` (RFC 3339 date-time *with* a time zone, `Z` or `±hh:mm`; refused: no zone, a
  separator other than `T`/`t`, any whitespace, leap seconds), `email` (contains an `@`:
  jsonschema's deliberately loose check; an address is proved by mail, not by pattern): these
  are jsonschema's own checkers. `uuid`: the hyphenated 8-4-4-4-12 form of ASCII hex digits,
  any case (`is_uuid`; jsonschema's checker, Python's `UUID`, also takes full-width digits);
  jsonschema-rs checks it natively by the same rule, which tests/schemas/test_formats.py
  holds it to, so that the one format met in every record costs no call into Python.
  `date-time` needs the optional `rfc3339-validator` package (a dependency of the hub);
  without it jsonschema has no date-time checker and lets every string pass, so this module
  refuses to import rather than run unchecked.
- `citizen-id`: an 18-character GB 11643 number in canonical form (upper-case X), with a valid
  region shape, birth date and check digit. The rules are `hub.permits.identity`'s, so a number
  a schema accepts is one the permit service accepts too.
- `region-code`: a six-digit GB/T 2260 administrative division code, checked by *shape* only
  (real province, not a bare province, see `identity._check_region`). Not looked up in a code
  table: divisions are renamed and merged every year while IDs and household records keep the
  code they were issued with, so a table would refuse real people's data.
- `phone-cn`: a mainland China phone number, in exactly these forms (ASCII digits, nothing
  before or after):

  - mobile: `1[3-9]` then 9 more digits, e.g. `13800138000`; optionally prefixed by `+86`
    or `+86 ` (one space), e.g. `+8613800138000`, `+86 13800138000`;
  - landline: area code `0` + 2 or 3 digits, an optional `-`, then a 7- or 8-digit local
    number, e.g. `010-12345678`, `0471-1234567`, `01012345678`; optionally followed by
    `-` and a 1-6 digit extension, e.g. `010-12345678-801`. No `+86` form for landlines
    (the international form drops the trunk 0, and no department sends it).

  Refused: spaces or dots inside the number, brackets around the area code, full-width digits.
  The hub exchanges numbers between programs, which can normalise before they send.

Every other format name is not checked: jsonschema-rs would check the formats it knows by
itself (`hostname`, `ipv4`, ...), so `format_callbacks()` passes those as annotations too.
`FORMATS` names exactly the enforced ones, so the
registry can refuse a schema that relies on a format nobody checks (e.g. `hostname`), instead
of letting it pass everything. The set is fixed here rather than taken from whatever
jsonschema happens to support, so installing a package cannot quietly change what is enforced.

As JSON Schema requires, a format applies only to strings: a number or null passes, and `type`
is what refuses it.

Beware when reporting failures: jsonschema's message for a failed format repeats the value
("'1101...' is not a 'citizen-id'"), so a refused citizen ID would leak into any log or response
that shows `ValidationError.message`. Report `validator` ("format"), `validator_value` (the
format name) and `json_path` instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final

from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped]

from hub.permits.identity import is_citizen_id, is_region_code

STANDARD_FORMATS: Final = frozenset({"date", "date-time", "email", "uuid"})
"""Formats defined by JSON Schema."""

HUB_FORMATS: Final = frozenset({"citizen-id", "phone-cn", "region-code"})
"""Formats the hub defines; their names are not in any JSON Schema vocabulary."""

FORMATS: Final = STANDARD_FORMATS | HUB_FORMATS
"""Every format the hub enforces; any other `format` value is an unchecked annotation."""

_WHITESPACE: Final = re.compile(r"\s")
"""What `str.isspace` calls whitespace (both are CPython's `Py_UNICODE_ISSPACE`), found in one
search instead of a generator over every character: date-time is in every holder record."""

_UUID: Final = re.compile(
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

_PHONE_CN: Final = re.compile(
    r"(?:\+86 ?)?1[3-9][0-9]{9}"  # mobile
    r"|0[0-9]{2,3}-?[0-9]{7,8}(?:-[0-9]{1,6})?"  # landline, optional extension
)


def is_phone_cn(text: str) -> bool:
    """Whether `text` is a mainland phone number in one of the forms the module docstring lists.

    `fullmatch` with explicit [0-9], not `$` and `\\d`: `$` would let a trailing newline through
    and `\\d` would accept full-width and other Unicode digits.
    """
    return _PHONE_CN.fullmatch(text) is not None


def is_uuid(text: str) -> bool:
    """Whether `text` is a UUID in its hyphenated form: 36 ASCII characters, any case."""
    return _UUID.fullmatch(text) is not None


def _only_strings(predicate: Callable[[str], bool]) -> Callable[[object], bool]:
    """Adapt a `str -> bool` predicate to a format checker: non-strings conform."""

    def check(instance: object) -> bool:
        return not isinstance(instance, str) or predicate(instance)

    return check


def _without_whitespace(check: Callable[[object], bool]) -> Callable[[object], bool]:
    """Refuse strings with whitespace before asking `check`. rfc3339-validator matches with `$`,
    which also matches before a final newline, so "2025-03-14T09:30:00Z\\n" would pass; no
    RFC 3339 date-time contains whitespace, so refusing all of it loses nothing."""

    def checked(instance: object) -> bool:
        if isinstance(instance, str) and _WHITESPACE.search(instance) is not None:
            return False
        return check(instance)

    return checked


def _build() -> FormatChecker:
    """A checker with exactly `FORMATS`, failing loudly if jsonschema lacks a standard one."""
    standard = Draft202012Validator.FORMAT_CHECKER
    missing = STANDARD_FORMATS - {"uuid"} - set(standard.checkers)
    if missing:
        raise RuntimeError(f"jsonschema cannot check {sorted(missing)}: install rfc3339-validator")
    checker = FormatChecker(formats=())
    for name in sorted(STANDARD_FORMATS - {"uuid"}):
        function, raises = standard.checkers[name]
        if name == "date-time":
            function = _without_whitespace(function)
        checker.checks(name, raises)(function)
    checker.checks("uuid")(_only_strings(is_uuid))
    checker.checks("citizen-id")(_only_strings(is_citizen_id))
    checker.checks("phone-cn")(_only_strings(is_phone_cn))
    checker.checks("region-code")(_only_strings(is_region_code))
    assert set(checker.checkers) == FORMATS
    return checker


_FORMAT_CHECKER: Final = _build()


def format_checker() -> FormatChecker:
    """The checker to pass to every validator the hub builds, e.g.
    `Draft202012Validator(schema, format_checker=format_checker())`.

    Built once at import, so a missing dependency fails at start-up, not at the first record.
    Shared: callers must not register further formats on it (that would change what every
    other validator enforces); add them here and to `FORMATS` instead.
    """
    return _FORMAT_CHECKER


_ANNOTATIONS: Final = frozenset(
    {
        "duration",
        "hostname",
        "idn-email",
        "idn-hostname",
        "ipv4",
        "ipv6",
        "iri",
        "iri-reference",
        "json-pointer",
        "regex",
        "relative-json-pointer",
        "time",
        "uri",
        "uri-reference",
        "uri-template",
    }
)
"""The formats jsonschema-rs 0.60 checks by itself that the hub does not enforce."""


def _annotation(_: str) -> bool:
    return True


def _callback(name: str) -> Callable[[str], bool]:
    function, raises = _FORMAT_CHECKER.checkers[name]

    def check(text: str) -> bool:
        try:
            return bool(function(text))
        except raises:
            return False

    return check


NATIVE_FORMATS: Final = frozenset({"uuid"})
"""Formats jsonschema-rs checks itself exactly as `format_checker()` does."""

_CALLBACKS: Final[Mapping[str, Callable[[str], bool]]] = {
    **{name: _annotation for name in _ANNOTATIONS},
    **{name: _callback(name) for name in sorted(FORMATS - NATIVE_FORMATS)},
}


def format_callbacks() -> dict[str, Callable[[str], bool]]:
    """For jsonschema-rs (`formats=`, with `validate_formats=True`): `FORMATS` checked by the
    very functions of `format_checker()` (but `NATIVE_FORMATS`, which it checks alike), and
    the other formats it knows as annotations. It
    calls them with strings only; a number or null conforms, as JSON Schema says. A new dict
    each time: what one validator is built with cannot change what another enforces."""
    return dict(_CALLBACKS)
