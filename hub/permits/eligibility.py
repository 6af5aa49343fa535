"""Whether an application for a permit is accepted, incomplete or ineligible [CF §16].

Pure rules: no storage, no framework, no clock reads (`today` is a parameter). The numbers and
the cites come from the jurisdiction's configuration (`hub.permits.jurisdictions.Application`);
the facts come from the window (materials presented) and from the `proof` table (records on file
with the competent departments, filled by staff now and by department connectors later).

Order of checks, and why
------------------------
1. **Excluded move** [CF §2]: a refusal whatever else is true, so it comes first; a move between
   two of Chifeng's city districts is reported as that rule, not as "household not outside".
2. **Household outside** the county (6 digits) or city (4 digits) of residence: who is a migrant
   (流动人口) at all. Exemptions do not waive it.
3. **Exemption** claimed: an unknown one is refused here, before it could waive anything.
4. **Residence months** (unless waived): the half year is the first condition every seed names.
5. **A condition** (unless waived): employment, residence or study, by one of its forms; the
   form's rules (months, social insurance) are checked on the competent department's records,
   which prevail over paper ("以主管部门甄别为准" [NB]); its materials are covered by records on
   file where the jurisdiction accepts them, else must be presented at the window.
6. **Materials**: what is still missing, all at once, in the catalogue's order → `Incomplete`.

Proof kinds (`ProofOnFile.kind`) and the `details` keys relied on
-----------------------------------------------------------------
=======================  ==================  =====================================================
kind                     owner department    details
=======================  ==================  =====================================================
residence-registration   public-security     none; residence counts from `valid_from` (e.g. years
                                             under a temporary-residence permit [CF §32])
employment               hr-social-security  `months` (int) or `since` (ISO date), optional
business-licence         market-regulation   `months` or `since`, optional
social-insurance         hr-social-security  `months` (int, contribution months in the current
                                             run, back-payments included), `continuous` (bool),
                                             `back_paid_months` (int, default 0),
                                             `work_injury_only` (bool, default false)
rental-registration      housing             `months` or `since`, optional
property-registration    housing             `months` or `since`, optional
school-enrolment         education           `months` or `since` (date enrolled)
=======================  ==================  =====================================================

A proof counts only on the days it is valid (`valid_from` ≤ today ≤ `valid_to`), only from the
department that owns its kind, and only if its details are well typed (a malformed proof neither
meets nor refuses anything). `months` is the length as recorded; `since` counts calendar months
to `today` (Civil Code art. 202, as `add_months` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from hub.permits.domain import add_months
from hub.permits.jurisdictions import (
    Application,
    Condition,
    ConditionKind,
    ExcludedMoves,
    Form,
    Jurisdiction,
    SocialInsurance,
)
from hub.permits.problems import CLAIM_INVALID, INELIGIBILITY_TITLES
from hub.problems import DomainProblem, Problem, Text

MetBy = Literal["record-on-file", "documents", "exemption"]


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProofOnFile:
    """One row of the `proof` table as the rules see it (see the module doc for the kinds)."""

    kind: str
    source_department: str
    valid_from: date
    valid_to: date | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class ApplicationFacts:
    """What the window knows: the two division codes, the registered residence start, what the
    applicant claims and presents, and the records on file for the applicant."""

    household_region: str
    """6-digit division code (GB/T 2260) of the household registration (户籍地)."""
    residence_region: str
    """6-digit division code of the current address."""
    residence_start: date
    """The day residence counts from (registration, or a restart after a late report)."""
    claimed_condition: ConditionKind | None = None
    claimed_form: str | None = None
    exemption: str | None = None
    materials_presented: frozenset[str] = frozenset()
    proofs: Sequence[ProofOnFile] = ()


@dataclass(frozen=True)
class ProofKind:
    condition: ConditionKind | None
    owners: frozenset[str]
    """The departments whose record of this kind is authoritative."""
    stands_for: frozenset[str]
    """Material codes (as the jurisdiction files name them) a record of this kind replaces."""


PROOF_KINDS: Mapping[str, ProofKind] = {
    "residence-registration": ProofKind(None, frozenset({"public-security"}), frozenset()),
    "employment": ProofKind(
        "employment",
        frozenset({"hr-social-security"}),
        frozenset({"employment-proof", "labour-contract", "employment-registration"}),
    ),
    "business-licence": ProofKind(
        "employment", frozenset({"market-regulation"}), frozenset({"business-licence"})
    ),
    "social-insurance": ProofKind(
        "employment", frozenset({"hr-social-security"}), frozenset({"social-insurance-record"})
    ),
    "rental-registration": ProofKind(
        "residence", frozenset({"housing"}), frozenset({"lease-contract", "address-proof"})
    ),
    "property-registration": ProofKind(
        "residence",
        frozenset({"housing"}),
        frozenset(
            {"property-right-proof", "property-certificate", "purchase-contract", "address-proof"}
        ),
    ),
    "school-enrolment": ProofKind("study", frozenset({"education"}), frozenset({"study-proof"})),
    # Reports by employers, property managers, agencies and landlords [CF §6-9], matched to a
    # registration by the acceptance office (hub.permits.reports): on file, no condition.
    "hire-report": ProofKind(None, frozenset({"public-security"}), frozenset()),
    "tenancy-report": ProofKind(None, frozenset({"public-security"}), frozenset()),
    # On file for the departments' services (health records, civil-affairs records); no
    # permit condition reads them yet.
    "health-service": ProofKind(None, frozenset({"health"}), frozenset()),
    "civil-affairs": ProofKind(None, frozenset({"civil-affairs"}), frozenset()),
}
"""Which records replace which materials. A material no kind stands for (e.g. Ningbo's land
transfer contract) is always proved on paper; a new material code must be added here to be
replaceable by a record on file."""


# --- outcomes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """Complete and eligible: the window accepts and issues a receipt (回执) [CF §16]; the
    receipt number is minted by the service that stores the application."""

    condition: ConditionKind | None
    form: str | None
    met_by: MetBy
    proofs_used: tuple[ProofOnFile, ...] = ()
    exemption: str | None = None
    residence_start: date | None = None
    """The day residence counted from (None when an exemption waived residence)."""


@dataclass(frozen=True)
class MissingMaterial:
    code: str
    zh: str
    en: str


@dataclass(frozen=True)
class Incomplete:
    """Eligible as far as the facts show, but these materials are missing, all at once, in the
    jurisdiction's catalogue order [CF §16][NAT §9]; `condition`/`form` say for which path."""

    missing: list[MissingMaterial]
    condition: ConditionKind | None = None
    form: str | None = None


