"""Jurisdiction rules as data: one `config/jurisdictions/<code>.toml` per jurisdiction.

Everything that differs between places (six months of residence, Ningbo's twelve months of social
insurance, Chifeng's three excluded districts, deadlines, fees, exemptions) lives in those files,
so adding a city is a new file, not new code. Every rule carries a `cite` naming the document and
article it comes from, so a refusal can say which rule refused and where it is written.

Cites look like `[CF §15]`, `[IM] 二(四)`, `[NB] 二(一)1` or `[NAT §9]`: one or more bracketed
source tags, each optionally with an article (§N, or a range §N-M), then optionally the section
within the document. Every tag a file uses must be declared in its `sources`, which say which
document (and which seed in shared/seeds, if any) the tag stands for. `NAT` is by convention
the national 《居住证暂行条例》 (国务院令第663号), which applies where a local document is silent.

A seed that is silent on a rule either inherits the national (or regional) rule, cited as such,
or leaves the rule out (`None`) when no document we hold states it; numbers are never invented.

`load_jurisdictions` reads and validates a directory of files at start-up and raises
`hub.settings.ConfigError` with one sentence naming the file and the field on any problem.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from hub.clock import Deadline, WorkingCalendar
from hub.permits.domain import AddressRules, CardFees, LifecycleRules, Span, add_months
from hub.settings import ConfigError

_CITE = re.compile(
    r"^(?:\[[A-Z]{2,4}(?: §\d+(?:[-\u2013]§?\d+)?(?:[,、] ?§?\d+(?:[-\u2013]§?\d+)?)*)?\])+"
    r"(?: \S.*)?$"
)
_CITE_TAG = re.compile(r"\[([A-Z]{2,4})")

Text = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]
_CODE = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"
_TAG = r"^[A-Z]{2,4}$"
_PREFIX = r"^(?:\d{2}){1,3}$"
_COUNTY = r"^\d{6}$"
_SEED = r"^\d{3}(?:_[0-9a-f]{16})?$"
_PATTERNS = {
    _CITE.pattern: "a cite is a bracketed source tag and article, e.g. '[CF §15]' or '[NB] 二(一)'",
    _CODE: "a code is lower-case words joined by hyphens, e.g. 'id-card'",
    _TAG: "a source tag is 2-4 capital letters, e.g. 'CF'",
    _PREFIX: "a division prefix is 2, 4 or 6 digits, e.g. '1504'",
    _COUNTY: "a county-level division code is 6 digits, e.g. '150402'",
    _SEED: "a seed id is a seed file's name without .txt, e.g. '004_79d2fcddf7f5b742'",
}
"""Plain-language versions of the patterns, for errors that a person fixes by hand."""

Code = Annotated[str, StringConstraints(strict=True, pattern=_CODE)]
"""A stable machine code: lower-case words joined by hyphens, e.g. `labour-contract`."""
Tag = Annotated[str, StringConstraints(strict=True, pattern=_TAG)]
Cite = Annotated[str, StringConstraints(strict=True, pattern=_CITE.pattern)]
DivisionPrefix = Annotated[str, StringConstraints(strict=True, pattern=_PREFIX)]
"""A prefix of the 6-digit administrative division code (GB/T 2260): 2 digits for a province or
region (15 = Inner Mongolia), 4 for a prefecture-level city (1504 = Chifeng), 6 for a county."""
CountyCode = Annotated[str, StringConstraints(strict=True, pattern=_COUNTY)]
SeedId = Annotated[str, StringConstraints(strict=True, pattern=_SEED)]
Count = Annotated[int, Strict(), Field(gt=0)]


DeadlineUnit = Literal["days", "working-days", "months"]
"""Calendar days, working days on the official calendar (holidays and 调休), calendar months."""

ConditionKind = Literal["employment", "residence", "study"]
Department = Literal[
    "public-security",
    "hr-social-security",
    "housing",
    "education",
    "health",
    "civil-affairs",
    "market-regulation",
    "justice",
]
Charge = Literal["free", "card-cost"]
"""`card-cost` is the production cost (工本费) set by the national finance and price departments;
no seed states an amount, so none is configured."""


class FieldProblem(ValueError):
    """A cross-field check failed; `field` is the path below the model that raised it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rule(_Model):
    """Anything the registry may refuse or decide by: it says where it is written."""

    cite: Cite


