"""The decision rules over plain data: no app, no database."""

from __future__ import annotations

from datetime import date

from hub.auth.domain import Department
from hub.permits.domain import PermitState
from hub.text import Text
from hub.verification.domain import (
    AUDIT_OUTCOME_MAX,
    REASON_TITLES,
    Reason,
    Service,
    Standing,
    assess,
    audit_outcome,
    refused_status,
)

SETTLEMENT = Service(
    code="household-registration",
    name=Text("申请在居住地落户", "Household registration"),
    department=Department.PUBLIC_SECURITY,
    permit_states=frozenset({PermitState.VALID}),
    minimum_residence_months=36,
    jurisdictions=frozenset({"chifeng"}),
    conditions=(),
    cite="[CF §22]",
)
TODAY = date(2026, 10, 13)


def standing(**changes: object) -> Standing:
    facts: dict[str, object] = {
        "card_status": "live",
        "permit_state": PermitState.VALID,
        "expires_on": date(2027, 10, 12),
        "residence_start": date(2023, 10, 13),
        "jurisdiction": "chifeng",
    }
    facts.update(changes)
    return Standing(**facts)  # type: ignore[arg-type]


def test_every_reason_has_a_title_in_both_languages() -> None:
    assert set(REASON_TITLES) == set(Reason)
    assert all(title.zh and title.en for title in REASON_TITLES.values())


def test_residence_counts_in_calendar_months_to_the_day() -> None:
    police = Department.PUBLIC_SECURITY
    assert assess(SETTLEMENT, police, standing(), TODAY) == []  # 36 months today
    started_a_day_later = standing(residence_start=date(2023, 10, 14))
    assert assess(SETTLEMENT, police, started_a_day_later, TODAY) == [Reason.RESIDENCE_TOO_SHORT]


def test_a_refused_card_or_permit_is_not_judged_for_the_service() -> None:
    housing = Department.HOUSING
    lost = standing(card_status="lost", jurisdiction="ningbo")
    assert assess(SETTLEMENT, housing, lost, TODAY) == [Reason.CARD_REPORTED_LOST]
    assess_all = assess(SETTLEMENT, housing, standing(jurisdiction="ningbo"), TODAY)
    assert assess_all == [Reason.SERVICE_NOT_ENTITLED, Reason.WRONG_JURISDICTION]
    accepted = standing(permit_state=PermitState.ACCEPTED)
    assert assess(SETTLEMENT, housing, accepted, TODAY) == [Reason.PERMIT_NOT_VALID]


def test_the_status_list_reasons() -> None:
    assert refused_status("live", PermitState.VALID) is None
    assert refused_status("live", PermitState.SUSPENDED) is Reason.PERMIT_SUSPENDED
    assert refused_status("returned", PermitState.VALID) is Reason.CARD_REPLACED
    assert refused_status("superseded", PermitState.VALID) is Reason.CARD_REPLACED
    assert refused_status("cancelled", PermitState.CANCELLED) is Reason.CARD_CANCELLED


def test_an_audit_outcome_fits_its_column_and_never_cuts_a_code() -> None:
    assert audit_outcome("grant", []) == "grant"
    assert audit_outcome("deny", ["card-reported-lost"]) == "deny:card-reported-lost"
    many = [reason.value for reason in Reason]
    outcome = audit_outcome("deny", many)
    assert len(outcome) <= AUDIT_OUTCOME_MAX
    listed, _, left = outcome.removeprefix("deny:").rpartition("+")
    assert listed.split(",") == many[: len(listed.split(","))]
    assert int(left) == len(many) - len(listed.split(","))
    exact = ["service-not-entitled", "residence-too-short", "wrong-jurisdiction"]
    assert audit_outcome("deny", exact) == "deny:" + ",".join(exact)
    assert len(audit_outcome("deny", exact)) == AUDIT_OUTCOME_MAX