@dataclass(frozen=True)
class Ineligible:
    """Not eligible, by one rule, with the jurisdiction's cite for it [CF §16]."""

    code: str
    zh: str
    en: str
    cite: str

    def __post_init__(self) -> None:
        if self.code not in INELIGIBILITY_TITLES:
            raise ValueError(f"ineligibility code {self.code!r} has no entry in the titles")


Outcome = Accepted | Incomplete | Ineligible


class ClaimInvalid(DomainProblem, ValueError):
    """A claim the jurisdiction cannot hear, which no assessment can answer: a condition or form
    it does not have (or stored facts it does not cover). It says so in both languages and
    carries `forms`, every form code one may claim there by condition, so that the window can
    offer the choices instead of guessing again; `pointer` names the field at fault, if any."""

    def __init__(
        self, jurisdiction: Jurisdiction, zh: str, en: str, pointer: str | None = None
    ) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en
        if pointer is not None:
            self.at(pointer)
        self.forms: dict[str, list[str]] = {
            kind: [form.code for form in condition.forms]
            for kind, condition in jurisdiction.application.conditions.items()
        }

    def problem(self) -> Problem:
        text = Text(self.zh, self.en)
        return Problem(
            CLAIM_INVALID, text, errors=self.field_errors(text), extensions={"forms": self.forms}
        )


# --- the assessment ----------------------------------------------------------------------------