class Cited(Rule):
    """A rule whose presence is the whole rule (e.g. one person, one permit)."""


class Names(_Model):
    zh: Text
    en: Text


class Period(_Model):
    """A span such as "within 7 working days" or "in the 30 days before expiry"."""

    amount: Count
    unit: DeadlineUnit

    def due_after(self, start: date, calendar: WorkingCalendar) -> Deadline:
        """The last day of a period that starts after `start` (the start day never counts).

        Working days come from `calendar` and may be provisional; calendar days and months are
        exact. A month ends on the corresponding day, or the month's last day if it has none.
        """
        if self.unit == "working-days":
            return calendar.add_working_days(start, self.amount)
        if self.unit == "days":
            return Deadline(due=start + timedelta(days=self.amount), provisional=False)
        return Deadline(due=add_months(start, self.amount), provisional=False)

    def before(self, day: date) -> date:
        """The first day of the period that ends on `day` (calendar days or months only)."""
        if self.unit == "working-days":
            raise ValueError("a period counted back from a date must be in days or months")
        if self.unit == "days":
            return day - timedelta(days=self.amount)
        return add_months(day, -self.amount)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"


# --- identity ---------------------------------------------------------------------------------


class Source(_Model):
    """A document the file cites, by the tag used in cites."""

    tag: Tag
    title: Names
    document_number: Text | None = None
    seed: SeedId | None = None
    """The file id in shared/seeds (e.g. `004_79d2fcddf7f5b742`), if the document is a seed."""
    published: date | None = None
    effective: date | None = None


class Permit(Rule):
    """The card this jurisdiction issues, and where it is valid."""

    name: Names
    issuing_authority: Names
    """Printed on the card [CF §13]: the public-security organ that makes and issues it."""
    valid_in: tuple[DivisionPrefix, ...] | None = None
    """Division prefixes where the permit is valid; None: only in the jurisdiction's own."""


# --- registration -----------------------------------------------------------------------------


class TimeLimit(Rule):
    within: Period


class Proxy(Rule):
    """Who may act for someone else, and for whom."""

    minors_under_years: Count
    also_for: tuple[Literal["elderly-limited-mobility", "disabled"], ...] = ()
    by: tuple[Literal["guardian", "trustee", "near-relative"], ...] = Field(min_length=1)


class ReportDuty(Rule):
    """A third party's duty to report a migrant to the acceptance office [CF §6-9]."""

    who: Literal["employer", "property-manager", "agency", "landlord"]
    within: Period | None = None
    """None: the duty exists but the seed sets no time limit."""


class Registration(_Model):
    """Residence registration (居住登记 / 暂住登记), the basis of every application."""

    declare_within: TimeLimit | None = None
    """Days from arrival to declare; None where no document we hold states it."""
    proxy: Proxy | None = None
    third_party_reports: tuple[ReportDuty, ...] = ()
    temporary_permit_years_count: Cited | None = None
    """Years held under the old temporary-residence permit (暂住证) count as residence."""


# --- application ------------------------------------------------------------------------------


class ResidenceRequirement(Rule):
    """Registered and resident for at least `minimum_months` before applying."""

    minimum_months: Count
    registration_required: StrictBool
    continuous: StrictBool


class HouseholdOutside(Rule):
    """How far from home one must live: household registration outside the county-level unit
    (6 digits of the division code) or outside the city (first 4 digits)."""

    level: Literal["county", "city"]


class SocialInsurance(Rule):
    minimum_months: Count
    continuous: StrictBool
    excluded: tuple[Literal["back-payment", "work-injury-only"], ...] = ()
    """Contributions that do not count: back-payments (补缴), work-injury insurance alone."""


class Form(Rule):
    """One way of meeting a condition, with the materials that prove it at the window."""

    code: Code
    name: Names
    materials: tuple[Code, ...] = Field(min_length=1)
    minimum_months: Count | None = None
    """How long the form must have lasted (e.g. 12 months enrolled [NB])."""
    social_insurance: SocialInsurance | None = None


