"""Application and eligibility against the shipped jurisdiction files [CF §16]."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hub.permits.eligibility import (
    INELIGIBILITY_TITLES,
    Accepted,
    ApplicationFacts,
    Incomplete,
    Ineligible,
    Outcome,
    ProofOnFile,
    assess,
    months_between,
)
from hub.permits.jurisdictions import (
    ConditionKind,
    Exemption,
    Jurisdiction,
    Names,
    load_jurisdictions,
)

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "jurisdictions"
TODAY = date(2024, 3, 1)  # a leap year
LONG_AGO = date(2023, 1, 1)
BASE = frozenset({"id-card", "photo"})

# Division codes (GB/T 2260)
HONGSHAN, YUANBAOSHAN, SONGSHAN, NINGCHENG, BALINZUO = (
    "150402",
    "150403",
    "150404",
    "150429",
    "150422",
)
HOHHOT_XINCHENG, HOHHOT_HUIMIN = "150102", "150103"
HAISHU, YINZHOU = "330203", "330212"  # Ningbo
XIANGCHENG, LONGHAI = "350602", "350681"  # Zhangzhou
XINGNING, QINGXIU = "450102", "450103"  # Nanning
LUAN = "342401"  # 六安, Anhui: outside every configured jurisdiction
RESIDENCE = {
    "chifeng": HONGSHAN,
    "inner-mongolia": HOHHOT_XINCHENG,
    "ningbo": HAISHU,
    "zhangzhou": XIANGCHENG,
    "nanning": XINGNING,
}


@pytest.fixture(scope="module")
def shipped() -> dict[str, Jurisdiction]:
    return load_jurisdictions(SHIPPED)


def facts(jurisdiction: str, **changes: Any) -> ApplicationFacts:
    base = ApplicationFacts(
        household_region=LUAN,
        residence_region=RESIDENCE[jurisdiction],
        residence_start=LONG_AGO,
        claimed_condition=None,
        claimed_form=None,
        exemption=None,
        materials_presented=BASE,
        proofs=(),
    )
    return replace(base, **changes)


def proof(kind: str, department: str, **details: Any) -> ProofOnFile:
    valid_to = details.pop("valid_to", None)
    valid_from = details.pop("valid_from", date(2024, 1, 1))
    return ProofOnFile(kind, department, valid_from, valid_to, details)


def insurance(months: int, **details: Any) -> ProofOnFile:
    details.setdefault("continuous", True)
    return proof("social-insurance", "hr-social-security", months=months, **details)


EMPLOYED = proof("employment", "hr-social-security")
RENTAL = proof("rental-registration", "housing")


def run(
    shipped: dict[str, Jurisdiction], code: str, today: date = TODAY, **changes: Any
) -> Outcome:
    return assess(shipped[code], facts(code, **changes), today)


def codes(outcome: Outcome) -> list[str]:
    assert isinstance(outcome, Incomplete), outcome
    return [material.code for material in outcome.missing]


# --- excluded moves and household outside ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "household", "residence", "refusal", "cite"),
    [
        ("chifeng", HONGSHAN, YUANBAOSHAN, "excluded-move", "[CF §2]"),
        ("chifeng", SONGSHAN, HONGSHAN, "excluded-move", "[CF §2]"),
        ("chifeng", YUANBAOSHAN, SONGSHAN, "excluded-move", "[CF §2]"),
        ("chifeng", HONGSHAN, HONGSHAN, "excluded-move", "[CF §2]"),  # exclusion checked first
        ("chifeng", BALINZUO, BALINZUO, "household-not-outside", "[CF §2]"),
        ("inner-mongolia", HOHHOT_HUIMIN, HOHHOT_XINCHENG, "household-not-outside", "[NAT §2]"),
        ("ningbo", YINZHOU, HAISHU, "household-not-outside", "[NAT §2]"),
        ("zhangzhou", LONGHAI, XIANGCHENG, "household-not-outside", "[ZZ] 二(二)"),
        ("nanning", QINGXIU, XINGNING, "household-not-outside", "[NAT §2]"),
    ],
)
def test_who_may_apply_at_all(
    shipped: dict[str, Jurisdiction],
    code: str,
    household: str,
    residence: str,
    refusal: str,
    cite: str,
) -> None:
    outcome = run(
        shipped,
        code,
        household_region=household,
        residence_region=residence,
        materials_presented=BASE | {"lease-contract", "address-proof"},
    )
    assert isinstance(outcome, Ineligible)
    assert (outcome.code, outcome.cite) == (refusal, cite)
    assert outcome.zh and outcome.en


@pytest.mark.parametrize(
    ("household", "residence"),
    [
        (HONGSHAN, NINGCHENG),  # city district to a county: not among the three districts
        (NINGCHENG, HONGSHAN),
        (BALINZUO, NINGCHENG),  # two banners of Chifeng: county level suffices [CF §2]
        (LUAN, HONGSHAN),
    ],
)
def test_chifeng_moves_that_may_apply(
    shipped: dict[str, Jurisdiction], household: str, residence: str
) -> None:
    outcome = run(
        shipped,
        "chifeng",
        household_region=household,
        residence_region=residence,
        claimed_condition="residence",
        claimed_form="rented",
        materials_presented=BASE | {"lease-contract"},
    )
    assert outcome == Accepted("residence", "rented", "documents", (), None, LONG_AGO)


def test_inner_mongolia_counts_cities_so_chifeng_household_may_apply_in_hohhot(
    shipped: dict[str, Jurisdiction],
) -> None:
    outcome = run(
        shipped,
        "inner-mongolia",
        household_region=HONGSHAN,
        materials_presented=BASE | {"address-proof"},
    )
    assert isinstance(outcome, Accepted)
    assert (outcome.condition, outcome.form) == ("residence", "owned")


# --- residence months ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "today", "eligible"),
    [
        (date(2023, 9, 15), date(2024, 3, 14), False),  # 5 months 29 days
        (date(2023, 9, 15), date(2024, 3, 15), True),  # 6 months exactly
        (date(2023, 8, 31), date(2024, 2, 28), False),  # leap year: due 29 February
        (date(2023, 8, 31), date(2024, 2, 29), True),
        (date(2022, 8, 31), date(2023, 2, 27), False),  # common year: due 28 February
        (date(2022, 8, 31), date(2023, 2, 28), True),
        (date(2024, 2, 29), date(2024, 8, 28), False),
        (date(2024, 2, 29), date(2024, 8, 29), True),
        (date(2023, 12, 31), date(2024, 6, 29), False),  # June has no 31st: due 30 June
        (date(2023, 12, 31), date(2024, 6, 30), True),
    ],
)
def test_half_a_year_in_calendar_months(
    shipped: dict[str, Jurisdiction], start: date, today: date, eligible: bool
) -> None:
    for code in ("zhangzhou", "chifeng", "nanning"):
        outcome = run(
            shipped,
            code,
            today,
            residence_start=start,
            claimed_condition="study",
            materials_presented=BASE | {"study-proof"},
        )
        if eligible:
            assert isinstance(outcome, Accepted), (code, outcome)
            assert outcome.residence_start == start
        else:
            assert isinstance(outcome, Ineligible), (code, outcome)
            assert outcome.code == "residence-too-short"
            assert outcome.cite == shipped[code].application.residence.cite


def test_residence_too_short_says_when_it_will_be_enough(
    shipped: dict[str, Jurisdiction],
) -> None:
    outcome = run(shipped, "zhangzhou", date(2024, 2, 28), residence_start=date(2023, 8, 31))
    assert isinstance(outcome, Ineligible)
    assert "2024-02-29" in outcome.en and "2024-02-29" in outcome.zh
    assert outcome.cite == "[ZZ] 二(二)"


@pytest.mark.parametrize(
    ("registration", "eligible"),
    [
        (proof("residence-registration", "public-security", valid_from=date(2023, 6, 1)), True),
        (  # a record that has ended does not prove residence up to today
            proof(
                "residence-registration",
                "public-security",
                valid_from=date(2023, 6, 1),
                valid_to=date(2024, 2, 29),
            ),
            False,
        ),
        (proof("residence-registration", "housing", valid_from=date(2023, 6, 1)), False),
    ],
)
def test_registration_on_file_may_start_residence_earlier(
    shipped: dict[str, Jurisdiction], registration: ProofOnFile, eligible: bool
) -> None:
    outcome = run(
        shipped,
        "chifeng",
        residence_start=date(2024, 1, 10),
        proofs=(registration,),
        materials_presented=BASE | {"study-proof"},
    )
    if eligible:
        assert isinstance(outcome, Accepted)
        assert outcome.residence_start == date(2023, 6, 1)
        assert outcome.proofs_used == (registration,)
    else:
        assert isinstance(outcome, Ineligible)
        assert outcome.code == "residence-too-short"


# --- Ningbo: social insurance --------------------------------------------------------------------

PAPER_CONTRACT = BASE | {"labour-contract", "employment-registration"}


@pytest.mark.parametrize(
    ("record", "presented", "result"),
    [
        (insurance(11), PAPER_CONTRACT, "insurance-too-short"),
        (insurance(12), PAPER_CONTRACT, "accepted"),
        (insurance(14, back_paid_months=3), PAPER_CONTRACT, "insurance-too-short"),
        (insurance(14, back_paid_months=2), PAPER_CONTRACT, "accepted"),
        (insurance(24, work_injury_only=True), PAPER_CONTRACT, "insurance-too-short"),
        (insurance(24, continuous=False), PAPER_CONTRACT, "insurance-not-continuous"),
        # the department's record prevails over the paper record brought to the window
        (insurance(11), PAPER_CONTRACT | {"social-insurance-record"}, "insurance-too-short"),
        # a record from a department that does not keep insurance is no record
        (
            proof("social-insurance", "housing", months=11, continuous=True),
            PAPER_CONTRACT,
            "incomplete",
        ),
        # malformed details prove nothing either way
        (
            proof("social-insurance", "hr-social-security", months="14"),
            PAPER_CONTRACT,
            "incomplete",
        ),
        (proof("social-insurance", "hr-social-security", months=14), PAPER_CONTRACT, "incomplete"),
    ],
)
def test_ningbo_twelve_months_of_continuous_insurance(
    shipped: dict[str, Jurisdiction], record: ProofOnFile, presented: frozenset[str], result: str
) -> None:
    outcome = run(
        shipped,
        "ningbo",
        claimed_condition="employment",
        claimed_form="labour-contract",
        materials_presented=presented,
        proofs=(record,),
    )
    if result == "accepted":
        assert outcome == Accepted(
            "employment", "labour-contract", "documents", (record,), None, LONG_AGO
        )
    elif result == "incomplete":
        assert codes(outcome) == ["social-insurance-record"]
    else:
        assert isinstance(outcome, Ineligible)
        assert (outcome.code, outcome.cite) == (result, "[NB] 二(一)1")


def test_insurance_refusal_explains_what_was_not_counted(shipped: dict[str, Jurisdiction]) -> None:
    outcome = run(
        shipped,
        "ningbo",
        claimed_condition="employment",
        materials_presented=PAPER_CONTRACT,
        proofs=(insurance(14, back_paid_months=3),),
    )
    assert isinstance(outcome, Ineligible)
    assert "11 months" in outcome.en and "3 back-paid" in outcome.en
    assert "补缴 3 个月不计" in outcome.zh


def test_too_little_insurance_on_file_and_no_documents_is_ineligible(
    shipped: dict[str, Jurisdiction],
) -> None:
    # Claiming employment without naming a form: both forms that need insurance are refused by
    # the record; the land and fishery forms, which the applicant showed nothing for, are not
    # offered as "incomplete".
    outcome = run(
        shipped, "ningbo", claimed_condition="employment", proofs=(EMPLOYED, insurance(11))
    )
    assert isinstance(outcome, Ineligible)
    assert (outcome.code, outcome.cite) == ("insurance-too-short", "[NB] 二(一)1")


def test_one_good_record_is_enough_when_another_is_short(shipped: dict[str, Jurisdiction]) -> None:
    old, new = insurance(5), insurance(13)
    outcome = run(shipped, "ningbo", proofs=(old, EMPLOYED, new))
    assert outcome == Accepted(
        "employment", "labour-contract", "record-on-file", (EMPLOYED, new), None, LONG_AGO
    )


# --- record on file -------------------------------------------------------------------------------


def test_record_on_file_accepted_with_no_paper(shipped: dict[str, Jurisdiction]) -> None:
    records = (EMPLOYED, insurance(12))
    outcome = run(shipped, "ningbo", proofs=records)
    assert outcome == Accepted(
        "employment", "labour-contract", "record-on-file", records, None, LONG_AGO
    )


def test_rental_registration_on_file_meets_ningbo_residence(
    shipped: dict[str, Jurisdiction],
) -> None:
    outcome = run(shipped, "ningbo", proofs=(RENTAL,))
    assert outcome == Accepted("residence", "rented", "record-on-file", (RENTAL,), None, LONG_AGO)


def test_business_licence_on_file_from_market_regulation(shipped: dict[str, Jurisdiction]) -> None:
    licence = proof("business-licence", "market-regulation")
    records = (licence, insurance(12))
    outcome = run(shipped, "ningbo", claimed_form="business-licence", proofs=records)
    assert outcome == Accepted(
        "employment", "business-licence", "record-on-file", records, None, LONG_AGO
    )


def test_record_on_file_still_needs_the_id_card_and_photo(shipped: dict[str, Jurisdiction]) -> None:
    outcome = run(shipped, "ningbo", materials_presented=frozenset({"photo"}), proofs=(RENTAL,))
    assert codes(outcome) == ["id-card"]
    assert isinstance(outcome, Incomplete)
    assert (outcome.condition, outcome.form) == ("residence", "rented")


@pytest.mark.parametrize(
    ("valid_from", "valid_to", "counts"),
    [
        (date(2023, 3, 1), date(2024, 2, 29), False),  # expired yesterday (leap day)
        (date(2023, 3, 1), TODAY, True),  # valid through today
        (date(2024, 3, 2), None, False),  # not valid yet
        (TODAY, None, True),
    ],
)
def test_only_records_valid_today_count(
    shipped: dict[str, Jurisdiction], valid_from: date, valid_to: date | None, counts: bool
) -> None:
    rental = ProofOnFile("rental-registration", "housing", valid_from, valid_to, {})
    outcome = run(
        shipped, "ningbo", claimed_condition="residence", claimed_form="rented", proofs=(rental,)
    )
    if counts:
        assert isinstance(outcome, Accepted)
        assert outcome.met_by == "record-on-file"
    else:
        assert codes(outcome) == ["lease-contract"]


def test_record_from_a_department_not_accepted_for_the_condition(
    shipped: dict[str, Jurisdiction],
) -> None:
    rental = proof("rental-registration", "public-security")
    outcome = run(shipped, "ningbo", claimed_condition="residence", proofs=(rental,))
    assert isinstance(outcome, Incomplete)
    assert outcome.form == "own-property"  # nothing engaged: the nearest form of the claim


@pytest.mark.parametrize("code", ["chifeng", "zhangzhou", "nanning", "inner-mongolia"])
def test_record_on_file_only_where_the_jurisdiction_accepts_it(
    shipped: dict[str, Jurisdiction], code: str
) -> None:
    outcome = run(shipped, code, claimed_condition="residence", claimed_form=None, proofs=(RENTAL,))
    assert isinstance(outcome, Incomplete)
    assert outcome.condition == "residence"
    assert codes(outcome) == [{"chifeng": "lease-contract"}.get(code, "address-proof")]


def test_land_contract_is_always_proved_on_paper(shipped: dict[str, Jurisdiction]) -> None:
    outcome = run(
        shipped,
        "ningbo",
        claimed_form="land-contract",
        proofs=(proof("employment", "hr-social-security", months=24),),
    )
    assert codes(outcome) == ["land-transfer-contract"]
    presented = BASE | {"land-transfer-contract"}
    outcome = run(shipped, "ningbo", claimed_form="land-contract", materials_presented=presented)
    assert isinstance(outcome, Accepted)
    assert (outcome.form, outcome.met_by) == ("land-contract", "documents")


# --- Ningbo: study ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("details", "today", "presented", "result"),
    [
        ({"months": 11}, TODAY, {"study-proof"}, "study-too-short"),
        ({"months": 12}, TODAY, {"study-proof"}, "accepted"),
        ({"since": "2023-02-28"}, date(2024, 2, 27), {"study-proof"}, "study-too-short"),
        ({"since": "2023-02-28"}, date(2024, 2, 28), {"study-proof"}, "accepted"),
        ({"since": "2023-03-31"}, date(2024, 3, 30), {"study-proof"}, "study-too-short"),
        ({"since": "2023-03-31"}, date(2024, 3, 31), {"study-proof"}, "accepted"),
        # [NB] 二(三) names no record on file for study: the paper is still needed
        ({"months": 12}, TODAY, set(), "incomplete"),
        ({"months": 11}, TODAY, set(), "study-too-short"),
        ({"since": "not a date"}, TODAY, {"study-proof"}, "accepted"),  # staff checked the paper
    ],
)
def test_ningbo_twelve_months_of_study(
    shipped: dict[str, Jurisdiction],
    details: dict[str, Any],
    today: date,
    presented: set[str],
    result: str,
) -> None:
    enrolment = ProofOnFile("school-enrolment", "education", date(2023, 1, 1), None, details)
    outcome = run(
        shipped,
        "ningbo",
        today,
        claimed_condition="study",
        materials_presented=BASE | presented,
        proofs=(enrolment,),
    )
    if result == "accepted":
        assert isinstance(outcome, Accepted)
        assert (outcome.condition, outcome.form, outcome.met_by) == (
            "study",
            "enrolled",
            "documents",
        )
    elif result == "incomplete":
        assert codes(outcome) == ["study-proof"]
    else:
        assert isinstance(outcome, Ineligible)
        assert (outcome.code, outcome.cite) == (result, "[NB] 二(三)")


def test_study_elsewhere_has_no_minimum(shipped: dict[str, Jurisdiction]) -> None:
    enrolment = proof("school-enrolment", "education", months=1)
    for code in ("chifeng", "zhangzhou"):
        outcome = run(
            shipped, code, materials_presented=BASE | {"study-proof"}, proofs=(enrolment,)
        )
        assert isinstance(outcome, Accepted)
        assert outcome.condition == "study"


# --- exemptions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("exemption", ["investor", "recognised-talent", "special-skills"])
def test_ningbo_exemption_waives_residence_and_conditions(
    shipped: dict[str, Jurisdiction], exemption: str
) -> None:
    outcome = run(shipped, "ningbo", residence_start=TODAY, exemption=exemption)
    assert outcome == Accepted(None, None, "exemption", (), exemption, None)


def test_exemption_still_needs_the_base_materials(shipped: dict[str, Jurisdiction]) -> None:
    outcome = run(
        shipped, "ningbo", exemption="investor", materials_presented=frozenset({"id-card"})
    )
    assert codes(outcome) == ["photo"]


def test_exemption_does_not_make_a_local_a_migrant(shipped: dict[str, Jurisdiction]) -> None:
    outcome = run(shipped, "ningbo", exemption="investor", household_region=YINZHOU)
    assert isinstance(outcome, Ineligible)
    assert outcome.code == "household-not-outside"


def test_exemption_waiving_only_residence_still_needs_a_condition(
    shipped: dict[str, Jurisdiction],
) -> None:
    ningbo = shipped["ningbo"]
    partial = Exemption(
        code="residence-only",
        name=Names(zh="仅免居住期限", en="residence only"),
        waives=("residence",),
        cite="[NB] 二",
    )
    application = ningbo.application.model_copy(update={"exemptions": (partial,)})
    changed = ningbo.model_copy(update={"application": application})
    start = facts("ningbo", exemption="residence-only", residence_start=TODAY)
    outcome = assess(changed, replace(start, claimed_condition="residence"), TODAY)
    assert isinstance(outcome, Incomplete)
    assert outcome.condition == "residence"
    outcome = assess(changed, replace(start, proofs=(RENTAL,)), TODAY)
    assert outcome == Accepted(
        "residence", "rented", "record-on-file", (RENTAL,), "residence-only", None
    )


@pytest.mark.parametrize(
    ("code", "exemption", "cite"),
    [
        ("zhangzhou", "investor", "[ZZ] 二(二)"),
        ("chifeng", "investor", "[CF §2][CF §15]"),
        ("nanning", "special-skills", "[NAT §2]"),
        ("ningbo", "astronaut", "[NB] 二"),
    ],
)
def test_unknown_exemption_refused(
    shipped: dict[str, Jurisdiction], code: str, exemption: str, cite: str
) -> None:
    outcome = run(shipped, code, exemption=exemption, residence_start=TODAY)
    assert isinstance(outcome, Ineligible)
    assert (outcome.code, outcome.cite) == ("unknown-exemption", cite)
    assert exemption in outcome.en


# --- incomplete: exactly what is missing ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "condition", "form", "presented", "missing"),
    [
        (
            "ningbo",
            "employment",
            "labour-contract",
            {"employment-registration"},
            ["id-card", "photo", "labour-contract", "social-insurance-record"],
        ),
        (
            "ningbo",
            "residence",
            "relative-property",
            {"photo"},
            ["id-card", "property-right-proof", "relative-proof"],
        ),
        (
            "chifeng",
            "residence",
            "purchased",
            {"id-card", "lease-contract"},
            ["photo", "purchase-contract"],
        ),
        ("chifeng", "employment", "appointed", set(), ["id-card", "photo", "employment-proof"]),
        ("zhangzhou", "study", "enrolled", {"id-card", "photo"}, ["study-proof"]),
        (
            "nanning",
            "employment",
            None,
            {"address-proof"},
            ["id-card", "photo", "employment-proof"],
        ),
    ],
)
def test_incomplete_lists_exactly_the_missing_materials_in_catalogue_order(
    shipped: dict[str, Jurisdiction],
    code: str,
    condition: str,
    form: str | None,
    presented: set[str],
    missing: list[str],
) -> None:
    outcome = run(
        shipped,
        code,
        claimed_condition=condition,
        claimed_form=form,
        materials_presented=frozenset(presented),
    )
    assert isinstance(outcome, Incomplete)
    assert codes(outcome) == missing
    catalogue = shipped[code].application.materials
    for material in outcome.missing:
        assert (material.zh, material.en) == (
            catalogue[material.code].name.zh,
            catalogue[material.code].name.en,
        )


def test_incomplete_follows_what_the_applicant_brought(shipped: dict[str, Jurisdiction]) -> None:
    # No claim; the relative-proof points at the near-relative form, not at the first form.
    outcome = run(shipped, "ningbo", materials_presented=BASE | {"relative-proof"})
    assert isinstance(outcome, Incomplete)
    assert (outcome.condition, outcome.form) == ("residence", "relative-property")
    assert codes(outcome) == ["property-right-proof"]


@pytest.mark.parametrize(
    ("code", "cite"),
    [("chifeng", "[CF §15]"), ("ningbo", "[NB] 二(一) [NB] 二(二) [NB] 二(三)")],
)
def test_nothing_claimed_nothing_shown(
    shipped: dict[str, Jurisdiction], code: str, cite: str
) -> None:
    outcome = run(shipped, code)
    assert isinstance(outcome, Ineligible)
    assert (outcome.code, outcome.cite) == ("no-condition-met", cite)


# --- national defaults --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "material", "condition", "form"),
    [
        ("zhangzhou", "employment-proof", "employment", "hired"),
        ("zhangzhou", "address-proof", "residence", "owned"),
        ("zhangzhou", "study-proof", "study", "enrolled"),
        ("nanning", "employment-proof", "employment", "employed"),
        ("nanning", "address-proof", "residence", "resident"),
        ("nanning", "study-proof", "study", "enrolled"),
    ],
)
def test_national_defaults_one_of_three_conditions_on_paper(
    shipped: dict[str, Jurisdiction],
    code: str,
    material: str,
    condition: ConditionKind,
    form: str,
) -> None:
    outcome = run(shipped, code, materials_presented=BASE | {material})
    assert outcome == Accepted(condition, form, "documents", (), None, LONG_AGO)


# --- arithmetic and input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        (date(2024, 1, 31), date(2024, 2, 28), 0),
        (date(2024, 1, 31), date(2024, 2, 29), 1),
        (date(2023, 1, 31), date(2023, 2, 28), 1),
        (date(2024, 2, 29), date(2025, 2, 27), 11),
        (date(2024, 2, 29), date(2025, 2, 28), 12),
        (date(2023, 3, 15), date(2024, 3, 14), 11),
        (date(2023, 3, 15), date(2024, 3, 15), 12),
        (date(2024, 3, 15), date(2024, 3, 1), 0),
    ],
)
def test_months_between(start: date, end: date, months: int) -> None:
    assert months_between(start, end) == months


@pytest.mark.parametrize(
    "changes",
    [
        {"household_region": "15040"},
        {"residence_region": "15040x"},
        {"residence_region": HAISHU},  # not in Chifeng
        {"claimed_form": "land-contract"},  # a Ningbo form
        {"claimed_condition": "study", "claimed_form": "rented"},
    ],
)
def test_input_the_window_should_never_send(
    shipped: dict[str, Jurisdiction], changes: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        run(shipped, "chifeng", **changes)


def test_every_ineligibility_code_has_titles() -> None:
    for zh, en in INELIGIBILITY_TITLES.values():
        assert zh and en
    with pytest.raises(ValueError, match="no entry"):
        Ineligible("made-up", "x", "x", "[CF §2]")