def assess(jurisdiction: Jurisdiction, facts: ApplicationFacts, today: date) -> Outcome:
    """Decide an application on `today`, in the order the module doc explains.

    Raises ClaimInvalid (a ValueError) for a claim the jurisdiction cannot hear: a condition
    or form it does not have, or stored facts it does not cover (a malformed division code, a
    residence outside it).
    """
    app = jurisdiction.application
    _check_input(jurisdiction, facts)
    excluded = app.excluded_move(facts.household_region, facts.residence_region)
    if excluded is not None:
        return Ineligible(
            "excluded-move",
            f"户籍在{_zh_list(excluded)}之间相互流动的，不予办理居住证（{excluded.name.zh}）",
            f"No permit for {excluded.name.en} (household and residence both in "
            f"{_en_list(excluded)})",
            excluded.cite,
        )
    outside = app.household_outside
    digits = 6 if outside.level == "county" else 4
    if facts.household_region[:digits] == facts.residence_region[:digits]:
        zh_level, en_level = ("县级行政区", "county") if digits == 6 else ("城市", "city")
        return Ineligible(
            "household-not-outside",
            f"户籍地与居住地在同一{zh_level}，不属于流动人口",
            f"The household is registered in the same {en_level} as the residence",
            outside.cite,
        )
    waives: tuple[str, ...] = ()
    if facts.exemption is not None:
        exemption = next((x for x in app.exemptions if x.code == facts.exemption), None)
        if exemption is None:
            return _unknown_exemption(app, facts.exemption)
        waives = exemption.waives
    usable = [p for p in facts.proofs if p.valid_on(today) and _owned(p)]
    used: list[ProofOnFile] = []
    start: date | None = None
    if "residence" not in waives:
        start, registration = _residence_start(facts, usable)
        if registration is not None:
            used.append(registration)
        due = add_months(start, app.residence.minimum_months)
        if due > today:
            months = app.residence.minimum_months
            return Ineligible(
                "residence-too-short",
                f"居住登记自 {start.isoformat()} 起未满 {months} 个月，"
                f"最早 {due.isoformat()} 可申领",
                f"Registered residence since {start.isoformat()} is shorter than {months} "
                f"months; eligible from {due.isoformat()}",
                app.residence.cite,
            )
    if "conditions" in waives:
        missing = _missing(app, app.base_materials.materials, facts.materials_presented, set())
        if missing:
            return Incomplete(missing)
        return Accepted(None, None, "exemption", tuple(used), facts.exemption, start)
    outcome = _conditions(app, facts, usable, today)
    if isinstance(outcome, Accepted):
        proofs = tuple(used) + outcome.proofs_used
        return Accepted(
            outcome.condition, outcome.form, outcome.met_by, proofs, facts.exemption, start
        )
    return outcome


def _check_input(jurisdiction: Jurisdiction, facts: ApplicationFacts) -> None:
    name = jurisdiction.name
    for field_name in ("household_region", "residence_region"):
        code = getattr(facts, field_name)
        if len(code) != 6 or not code.isdigit():
            raise ClaimInvalid(
                jurisdiction,
                f"{field_name} 应为 6 位数字的行政区划代码",
                f"{field_name} must be a 6-digit division code",
            )
    if not jurisdiction.covers(facts.residence_region):
        raise ClaimInvalid(
            jurisdiction,
            f"居住地 {facts.residence_region} 不在{name.zh}，请在现居住地重新办理居住登记",
            f"The residence {facts.residence_region} is not in {name.en}: register it anew "
            "where it is",
        )
    conditions = jurisdiction.application.conditions
    claimed = facts.claimed_condition
    if claimed is not None and claimed not in conditions:
        raise ClaimInvalid(
            jurisdiction,
            f"{name.zh}没有“{claimed}”申领条件；可申领的条件及形式：{_forms_zh(conditions)}",
            f"{name.en} has no condition {claimed!r}; the conditions and their forms: "
            f"{_forms_en(conditions)}",
            pointer="/condition",
        )
    form = facts.claimed_form
    if form is None:
        return
    if claimed is not None and conditions[claimed].form(form) is None:
        condition = conditions[claimed]
        raise ClaimInvalid(
            jurisdiction,
            f"{name.zh}的{condition.name.zh}条件没有“{form}”这一形式；"
            f"可申领的形式：{'、'.join(f.code for f in condition.forms)}",
            f"{name.en} has no form {form!r} of {condition.name.en}; its forms: "
            f"{', '.join(f.code for f in condition.forms)}",
            pointer="/form",
        )
    if claimed is None and not any(condition.form(form) for condition in conditions.values()):
        raise ClaimInvalid(
            jurisdiction,
            f"{name.zh}没有“{form}”这一申领形式；可申领的条件及形式：{_forms_zh(conditions)}",
            f"{name.en} has no form {form!r}; the conditions and their forms: "
            f"{_forms_en(conditions)}",
            pointer="/form",
        )


def _forms_zh(conditions: Mapping[ConditionKind, Condition]) -> str:
    return "；".join(
        f"{condition.name.zh}（{kind}）：{'、'.join(form.code for form in condition.forms)}"
        for kind, condition in conditions.items()
    )


def _forms_en(conditions: Mapping[ConditionKind, Condition]) -> str:
    return "; ".join(
        f"{condition.name.en} ({kind}): {', '.join(form.code for form in condition.forms)}"
        for kind, condition in conditions.items()
    )


def _owned(proof: ProofOnFile) -> bool:
    kind = PROOF_KINDS.get(proof.kind)
    return kind is not None and proof.source_department in kind.owners