class RecordOnFile(Rule):
    """The condition may be met by the competent department's record instead of documents."""

    departments: tuple[Department, ...] = Field(min_length=1)


class Verification(Rule):
    """Departments that check the proofs of a condition for public security."""

    departments: tuple[Department, ...] = Field(min_length=1)


class Condition(Rule):
    name: Names
    forms: tuple[Form, ...] = Field(min_length=1)
    record_on_file: RecordOnFile | None = None
    verification: Verification | None = None

    def form(self, code: str) -> Form | None:
        return next((form for form in self.forms if form.code == code), None)


class Material(Rule):
    name: Names


class BaseMaterials(Rule):
    """Materials every applicant brings, whatever the condition."""

    materials: tuple[Code, ...] = Field(min_length=1)


class Exemption(Rule):
    code: Code
    name: Names
    waives: tuple[Literal["residence", "conditions"], ...] = Field(min_length=1)
    """What it waives: the months of residence, the employment/residence/study conditions."""


class Division(_Model):
    code: CountyCode
    name: Names


class ExcludedMoves(Rule):
    """Household registered in one of `divisions` and living in one of them: no permit."""

    name: Names
    divisions: tuple[Division, ...] = Field(min_length=2)

    def applies(self, household: str, residence: str) -> bool:
        codes = {division.code for division in self.divisions}
        return household[:6] in codes and residence[:6] in codes


class Outcomes(Rule):
    """What the window must answer [CF §16]: accepted with a receipt, incomplete with what is
    missing, or ineligible with the reason. False means the cited document does not require it
    (the hub may still do it), not that it is forbidden."""

    missing_materials: Literal["on-the-spot", "all-at-once"]
    receipt: StrictBool = False
    reason_given: StrictBool = False


class Application(_Model):
    residence: ResidenceRequirement
    household_outside: HouseholdOutside
    conditions: dict[ConditionKind, Condition] = Field(min_length=1)
    """At least one must be met (unless an exemption waives them)."""
    base_materials: BaseMaterials
    materials: dict[Code, Material] = Field(min_length=1)
    """Every material code used above, with its name for "incomplete" answers."""
    exemptions: tuple[Exemption, ...] = ()
    excluded_moves: tuple[ExcludedMoves, ...] = ()
    outcomes: Outcomes
    proxy: Proxy | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Application:
        for index, code in enumerate(self.base_materials.materials):
            if code not in self.materials:
                field = f"base_materials.materials[{index}]"
                raise FieldProblem(field, f"material {code!r} is not defined under materials")
        for kind, condition in self.conditions.items():
            _unique([form.code for form in condition.forms], f"conditions.{kind}.forms", "form")
            for number, form in enumerate(condition.forms):
                for index, code in enumerate(form.materials):
                    if code not in self.materials:
                        field = f"conditions.{kind}.forms[{number}].materials[{index}]"
                        raise FieldProblem(
                            field, f"material {code!r} is not defined under materials"
                        )
        _unique([exemption.code for exemption in self.exemptions], "exemptions", "exemption")
        return self

    def materials_for(self, kind: ConditionKind, form: str) -> tuple[str, ...]:
        """Every material the window needs for an applicant claiming `form` of `kind`."""
        chosen = self.conditions[kind].form(form)
        if chosen is None:
            raise KeyError(f"no form {form!r} of condition {kind!r}")
        return tuple(dict.fromkeys(self.base_materials.materials + chosen.materials))

    def excluded_move(self, household: str, residence: str) -> ExcludedMoves | None:
        """The exclusion that refuses a move from `household` to `residence` division, if any."""
        return next((x for x in self.excluded_moves if x.applies(household, residence)), None)


# --- issuance, endorsement, address change ---------------------------------------------------


class IssuanceDeadline(Rule):
    within: Period
    applies_to: tuple[Literal["first", "renewal", "replacement"], ...] = Field(min_length=1)


class Validity(Rule):
    years: Count
    """Years from issuance, or from the last endorsement, until the permit expires."""


class Issuance(_Model):
    deadline: IssuanceDeadline
    validity: Validity
    one_per_person: Cited | None = None
    centralised_production: Cited | None = None


