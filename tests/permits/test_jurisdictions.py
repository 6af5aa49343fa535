"""config/jurisdictions/*.toml: each seed's numbers, and one-sentence errors for bad files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from hub.clock import WorkingCalendar
from hub.permits.jurisdictions import (
    Jurisdiction,
    Period,
    iter_cites,
    jurisdiction_for,
    load_jurisdiction,
    load_jurisdictions,
)
from hub.settings import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "jurisdictions"
SEEDS = ROOT.parent / "shared" / "seeds"
CODES = {"chifeng", "inner-mongolia", "zhangzhou", "ningbo", "nanning"}
NATIONAL = ("zhangzhou", "ningbo", "nanning")  # card lifecycle from 居住证暂行条例 (seeds silent)
INNER_MONGOLIA = ("chifeng", "inner-mongolia")


@pytest.fixture(scope="module")
def shipped() -> dict[str, Jurisdiction]:
    return load_jurisdictions(SHIPPED)


# --- the shipped files ---------------------------------------------------------------------------


def test_every_shipped_file_loads(shipped: dict[str, Jurisdiction]) -> None:
    assert set(shipped) == CODES
    assert {path.stem for path in SHIPPED.glob("*.toml")} == CODES


@pytest.mark.parametrize(
    ("code", "tag", "document_number", "seed"),
    [
        ("chifeng", "CF", "赤政办发〔2017〕25号", "004_79d2fcddf7f5b742"),  # noqa: RUF001
        ("inner-mongolia", "IM", "内政办发〔2016〕60号", "000_91114df04b82546b"),  # noqa: RUF001
        ("zhangzhou", "ZZ", None, "001_1215674b71c9ab1f"),
        ("ningbo", "NB", "甬政办发〔2016〕184号", "002_29ef30ffa38c2cef"),  # noqa: RUF001
        ("nanning", "NN", None, "003_55ebbc1e5af6e529"),
    ],
)
def test_each_place_names_its_document(
    shipped: dict[str, Jurisdiction],
    code: str,
    tag: str,
    document_number: str | None,
    seed: str,
) -> None:
    document = shipped[code].document
    assert (document.tag, document.document_number, document.seed) == (tag, document_number, seed)


@pytest.mark.skipif(not SEEDS.is_dir(), reason="shared/seeds is not beside the repository")
def test_every_seed_named_exists(shipped: dict[str, Jurisdiction]) -> None:
    for jurisdiction in shipped.values():
        for source in jurisdiction.sources:
            if source.seed is not None:
                assert (SEEDS / f"{source.seed}.txt").is_file(), (jurisdiction.code, source.seed)


def test_every_cite_resolves_to_a_declared_document(shipped: dict[str, Jurisdiction]) -> None:
    for jurisdiction in shipped.values():
        cites = list(iter_cites(jurisdiction))
        assert len(cites) > 20
        for path, cite in cites:
            assert jurisdiction.source_of(cite), (jurisdiction.code, path, cite)


@pytest.mark.parametrize(
    ("division", "code"),
    [
        ("150402", "chifeng"),  # 红山区
        ("150429", "chifeng"),  # 宁城县
        ("150102", "inner-mongolia"),  # 呼和浩特 新城区
        ("152921", "inner-mongolia"),  # 阿拉善左旗
        ("350602", "zhangzhou"),  # 芗城区
        ("330212", "ningbo"),  # 鄞州区
        ("450103", "nanning"),  # 青秀区
        ("110101", None),  # 北京 东城区: not configured
    ],
)
def test_a_division_belongs_to_one_jurisdiction(
    shipped: dict[str, Jurisdiction], division: str, code: str | None
) -> None:
    found = jurisdiction_for(shipped, division)
    assert (found.code if found else None) == code


def test_the_inner_mongolia_permit_is_valid_across_the_region(
    shipped: dict[str, Jurisdiction],
) -> None:
    for code in INNER_MONGOLIA:
        assert shipped[code].permit.name.zh == "内蒙古自治区居住证"
        assert shipped[code].permit_valid_in("150203")  # 包头 [IM] 二(四)
        assert shipped[code].permit_valid_in("150402")
    assert not shipped["zhangzhou"].permit_valid_in("350102")  # 福州: seed silent, own city only
    assert shipped["ningbo"].permit.name.zh == "浙江省居住证"


# --- application ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(CODES))
def test_half_a_year_everywhere(shipped: dict[str, Jurisdiction], code: str) -> None:
    application = shipped[code].application
    assert application.residence.minimum_months == 6
    assert set(application.conditions) == {"employment", "residence", "study"}
    assert application.base_materials.materials == ("id-card", "photo")


def test_ningbo_residence_must_be_continuous(shipped: dict[str, Jurisdiction]) -> None:
    assert shipped["ningbo"].application.residence.continuous
    assert shipped["ningbo"].application.residence.cite == "[NB] 二"


@pytest.mark.parametrize("form", ["labour-contract", "business-licence"])
def test_ningbo_employment_needs_twelve_months_of_insurance(
    shipped: dict[str, Jurisdiction], form: str
) -> None:
    chosen = shipped["ningbo"].application.conditions["employment"].form(form)
    assert chosen is not None and chosen.social_insurance is not None
    insurance = chosen.social_insurance
    assert insurance.minimum_months == 12
    assert insurance.continuous
    assert set(insurance.excluded) == {"back-payment", "work-injury-only"}
    assert insurance.cite.startswith("[NB] 二(一)")


@pytest.mark.parametrize("form", ["land-contract", "fishery-certificate", "fishery-contract"])
def test_ningbo_farming_contracts_need_twelve_months(
    shipped: dict[str, Jurisdiction], form: str
) -> None:
    chosen = shipped["ningbo"].application.conditions["employment"].form(form)
    assert chosen is not None
    assert (chosen.minimum_months, chosen.social_insurance) == (12, None)


def test_ningbo_study_needs_twelve_months_and_has_no_record_on_file(
    shipped: dict[str, Jurisdiction],
) -> None:
    conditions = shipped["ningbo"].application.conditions
    enrolled = conditions["study"].form("enrolled")
    assert enrolled is not None and enrolled.minimum_months == 12
    assert conditions["study"].record_on_file is None  # [NB] 二(三) has no 记录备案 clause
    assert conditions["employment"].record_on_file is not None
    assert conditions["residence"].record_on_file is not None


def test_only_ningbo_accepts_a_record_on_file(shipped: dict[str, Jurisdiction]) -> None:
    for code, jurisdiction in shipped.items():
        records = [c.record_on_file for c in jurisdiction.application.conditions.values()]
        assert any(records) == (code == "ningbo")


def test_ningbo_exemptions(shipped: dict[str, Jurisdiction]) -> None:
    exemptions = shipped["ningbo"].application.exemptions
    assert {e.code for e in exemptions} == {
        "investor",
        "recognised-talent",
        "special-skills",
        "special-contribution",
        "urgently-needed-talent",
    }
    assert all(e.cite == "[NB] 二" for e in exemptions)
    assert all(not j.application.exemptions for c, j in shipped.items() if c != "ningbo")


def test_materials_for_a_form_list_exactly_what_the_window_needs(
    shipped: dict[str, Jurisdiction],
) -> None:
    ningbo = shipped["ningbo"].application
    assert ningbo.materials_for("employment", "labour-contract") == (
        "id-card",
        "photo",
        "labour-contract",
        "employment-registration",
        "social-insurance-record",
    )
    chifeng = shipped["chifeng"].application
    assert chifeng.materials_for("residence", "rented") == ("id-card", "photo", "lease-contract")
    assert chifeng.materials["lease-contract"].name.zh == "房屋租赁合同"
    with pytest.raises(KeyError):
        chifeng.materials_for("residence", "houseboat")


def test_chifeng_excludes_moves_among_its_three_districts(
    shipped: dict[str, Jurisdiction],
) -> None:
    application = shipped["chifeng"].application
    (excluded,) = application.excluded_moves
    assert {d.code: d.name.zh for d in excluded.divisions} == {
        "150402": "红山区",
        "150403": "元宝山区",
        "150404": "松山区",
    }
    assert excluded.cite == "[CF §2]"
    assert application.excluded_move("150402", "150404") is excluded
    assert application.excluded_move("150403", "150402") is excluded
    assert application.excluded_move("150421", "150402") is None  # 阿鲁科尔沁旗 -> 红山区
    assert application.excluded_move("150402", "150429") is None  # 红山区 -> 宁城县
    assert application.household_outside.level == "county"  # 旗县区以外户籍 [CF §2]
    for code in ("inner-mongolia", *NATIONAL):
        assert not shipped[code].application.excluded_moves
        assert shipped[code].application.household_outside.level == "city"


def test_chifeng_answers_at_the_window_with_a_receipt(shipped: dict[str, Jurisdiction]) -> None:
    outcomes = shipped["chifeng"].application.outcomes
    assert (outcomes.receipt, outcomes.missing_materials, outcomes.reason_given) == (
        True,
        "on-the-spot",
        True,
    )
    assert outcomes.cite == "[CF §16]"


@pytest.mark.parametrize("code", sorted(CODES))
def test_guardians_apply_for_minors_under_16(shipped: dict[str, Jurisdiction], code: str) -> None:
    proxy = shipped[code].application.proxy
    assert proxy is not None and proxy.minors_under_years == 16


def test_chifeng_registration(shipped: dict[str, Jurisdiction]) -> None:
    registration = shipped["chifeng"].registration
    assert registration.declare_within is not None
    assert registration.declare_within.within == Period(amount=7, unit="working-days")
    assert registration.declare_within.cite == "[CF §10]"
    assert registration.proxy is not None and registration.proxy.minors_under_years == 16
    reports = {duty.who: duty.within for duty in registration.third_party_reports}
    seven = Period(amount=7, unit="working-days")
    assert reports == {
        "employer": seven,
        "property-manager": seven,
        "agency": seven,
        "landlord": None,
    }
    for code in ("inner-mongolia", *NATIONAL):
        assert shipped[code].registration.declare_within is None  # no seed sets one


# --- issuance and the card's lifecycle ------------------------------------------------------------

LIFECYCLE = [
    # code, issuance days, applies to, endorsement window, restoration grace
    ("chifeng", 30, {"first", "renewal", "replacement"}, Period(amount=30, unit="days"), 30),
    ("inner-mongolia", 30, {"first", "renewal", "replacement"}, Period(amount=30, unit="days"), 30),
    ("zhangzhou", 15, {"first"}, Period(amount=1, unit="months"), None),
    ("ningbo", 15, {"first"}, Period(amount=1, unit="months"), None),
    ("nanning", 15, {"first"}, Period(amount=1, unit="months"), None),
]


@pytest.mark.parametrize(("code", "days", "applies_to", "window", "grace"), LIFECYCLE)
def test_issuance_and_endorsement(
    shipped: dict[str, Jurisdiction],
    code: str,
    days: int,
    applies_to: set[str],
    window: Period,
    grace: int | None,
) -> None:
    jurisdiction = shipped[code]
    deadline = jurisdiction.issuance.deadline
    assert deadline.within == Period(amount=days, unit="days")
    assert set(deadline.applies_to) == applies_to
    assert jurisdiction.issuance.validity.years == 1
    endorsement = jurisdiction.endorsement
    assert (endorsement.every_years, endorsement.window.extends_years) == (1, 1)
    assert endorsement.window.before_expiry == window
    restoration = endorsement.restoration.grace
    assert (restoration.amount if restoration else None) == grace
    if code in NATIONAL:
        assert deadline.cite == "[NAT §9]" and endorsement.window.cite == "[NAT §10]"


def test_only_chifeng_has_the_community_police_review(shipped: dict[str, Jurisdiction]) -> None:
    assert {code for code, j in shipped.items() if j.endorsement.review} == {"chifeng"}
    review = shipped["chifeng"].endorsement.review
    assert review is not None and review.by == "community-police"


def test_one_person_one_permit_in_chifeng(shipped: dict[str, Jurisdiction]) -> None:
    one = shipped["chifeng"].issuance.one_per_person
    assert one is not None and one.cite == "[CF §17]"


def test_address_change_deadlines(shipped: dict[str, Jurisdiction]) -> None:
    chifeng = shipped["chifeng"].address_change
    assert chifeng is not None
    assert chifeng.report.within == Period(amount=7, unit="working-days")
    assert chifeng.report.cite == "[CF §19]"
    # The duty is 7 working days; residence restarts only when over a month late [CF §19].
    assert chifeng.late is not None
    assert chifeng.late.after == Period(amount=1, unit="months")
    assert chifeng.late.effect == "residence-restarts-at-report"
    region = shipped["inner-mongolia"].address_change
    assert region is not None
    assert region.report.within == Period(amount=30, unit="days")
    assert region.late is None  # [IM] states no consequence
    for code in NATIONAL:
        assert shipped[code].address_change is None


# --- fees, cancellation, settlement, points -------------------------------------------------------


@pytest.mark.parametrize("code", sorted(CODES))
def test_fees(shipped: dict[str, Jurisdiction], code: str) -> None:
    fees = shipped[code].fees
    assert (fees.first_issuance.charge, fees.endorsement.charge) == ("free", "free")
    assert (fees.replacement.charge, fees.renewal.charge) == ("card-cost", "card-cost")
    assert fees.old_card_returned_on_renewal is not None
    registration = fees.registration.charge if fees.registration else None
    assert registration == ("free" if code in ("chifeng", "inner-mongolia", "zhangzhou") else None)


def test_chifeng_fees_cite_article_21(shipped: dict[str, Jurisdiction]) -> None:
    fees = shipped["chifeng"].fees
    assert fees.address_change is not None and fees.address_change.charge == "free"
    for fee in (fees.first_issuance, fees.endorsement, fees.replacement, fees.renewal):
        assert fee.cite == "[CF §21]"
    assert fees.old_card_returned_on_renewal is not None
    assert fees.old_card_returned_on_renewal.cite == "[CF §18]"


def test_chifeng_cancellation_and_settlement(shipped: dict[str, Jurisdiction]) -> None:
    chifeng = shipped["chifeng"]
    assert [reason.code for reason in chifeng.cancellation] == [
        "false-materials",
        "conditions-no-longer-met",
        "local-household-registration",
        "other",
    ]
    assert all(reason.cite.startswith("[CF §23]") for reason in chifeng.cancellation)
    assert chifeng.settlement is not None
    assert (chifeng.settlement.continuous_years, chifeng.settlement.permit_collected) == (3, True)
    assert chifeng.settlement.cite == "[CF §22]"
    assert all(shipped[code].settlement is None for code in CODES - {"chifeng"})


def test_points(shipped: dict[str, Jurisdiction]) -> None:
    ningbo = shipped["ningbo"].points
    assert ningbo is not None and ningbo.settlement_by_points
    assert set(ningbo.indicators) == {
        "residence-years",
        "employment-years",
        "social-insurance-years",
    }
    nanning = shipped["nanning"].points
    assert nanning is not None and nanning.indicators == ()


# --- periods --------------------------------------------------------------------------------------


def test_periods_in_days_working_days_and_months() -> None:
    calendar = WorkingCalendar()
    # Moved the day before National Day 2025 (1-8 October off, Saturday 11 October worked).
    working = Period(amount=7, unit="working-days").due_after(date(2025, 9, 30), calendar)
    assert (working.due, working.provisional) == (date(2025, 10, 16), False)
    days = Period(amount=30, unit="days").due_after(date(2025, 9, 30), calendar)
    assert days.due == date(2025, 10, 30)
    month = Period(amount=1, unit="months")
    assert month.due_after(date(2026, 1, 31), calendar).due == date(2026, 2, 28)
    assert month.before(date(2027, 3, 31)) == date(2027, 2, 28)
    assert Period(amount=30, unit="days").before(date(2027, 3, 31)) == date(2027, 3, 1)
    with pytest.raises(ValueError, match="days or months"):
        Period(amount=7, unit="working-days").before(date(2027, 3, 31))


# --- a new city is a new file --------------------------------------------------------------------


def _copy_shipped(tmp_path: Path) -> Path:
    directory = tmp_path / "jurisdictions"
    shutil.copytree(SHIPPED, directory)
    return directory


def _replace(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} should occur exactly once"
    return text.replace(old, new)


def test_a_new_city_is_just_a_new_file(tmp_path: Path) -> None:
    directory = _copy_shipped(tmp_path)
    text = (SHIPPED / "ningbo.toml").read_text()
    text = _replace(text, 'code = "ningbo"', 'code = "hangzhou"')
    text = _replace(
        text, 'name = { zh = "宁波市", en = "Ningbo" }', 'name = { zh = "杭州市", en = "Hangzhou" }'
    )
    text = _replace(text, 'divisions = ["3302"]', 'divisions = ["3301"]')
    (directory / "hangzhou.toml").write_text(text)

    loaded = load_jurisdictions(directory)
    assert set(loaded) == CODES | {"hangzhou"}
    found = jurisdiction_for(loaded, "330106")  # 西湖区
    assert found is not None and found.code == "hangzhou"


def test_a_league_with_its_own_measures_takes_its_prefix_from_the_region(tmp_path: Path) -> None:
    directory = _copy_shipped(tmp_path)
    text = (SHIPPED / "inner-mongolia.toml").read_text()
    ordos = _replace(text, 'code = "inner-mongolia"', 'code = "ordos"')
    start, end = ordos.index("divisions = ["), ordos.index("]\n", ordos.index("divisions = ["))
    (directory / "ordos.toml").write_text(ordos[:start] + 'divisions = ["1506"' + ordos[end:])

    with pytest.raises(ConfigError, match=r"ordos\.toml.*1506.*inner-mongolia\.toml"):
        load_jurisdictions(directory)

    region = directory / "inner-mongolia.toml"
    region.write_text(_replace(region.read_text(), '    "1506",  # 鄂尔多斯市 Ordos\n', ""))
    loaded = load_jurisdictions(directory)
    found = jurisdiction_for(loaded, "150602")  # 东胜区
    assert found is not None and found.code == "ordos"


# --- bad files -----------------------------------------------------------------------------------

Edit = Callable[[str], str]


def _edit(old: str, new: str) -> Edit:
    return lambda text: _replace(text, old, new)


BAD_EDITS: list[tuple[str, Edit, str]] = [
    # case, edit of chifeng.toml, what the one sentence must contain
    ("unknown top-level key", lambda t: 'colour = "red"\n' + t, "unknown field colour"),
    (
        "unknown nested key",
        _edit("continuous = false", "continous = false"),
        "unknown field application.residence.continous (did you mean 'continuous'?)",
    ),
    (
        "wrong type",
        _edit("minimum_months = 6", 'minimum_months = "six"'),
        "application.residence.minimum_months",
    ),
    (
        "a number written as a string",
        _edit("minimum_months = 6", 'minimum_months = "6"'),
        "application.residence.minimum_months",
    ),
    (
        "zero months",
        _edit("minimum_months = 6", "minimum_months = 0"),
        "application.residence.minimum_months",
    ),
    (
        "unknown deadline unit",
        _edit(
            'within = { amount = 30, unit = "days" }\napplies_to',
            'within = { amount = 30, unit = "weeks" }\napplies_to',
        ),
        "issuance.deadline.within.unit",
    ),
    (
        "missing cite",
        _edit('years = 1\ncite = "[CF §17]"', "years = 1"),
        "issuance.validity.cite is required",
    ),
    (
        "malformed cite",
        _edit('years = 1\ncite = "[CF §17]"', 'years = 1\ncite = "CF 17"'),
        "issuance.validity.cite",
    ),
    (
        "cite of an undeclared document",
        _edit('years = 1\ncite = "[CF §17]"', 'years = 1\ncite = "[XX §17]"'),
        "issuance.validity.cite",
    ),
    (
        "material not defined",
        _edit('materials = ["id-card", "photo"]', 'materials = ["id-card", "passport"]'),
        "application.base_materials.materials[1]",
    ),
    (
        "excluded district outside the city",
        _edit('code = "150404"', 'code = "150102"'),
        "application.excluded_moves[0].divisions[2].code",
    ),
    (
        "unknown condition",
        _edit("[application.conditions.study]", "[application.conditions.studies]"),
        "application.conditions.studies",
    ),
    (
        "unknown department",
        _edit('departments = ["education"]', 'departments = ["schools"]'),
        "application.conditions.study.verification.departments[0]",
    ),
    ("malformed TOML", _edit('code = "chifeng"', 'code = "chifeng'), "not valid TOML"),
]


@pytest.mark.parametrize(("case", "edit", "expected"), BAD_EDITS, ids=[c for c, _, _ in BAD_EDITS])
def test_a_bad_file_is_one_sentence_naming_file_and_field(
    tmp_path: Path, case: str, edit: Edit, expected: str
) -> None:
    path = tmp_path / "chifeng.toml"
    path.write_text(edit((SHIPPED / "chifeng.toml").read_text()))
    with pytest.raises(ConfigError) as raised:
        load_jurisdictions(tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message
    assert "\n" not in message and "Traceback" not in message


def test_the_file_must_be_named_after_its_code(tmp_path: Path) -> None:
    shutil.copy(SHIPPED / "chifeng.toml", tmp_path / "chi-feng.toml")
    with pytest.raises(
        ConfigError, match=r"chi-feng\.toml: field code is 'chifeng'.*chifeng\.toml"
    ):
        load_jurisdictions(tmp_path)


def test_a_code_may_be_used_once(tmp_path: Path) -> None:
    shutil.copy(SHIPPED / "chifeng.toml", tmp_path / "chifeng.toml")
    shutil.copy(SHIPPED / "chifeng.toml", tmp_path / "chifeng-2017.toml")
    with pytest.raises(ConfigError, match=r"chifeng\.toml: field code 'chifeng' is already used"):
        load_jurisdictions(tmp_path)


def test_a_division_may_not_belong_to_two_files(tmp_path: Path) -> None:
    directory = _copy_shipped(tmp_path)
    text = (SHIPPED / "nanning.toml").read_text()
    text = _replace(text, 'code = "nanning"', 'code = "hongshan"')
    (directory / "hongshan.toml").write_text(_replace(text, '["4501"]', '["150402"]'))
    with pytest.raises(ConfigError, match=r"hongshan\.toml: field divisions .*chifeng\.toml"):
        load_jurisdictions(directory)


def test_overlapping_prefixes_within_one_file(tmp_path: Path) -> None:
    text = _replace((SHIPPED / "chifeng.toml").read_text(), '["1504"]', '["1504", "150402"]')
    (tmp_path / "chifeng.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"chifeng\.toml: field divisions: .*overlap"):
        load_jurisdictions(tmp_path)


def test_an_empty_or_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no"):
        load_jurisdictions(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_jurisdictions(tmp_path / "nowhere")


def test_a_single_file_loads_on_its_own() -> None:
    assert load_jurisdiction(SHIPPED / "nanning.toml").code == "nanning"