def _residence_start(
    facts: ApplicationFacts, usable: list[ProofOnFile]
) -> tuple[date, ProofOnFile | None]:
    """Registration start, or an earlier start of a registration on file that is still valid
    today, so continuous since then (e.g. imported temporary-permit years [CF §32])."""
    records = [p for p in usable if p.kind == "residence-registration"]
    earliest = min(records, key=lambda p: p.valid_from, default=None)
    if earliest is not None and earliest.valid_from < facts.residence_start:
        return earliest.valid_from, earliest
    return facts.residence_start, None


def _unknown_exemption(app: Application, code: str) -> Ineligible:
    known = ", ".join(x.code for x in app.exemptions)
    cites = [x.cite for x in app.exemptions] or [app.residence.cite]
    return Ineligible(
        "unknown-exemption",
        f"本地不适用“{code}”免除申领条件" + (f"（可适用：{known}）" if known else ""),
        f"Exemption {code!r} is not recognised here"
        + (f" (recognised: {known})" if known else "; the conditions apply to everyone"),
        _join(cites),
    )


# --- conditions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Path:
    """One form of one condition, evaluated against the facts."""

    kind: ConditionKind
    form: Form
    refusal: Ineligible | None
    missing: list[MissingMaterial]
    covered_all: bool
    engaged: bool
    proofs: tuple[ProofOnFile, ...]


def _conditions(
    app: Application, facts: ApplicationFacts, usable: list[ProofOnFile], today: date
) -> Outcome:
    """The first path met wins (config order); else the refusal or the missing materials of the
    paths the applicant has engaged (presented a material of, or has a record for)."""
    kinds = [facts.claimed_condition] if facts.claimed_condition else list(app.conditions)
    paths: list[_Path] = []
    for kind in kinds:
        condition = app.conditions[kind]
        for form in condition.forms:
            if facts.claimed_form is None or form.code == facts.claimed_form:
                paths.append(_evaluate(app, kind, condition, form, facts, usable, today))
    for path in paths:
        if path.refusal is None and not path.missing:
            met_by: MetBy = "record-on-file" if path.covered_all else "documents"
            return Accepted(path.kind, path.form.code, met_by, path.proofs)
    claimed = facts.claimed_form is not None or facts.claimed_condition is not None
    engaged = [path for path in paths if path.engaged] or (paths if claimed else [])
    open_paths = [path for path in engaged if path.refusal is None]
    if open_paths:
        nearest = min(open_paths, key=lambda path: len(path.missing))
        return Incomplete(nearest.missing, nearest.kind, nearest.form.code)
    refused = [path.refusal for path in engaged if path.refusal is not None]
    if refused:
        return refused[0]
    cites = [app.conditions[kind].cite for kind in kinds]
    return Ineligible(
        "no-condition-met",
        "未提供合法稳定就业、合法稳定住所或连续就读的证明，主管部门也无记录备案；请说明申领所依据的条件",
        "No proof of stable employment, stable residence or continuous study was presented "
        "or is on file; claim a condition to learn which materials it needs",
        _join(cites),
    )


def _evaluate(
    app: Application,
    kind: ConditionKind,
    condition: Condition,
    form: Form,
    facts: ApplicationFacts,
    usable: list[ProofOnFile],
    today: date,
) -> _Path:
    materials = set(form.materials)
    relevant = [
        p
        for p in usable
        if PROOF_KINDS[p.kind].condition == kind and PROOF_KINDS[p.kind].stands_for & materials
    ]
    passing: list[ProofOnFile] = []
    refusal: Ineligible | None = None
    for proof_kind in dict.fromkeys(p.kind for p in relevant):
        verdicts = [(p, _verdict(p, kind, form, today)) for p in relevant if p.kind == proof_kind]
        good = [p for p, verdict in verdicts if verdict is True]
        passing.extend(good)
        failures = [v for _, v in verdicts if isinstance(v, Ineligible)]
        if not good and failures and refusal is None:
            refusal = failures[0]
    passing = [p for p in relevant if any(p is q for q in passing)]  # as the facts list them
    accepted = set(condition.record_on_file.departments) if condition.record_on_file else set()
    covered = {
        code
        for p in passing
        if p.source_department in accepted
        for code in PROOF_KINDS[p.kind].stands_for & materials
    }
    needed = app.materials_for(kind, form.code)
    missing = _missing(app, needed, facts.materials_presented, covered)
    own = materials - set(app.base_materials.materials)
    engaged = bool(relevant) or bool(own & facts.materials_presented)
    covered_all = bool(own) and own <= covered
    return _Path(kind, form, refusal, missing, covered_all, engaged, tuple(passing))