class EndorsementWindow(Rule):
    before_expiry: Period
    extends_years: Count

    @field_validator("before_expiry")
    @classmethod
    def _counted_back(cls, period: Period) -> Period:
        if period.unit == "working-days":
            raise ValueError("the window before expiry must be in days or months")
        return period


class Review(Rule):
    by: Literal["community-police"]


class Restoration(Rule):
    """Endorsed within `grace` of suspension: restored, residence continuous; later (or always,
    when `grace` is None): restored, residence restarting at the restoration."""

    grace: Period | None = None

    @field_validator("grace")
    @classmethod
    def _calendar_time(cls, period: Period | None) -> Period | None:
        if period is not None and period.unit == "working-days":
            raise ValueError("the restoration grace must be in days or months")
        return period


class Endorsement(Rule):
    """Endorsed every `every_years` year(s); `cite` is for that frequency."""

    every_years: Count
    window: EndorsementWindow
    review: Review | None = None
    suspension: Cited
    """Not endorsed by expiry: the permit's functions are suspended (使用功能中止)."""
    restoration: Restoration


class LateReport(Rule):
    """Reported later than `after` the move: residence counts from the (late) report."""

    after: Period
    effect: Literal["residence-restarts-at-report"]

    @field_validator("after")
    @classmethod
    def _calendar_time(cls, period: Period) -> Period:
        if period.unit == "working-days":
            raise ValueError("the late-report threshold must be in days or months")
        return period


class AddressChange(_Model):
    report: TimeLimit
    late: LateReport | None = None
    """None: the seed states no consequence of a late report."""


# --- fees, cancellation, settlement, points ---------------------------------------------------


class Fee(Rule):
    charge: Charge


class Fees(_Model):
    registration: Fee | None = None
    first_issuance: Fee
    endorsement: Fee
    address_change: Fee | None = None
    replacement: Fee
    """补领: the card was lost."""
    renewal: Fee
    """换领: the card was damaged (or, in some documents, expired)."""
    old_card_returned_on_renewal: Cited | None = None


class CancellationReason(Rule):
    code: Code
    name: Names


class Settlement(Rule):
    """Household registration (落户) by years of continuous residence alone."""

    continuous_years: Count
    who: Names
    where: Names
    permit_collected: StrictBool


Indicator = Literal["residence-years", "employment-years", "social-insurance-years"]


class PointsWeight(_Model):
    """Points per completed year of one indicator, up to a cap where the table sets one."""

    indicator: Indicator
    per_year: Count
    max_points: Count | None = None


class RationedService(_Model):
    """A service the city hands out by score (e.g. school places), ties by residence length."""

    code: Code
    name: Names


class PointsTable(Rule):
    """The point values the city published (积分量化指标…应当向社会公布 [NB] 三(三)), with the
    citation of the published document: never in a seed, so never invented."""

    weights: tuple[PointsWeight, ...] = Field(min_length=1)
    services: tuple[RationedService, ...] = ()


class Points(Rule):
    """An opt-in points scheme (积分制) rationing services (and, where stated, settlement)."""

    indicators: tuple[Indicator, ...] = ()
    """Indicators the document names; weights are published separately and are not in a seed."""
    settlement_by_points: StrictBool
    published: StrictBool
    table: PointsTable | None = None
    """The published point values, where an operator has configured them with their cite."""


# --- the jurisdiction -------------------------------------------------------------------------


