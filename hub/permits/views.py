"""The registry's answers, as the OpenAPI document promises them.

Each model is the exact shape of one view the service builds (`service.view`,
`service.registration_view`, ...): no field more (a `ClosedView`), no field less.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field

from hub.openapi import ClosedView
from hub.permits.domain import Action, PermitState
from hub.permits.eligibility import MetBy
from hub.permits.identity import Sex

Reason = Literal["employment", "business", "study", "family", "other"]
"""Why a person came [CF §11], as a registration states it."""
Relation = Literal["guardian", "trustee", "near-relative"]
"""Who may declare for another [CF §10]."""

CitizenIdText = Annotated[
    str,
    Field(
        pattern=r"^[0-9\uff10-\uff19]{17}[0-9Xx\uff10-\uff19\uff38\uff58]$",
        description=(
            "A citizen ID number (GB 11643): 17 digits and a check character, a digit or X;"
            " full-width digits and x as an input method types them are read as ASCII. The"
            " region, birth date and check character are checked too (422 invalid-citizen-id)."
        ),
        examples=["11010519491231002X"],
    ),
]
"""A citizen ID as typed at a window, in the shape the document can state."""


class PermitView(ClosedView):
    """A permit as the registry sees it: no citizen ID, clear or hashed. `version` is its
    ETag; `allowed_actions` what its state allows next."""

    id: str
    jurisdiction: str
    receipt_number: str
    accepted_on: date
    issue_due_on: date
    card_serial: str | None
    cancel_reason: str | None
    version: int = Field(ge=1)
    state: PermitState
    residence_start: date
    valid_from: date | None
    expires_on: date | None = Field(description="the last valid day")
    suspended_on: date | None
    allowed_actions: list[Action]


class ApplicationAccepted(ClosedView):
    """An accepted application [CF §16]: the permit with its receipt number and issuance
    deadline, and whether records on file, documents or an exemption met the conditions."""

    outcome: Literal["accepted"]
    met_by: MetBy
    permit: PermitView


class RegistrationView(ClosedView):
    """A residence registration as a window sees it: the citizen ID masked, never in clear."""

    id: str
    jurisdiction: str
    citizen_id: str = Field(
        pattern=r"^[0-9]{6}\*{12}$", description="masked: the region code, then 12 '*'"
    )
    name: str
    sex: Sex
    ethnicity: str
    birth_date: date
    household_address: str
    household_region: str
    current_address: str
    current_region: str
    reason: Reason
    workplace: str | None
    contact: str
    arrived_on: date
    registered_on: date
    declaration_due_on: date | None
    declared_late: bool
    declaration_provisional: bool = Field(
        description="the deadline ran into a year whose holidays are not yet known"
    )
    residence_start: date
    imported_from_temporary_permit: bool
    declarant_relation: Relation | None
    created_at: AwareDatetime


class SearchHit(ClosedView):
    """A person found: their registration and its permits, newest first."""

    registration: RegistrationView
    permits: list[PermitView]


class SearchPage(ClosedView):
    """One page of a search; `after` in the next search's body reads the page after it."""

    hits: list[SearchHit]
    next: str | None = Field(description="the cursor of the next page; null on the last")


class PermitEventView(ClosedView):
    """One event of a permit's history; `seq` is also its changes-feed cursor."""

    seq: int
    type: str
    state_after: PermitState
    at: AwareDatetime
    actor: str = Field(description="the client that acted")
    payload: dict[str, Any]


class ResidenceView(ClosedView):
    """Continuous residence on a date; `start`, `days` and `whole_years` only when resident."""

    on: date
    resident: bool
    start: date | None = None
    days: int | None = Field(default=None, ge=0)
    whole_years: int | None = Field(default=None, ge=0)


class ProofView(ClosedView):
    """A department's proof on file, without the citizen ID it concerns."""

    id: str
    kind: str
    source_department: str
    source_proof_id: str
    valid_from: date
    valid_to: date | None
    details: dict[str, Any]


class DisclosureView(ClosedView):
    """One disclosure of the holder's record: when, to whom, how, why, which fields."""

    at: AwareDatetime
    channel: Literal["push", "feed", "look-up", "tap", "registry", "audit", "access-report"]
    department: str | None
    client: str = Field(description="the client or member of staff, or hub-relay for a push")
    purpose: str | None
    agreement: str | None
    agreement_version: int | None
    fields: list[str] | None = Field(
        description="the fields the agreement let out (never values); null: the whole record"
    )


class AccessReportView(ClosedView):
    """Every disclosure of a holder's record over a period, oldest first."""

    citizen_id: str = Field(pattern=r"^[0-9]{6}\*{12}$", description="masked")
    since: date
    until: date
    issued_at: AwareDatetime
    disclosures: list[DisclosureView]


class EvidenceView(ClosedView):
    """What an indicator rests on: the registration or a proof on file (the hub's id)."""

    source: Literal["registration", "proof"]
    id: str
    kind: str
    department: str
    valid_from: date
    valid_to: date | None
    months: int


class IndicatorView(ClosedView):
    indicator: Literal["residence-years", "employment-years", "social-insurance-years"]
    months: int
    whole_years: int
    evidence: list[EvidenceView]


class WeightView(ClosedView):
    indicator: str
    per_year: int
    max_points: int | None


class PointsTableView(ClosedView):
    cite: str = Field(description="where the city published the point values")
    weights: list[WeightView]
    services: list[str] = Field(description="services rationed by score")


class ScoreView(ClosedView):
    total: int
    by_indicator: dict[str, int]


class NoteView(ClosedView):
    zh: str
    en: str


class PointsView(ClosedView):
    """A holder's points indicators on a date, computed from registry facts and proofs on
    file; a score only where the city's published table is configured."""

    permit_id: str
    jurisdiction: str
    on: date
    scheme_cite: str
    indicators: list[IndicatorView]
    table_published: bool
    table: PointsTableView | None
    score: ScoreView | None
    note: NoteView | None = Field(description="why there is no score")


class RankedView(ClosedView):
    rank: int
    permit_id: str
    receipt_number: str
    score: int
    residence_months: int


class StatisticsView(ClosedView):
    """Each figure is a list of rows: their dimensions (jurisdiction, month, department, ...)
    and counts; `issued_late` names the late issuances by receipt number."""

    from_: str = Field(alias="from")
    to: str
    jurisdictions: list[str]
    figures: dict[str, list[dict[str, Any]]]


class WorklistItem(ClosedView):
    """A person reported by a third party [CF §6-9] who has not registered yet."""

    id: str
    kind: Literal["hire", "tenancy"]
    jurisdiction: str
    name: str
    citizen_id: str = Field(pattern=r"^[0-9]{6}\*{12}$", description="masked")
    address: str
    region: str
    reported_by: str = Field(description="the organisation that reported")
    reporter_role: Literal["employer", "property-manager", "agency", "landlord"]
    occurred_on: date
    received_at: AwareDatetime
    reported_late: bool
    declare_by: date | None
    overdue: bool = Field(description="the day to declare by has passed")