def _verdict(proof: ProofOnFile, kind: ConditionKind, form: Form, today: date) -> bool | Ineligible:
    """True: the record meets the form's rules; an Ineligible: it shows them unmet (the
    department's record prevails over paper); False: it cannot tell (missing or bad details)."""
    if proof.kind == "social-insurance":
        if form.social_insurance is None:
            return True
        return _insurance(proof.details, form.social_insurance)
    minimum = form.minimum_months
    if minimum is None:
        return True
    months = _months(proof.details, today)
    if months is None:
        return False
    if months >= minimum:
        return True
    code = "study-too-short" if kind == "study" else "condition-too-short"
    return Ineligible(
        code,
        f"{form.name.zh}：主管部门记录为 {months} 个月，须满 {minimum} 个月",
        f"{form.name.en}: the department's record shows {months} months, "
        f"at least {minimum} are required",
        form.cite,
    )


def _insurance(details: Mapping[str, Any], rule: SocialInsurance) -> bool | Ineligible:
    months = _int(details, "months")
    back_paid = _int(details, "back_paid_months", 0)
    injury_only = _bool(details, "work_injury_only", False)
    continuous = _bool(details, "continuous")
    if months is None or back_paid is None or injury_only is None:
        return False
    if rule.continuous and continuous is False:
        return Ineligible(
            "insurance-not-continuous",
            f"社会保险未连续缴纳（须连续缴纳满 {rule.minimum_months} 个月）",
            f"Social insurance was not paid continuously ({rule.minimum_months} continuous "
            "months are required)",
            rule.cite,
        )
    counted = months
    notes_zh: list[str] = []
    notes_en: list[str] = []
    if "work-injury-only" in rule.excluded and injury_only:
        counted = 0
        notes_zh.append("单独参加工伤保险不计")
        notes_en.append("work-injury insurance alone does not count")
    if "back-payment" in rule.excluded and back_paid:
        counted = max(counted - back_paid, 0)
        notes_zh.append(f"补缴 {back_paid} 个月不计")
        notes_en.append(f"{back_paid} back-paid months do not count")
    if counted < rule.minimum_months:
        zh_note = f"（{'，'.join(notes_zh)}）" if notes_zh else ""
        en_note = f" ({'; '.join(notes_en)})" if notes_en else ""
        return Ineligible(
            "insurance-too-short",
            f"社会保险可计缴费 {counted} 个月{zh_note}，须满 {rule.minimum_months} 个月",
            f"{counted} months of social insurance count{en_note}; "
            f"at least {rule.minimum_months} are required",
            rule.cite,
        )
    # Enough months, but a record that does not say they were continuous cannot prove it.
    return not (rule.continuous and continuous is None)


def _missing(
    app: Application, needed: Sequence[str], presented: frozenset[str], covered: set[str]
) -> list[MissingMaterial]:
    """The needed materials neither presented nor on file, in the catalogue's order."""
    absent = {code for code in needed if code not in presented and code not in covered}
    return [
        MissingMaterial(code, material.name.zh, material.name.en)
        for code, material in app.materials.items()
        if code in absent
    ]


# --- small helpers -----------------------------------------------------------------------------


def _months(details: Mapping[str, Any], today: date) -> int | None:
    """`months` as recorded, or whole calendar months from `since` to `today`."""
    months = _int(details, "months")
    if months is not None:
        return months
    since = details.get("since")
    if not isinstance(since, str):
        return None
    try:
        start = date.fromisoformat(since)
    except ValueError:
        return None
    return months_between(start, today)


def months_between(start: date, end: date) -> int:
    """Whole calendar months from `start` to `end`: the largest n with add_months(start, n) <=
    end (31 January to 28 February is one month in a common year)."""
    if end < start:
        return 0
    n = (end.year - start.year) * 12 + end.month - start.month
    while n > 0 and add_months(start, n) > end:
        n -= 1
    return n


def _int(details: Mapping[str, Any], key: str, default: int | None = None) -> int | None:
    value = details.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _bool(details: Mapping[str, Any], key: str, default: bool | None = None) -> bool | None:
    value = details.get(key, default)
    return value if isinstance(value, bool) else None


def _join(cites: Sequence[str]) -> str:
    return " ".join(dict.fromkeys(cites))


def _zh_list(excluded: ExcludedMoves) -> str:
    return "、".join(division.name.zh for division in excluded.divisions)


def _en_list(excluded: ExcludedMoves) -> str:
    return ", ".join(division.name.en for division in excluded.divisions)