class Jurisdiction(_Model):
    """Every rule the registry needs for one place, each with its cite."""

    code: Code
    name: Names
    source: Tag
    """The tag of this jurisdiction's own document among `sources`."""
    sources: tuple[Source, ...] = Field(min_length=1)
    divisions: tuple[DivisionPrefix, ...] = Field(min_length=1)
    """Division-code prefixes that belong to this jurisdiction; no two files may overlap."""
    permit: Permit
    registration: Registration
    application: Application
    issuance: Issuance
    endorsement: Endorsement
    address_change: AddressChange | None = None
    """None: no document we hold sets a time limit for reporting a move."""
    fees: Fees
    cancellation: tuple[CancellationReason, ...] = ()
    settlement: Settlement | None = None
    points: Points | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Jurisdiction:
        tags = [source.tag for source in self.sources]
        _unique(tags, "sources", "source tag")
        if self.source not in tags:
            raise FieldProblem("source", f"tag {self.source!r} is not declared in sources")
        for path, cite in iter_cites(self):
            for tag in _CITE_TAG.findall(cite):
                if tag not in tags:
                    raise FieldProblem(
                        path, f"cite {cite!r} uses tag {tag}, which is not declared in sources"
                    )
        _unique(list(self.divisions), "divisions", "division prefix")
        for index, prefix in enumerate(self.divisions):
            for other in self.divisions[index + 1 :]:
                if _overlap(prefix, other):
                    raise FieldProblem("divisions", f"prefixes {prefix} and {other} overlap")
        if self.permit.valid_in is not None:
            for prefix in self.divisions:
                if not any(prefix.startswith(valid) for valid in self.permit.valid_in):
                    raise FieldProblem(
                        "permit.valid_in", f"the permit must be valid in its own division {prefix}"
                    )
        for number, excluded in enumerate(self.application.excluded_moves):
            for index, division in enumerate(excluded.divisions):
                if not self.covers(division.code):
                    raise FieldProblem(
                        f"application.excluded_moves[{number}].divisions[{index}].code",
                        f"{division.code} is not within this jurisdiction's divisions",
                    )
        _unique([reason.code for reason in self.cancellation], "cancellation", "reason code")
        return self

    @property
    def document(self) -> Source:
        """This jurisdiction's own document."""
        return next(source for source in self.sources if source.tag == self.source)

    def covers(self, division_code: str) -> bool:
        """Whether a 6-digit division code (e.g. of a current address) belongs here."""
        return any(division_code.startswith(prefix) for prefix in self.divisions)

    def permit_valid_in(self, division_code: str) -> bool:
        prefixes = self.permit.valid_in if self.permit.valid_in is not None else self.divisions
        return any(division_code.startswith(prefix) for prefix in prefixes)

    def source_of(self, cite: str) -> list[Source]:
        """The documents a cite refers to, to show a refusal's title and document number."""
        tags = _CITE_TAG.findall(cite)
        return [source for tag in tags for source in self.sources if source.tag == tag]

    def lifecycle_rules(self) -> LifecycleRules:
        """The numbers the permit state machine needs, with their cites."""
        window = self.endorsement.window
        grace = self.endorsement.restoration.grace
        fees = self.fees
        return LifecycleRules(
            validity_years=self.issuance.validity.years,
            extends_years=window.extends_years,
            endorsement_window=_span(window.before_expiry),
            restoration_grace=_span(grace) if grace else None,
            settlement_years=self.settlement.continuous_years if self.settlement else None,
            cite_validity=self.issuance.validity.cite,
            cite_endorsement=window.cite,
            cite_restoration=self.endorsement.restoration.cite,
            cite_settlement=self.settlement.cite if self.settlement else self.source,
            card_fees=CardFees(
                charges={
                    "first-issuance": (fees.first_issuance.charge, fees.first_issuance.cite),
                    "replacement": (fees.replacement.charge, fees.replacement.cite),
                    "renewal": (fees.renewal.charge, fees.renewal.cite),
                },
                old_card_returned_on_renewal=fees.old_card_returned_on_renewal is not None,
            ),
        )

    def address_rules(self) -> AddressRules | None:
        """How moves are reported here; None where no document sets a time limit."""
        change = self.address_change
        if change is None:
            return None
        late = _span(change.late.after) if change.late else None
        return AddressRules(change.report.within, late, change.report.cite)


def _span(period: Period) -> Span:
    """Windows and grace periods count calendar time; the model refuses working days there."""
    if period.unit == "working-days":
        raise ValueError(f"{period} cannot be counted back from a date")
    return Span(period.amount, period.unit)


def jurisdiction_for(
    jurisdictions: Mapping[str, Jurisdiction], division_code: str
) -> Jurisdiction | None:
    """The one jurisdiction a division code belongs to (prefixes never overlap), if any."""
    return next((j for j in jurisdictions.values() if j.covers(division_code)), None)


