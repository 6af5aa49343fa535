"""config/catalogue.toml: the shipped list loads, and a bad file stops the hub with one
sentence naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.auth.domain import Department
from hub.permits.domain import PermitState
from hub.permits.jurisdictions import load_jurisdictions
from hub.settings import ConfigError, load_settings
from hub.verification.catalogue import load_catalogue

ROOT = Path(__file__).resolve().parents[2]
JURISDICTIONS = load_jurisdictions(ROOT / "config" / "jurisdictions")

GOOD = """
[services.housing-fund]
name = { zh = "住房公积金", en = "Housing fund" }
department = "housing"
cite = "[CF §24]"
"""


def test_the_shipped_catalogue_loads_and_covers_the_seeds_lists() -> None:
    catalogue = load_catalogue(load_settings().catalogue_file, JURISDICTIONS)
    services = catalogue.services
    # [CF §24] basic public services and [CF §25] conveniences, by their departments.
    for code, department in {
        "compulsory-education": Department.EDUCATION,
        "social-insurance": Department.HR_SOCIAL_SECURITY,
        "housing-fund": Department.HOUSING,
        "basic-public-health": Department.HEALTH,
        "exit-entry-documents": Department.PUBLIC_SECURITY,
        "professional-qualification-exams": Department.HR_SOCIAL_SECURITY,
        "birth-service-registration": Department.HEALTH,
        "marriage-registration": Department.CIVIL_AFFAIRS,
    }.items():
        assert services[code].department is department, code
    assert {service.department for service in services.values()} == set(Department)
    assert all(service.permit_states == {PermitState.VALID} for service in services.values())
    settlement = services["household-registration"]
    assert settlement.minimum_residence_months == 36 and settlement.jurisdictions == frozenset(
        {"chifeng"}
    )
    assert services["college-entrance-exam"].jurisdictions == frozenset({"zhangzhou"})
    assert services["compulsory-education"].name.in_("zh-CN") == "随迁子女接受义务教育"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[services", "not valid TOML"),
        ("", "field services is required"),
        ("[services]", "field services: Dictionary should have at least 1 item"),
        (GOOD.replace('"housing"', '"transport"'), "field services.housing-fund.department"),
        (GOOD.replace("housing-fund]", "Housing_Fund]"), "lower-case words joined by hyphens"),
        (GOOD.replace("[CF §24]", "CF 24"), "a cite is a bracketed source tag and article"),
        (GOOD.replace("[CF §24]", "[XX §24]"), "uses source tag XX, which no jurisdiction"),
        (GOOD + 'jurisdictions = ["atlantis"]', "names 'atlantis', which has no jurisdiction"),
        (GOOD + "minimum_residence_months = 0", "minimum_residence_months"),
        (GOOD + 'permit_states = ["cancelled"]', "field services.housing-fund.permit_states.0"),
        (GOOD + 'colour = "blue"', "unknown field services.housing-fund.colour"),
        (GOOD.replace("cite =", "# cite ="), "field services.housing-fund.cite is required"),
    ],
    ids=[
        "toml",
        "empty",
        "no-services",
        "department",
        "code",
        "cite-form",
        "cite-tag",
        "jurisdiction",
        "months",
        "state",
        "unknown-field",
        "missing-cite",
    ],
)
def test_a_bad_catalogue_is_one_sentence(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_catalogue(path, JURISDICTIONS)
    sentence = str(refused.value)
    assert sentence.startswith(f"{path}: ") and message in sentence, sentence
    assert "\n" not in sentence


def test_a_missing_catalogue_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the service catalogue"):
        load_catalogue(tmp_path / "absent.toml", JURISDICTIONS)
    path = tmp_path / "good.toml"
    path.write_text(GOOD, encoding="utf-8")
    assert list(load_catalogue(path, JURISDICTIONS).services) == ["housing-fund"]