def iter_cites(model: BaseModel, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (field path, cite) in `model`, depth first, for checks and for listing sources."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        here = f"{path}.{name}" if path else name
        if name == "cite" and isinstance(value, str):
            yield here, value
        else:
            yield from _iter_value(value, here)


def _iter_value(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, BaseModel):
        yield from iter_cites(value, path)
    elif isinstance(value, tuple):
        for index, item in enumerate(value):
            yield from _iter_value(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _iter_value(item, f"{path}.{key}")


def _unique(values: list[str], field: str, what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise FieldProblem(field, f"{what} {value!r} appears twice")
        seen.add(value)


def _overlap(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


# --- loading ----------------------------------------------------------------------------------


def load_jurisdictions(directory: Path) -> dict[str, Jurisdiction]:
    """Read and validate every `*.toml` in `directory`, keyed by jurisdiction code.

    Each file must be named after its `code`; no code may appear twice and no division prefix
    may belong to two files. Any problem raises `ConfigError` with one sentence naming the file
    and the field, so the hub refuses to start rather than decide by rules it misread.
    """
    if not directory.is_dir():
        raise ConfigError(f"jurisdiction directory {directory} does not exist")
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise ConfigError(f"jurisdiction directory {directory} has no *.toml files")
    files = [(path, load_jurisdiction(path)) for path in paths]
    by_code: dict[str, Path] = {}
    for path, jurisdiction in files:
        first = by_code.setdefault(jurisdiction.code, path)
        if first != path:
            raise ConfigError(
                f"{path}: field code {jurisdiction.code!r} is already used by {first.name}; "
                "each jurisdiction has exactly one file"
            )
    for path, jurisdiction in files:
        if path.stem != jurisdiction.code:
            raise ConfigError(
                f"{path}: field code is {jurisdiction.code!r} but the file is named {path.name}; "
                f"rename the file to {jurisdiction.code}.toml or fix the code"
            )
    for number, (path, jurisdiction) in enumerate(files):
        for other_path, other in files[:number]:
            for prefix in jurisdiction.divisions:
                clash = next((p for p in other.divisions if _overlap(prefix, p)), None)
                if clash is not None:
                    raise ConfigError(
                        f"{path}: field divisions prefix {prefix} overlaps {clash} of "
                        f"{other_path.name}; a division belongs to one jurisdiction only"
                    )
    return {jurisdiction.code: jurisdiction for _, jurisdiction in files}


def load_jurisdiction(path: Path) -> Jurisdiction:
    """Read and validate one file; `ConfigError` names the file and the field on any problem."""
    try:
        with path.open("rb") as handle:
            table = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    try:
        return Jurisdiction.model_validate(table)
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc.errors())) from None


def _describe(path: Path, errors: list[Any]) -> str:
    """One sentence for the most telling validation error: file, dotted field path, the problem.

    A misspelt key shows up twice, as an unknown key and as a missing one; the unknown key is the
    one the person typed, so it is reported, with the missing sibling as the likely intent.
    """
    unknown = [error for error in errors if error["type"] == "extra_forbidden"]
    error = unknown[0] if unknown else errors[0]
    field = _dotted(error["loc"])
    problem = (error.get("ctx") or {}).get("error")
    if isinstance(problem, FieldProblem):
        field = f"{field}.{problem.field}" if field else problem.field
        return f"{path}: field {field}: {problem.message}"
    if error["type"] == "missing":
        return f"{path}: field {field} is required"
    if error["type"] == "extra_forbidden":
        parent = tuple(error["loc"][:-1])
        missing = [
            str(other["loc"][-1])
            for other in errors
            if other["type"] == "missing" and tuple(other["loc"][:-1]) == parent
        ]
        hint = difflib.get_close_matches(str(error["loc"][-1]), missing, n=1)
        intent = f"did you mean {hint[0]!r}?" if hint else "not a jurisdiction setting"
        return f"{path}: unknown field {field} ({intent})"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch":
        message = _PATTERNS.get(str((error.get("ctx") or {}).get("pattern")), message)
    value = error.get("input")
    if isinstance(value, str | int | float | bool) and len(repr(value)) <= 60:
        message = f"{message} (got {value!r})"
    return f"{path}: field {field or 'file'}: {message}"


def _dotted(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part != "[key]":
            parts.append(f".{part}" if parts else part)
    return "".join(parts)
