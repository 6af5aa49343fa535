"""Points indicators (积分制) [NB 三(三)][NN 三(五)]: years of residence, of employment and of
social insurance, each computed from what the registry already holds (once-only: the holder
brings nothing again) with the evidence behind it and the date it was computed for.

Pure rules: the use case (hub.permits.applications) reads the registry and the proofs on
file. Point values are the city's to publish: with no table in the jurisdiction's file the
answer lists the indicators and says so; with one, a score, and a ranking for each service
the city rations by score (ties by longer residence, then earlier residence start).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from hub.permits.eligibility import ProofOnFile, months_between
from hub.permits.jurisdictions import Indicator, Points, PointsTable

EMPLOYMENT_KINDS = frozenset({"employment", "business-licence"})
INSURANCE_KIND = "social-insurance"


@dataclass(frozen=True)
class Evidence:
    """What an indicator rests on: the registration, or a proof on file by its hub id (never
    the department's own number, which for social insurance is the citizen ID)."""

    source: str  # registration, proof
    id: str
    kind: str
    department: str
    valid_from: date
    valid_to: date | None
    months: int  # what this piece counts for


@dataclass(frozen=True)
class Measure:
    indicator: Indicator
    months: int
    evidence: tuple[Evidence, ...]

    @property
    def whole_years(self) -> int:
        return self.months // 12


@dataclass(frozen=True)
class Score:
    total: int
    by_indicator: dict[str, int]


@dataclass(frozen=True)
class FiledProof:
    """A proof on file with its hub id, as the indicators cite it."""

    id: str
    proof: ProofOnFile


def residence(registration_id: str, start: date | None, on: date, department: str) -> Measure:
    """Continuous residence up to `on`, from the start the registry keeps (None: not resident
    on that date)."""
    if start is None or start > on:
        return Measure("residence-years", 0, ())
    months = months_between(start, on)
    evidence = Evidence(
        "registration", registration_id, "residence", department, start, None, months
    )
    return Measure("residence-years", months, (evidence,))


def employment(proofs: Iterable[FiledProof], on: date) -> Measure:
    """Months covered by employment records (a labour contract, employment registration or a
    business licence), overlapping records counted once."""
    chosen = [p for p in proofs if p.proof.kind in EMPLOYMENT_KINDS and p.proof.valid_from <= on]
    spans = sorted((p.proof.valid_from, _end(p.proof, on)) for p in chosen)
    merged: list[tuple[date, date]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    months = sum(months_between(start, end) for start, end in merged)
    evidence = tuple(
        _evidence(p, months_between(p.proof.valid_from, _end(p.proof, on))) for p in chosen
    )
    return Measure("employment-years", months, evidence)


def social_insurance(proofs: Iterable[FiledProof], on: date) -> Measure:
    """Months paid, back payments excluded, by the latest statement of the social-insurance
    agency (each record states the months paid so far, so the largest counts, not the sum)."""
    counted = [
        (p, _insured_months(p.proof, on))
        for p in proofs
        if p.proof.kind == INSURANCE_KIND and p.proof.valid_from <= on
    ]
    months = max((m for _, m in counted), default=0)
    return Measure("social-insurance-years", months, tuple(_evidence(p, m) for p, m in counted))


def _end(proof: ProofOnFile, on: date) -> date:
    return min(proof.valid_to, on) if proof.valid_to else on


def _insured_months(proof: ProofOnFile, on: date) -> int:
    details = proof.details
    stated = details.get("months")
    back_paid = details.get("back_paid_months", 0)
    if isinstance(stated, int) and not isinstance(stated, bool) and stated >= 0:
        paid = stated - (back_paid if isinstance(back_paid, int) and back_paid > 0 else 0)
        return max(paid, 0)
    return months_between(proof.valid_from, _end(proof, on))


def _evidence(filed: FiledProof, months: int) -> Evidence:
    proof = filed.proof
    return Evidence(
        "proof",
        filed.id,
        proof.kind,
        proof.source_department,
        proof.valid_from,
        proof.valid_to,
        months,
    )


def measures(
    scheme: Points, residence_measure: Measure, proofs: Sequence[FiledProof], on: date
) -> list[Measure]:
    """The indicators the jurisdiction's scheme names (all three where it names none)."""
    computed: dict[Indicator, Measure] = {
        "residence-years": residence_measure,
        "employment-years": employment(proofs, on),
        "social-insurance-years": social_insurance(proofs, on),
    }
    named = scheme.indicators or tuple(computed)
    return [computed[indicator] for indicator in named]


def score(table: PointsTable, found: Sequence[Measure]) -> Score:
    """Points per completed year of each weighted indicator, capped where the table says."""
    years = {measure.indicator: measure.whole_years for measure in found}
    by_indicator: dict[str, int] = {}
    for weight in table.weights:
        points = weight.per_year * years.get(weight.indicator, 0)
        if weight.max_points is not None:
            points = min(points, weight.max_points)
        by_indicator[weight.indicator] = points
    return Score(sum(by_indicator.values()), by_indicator)


def ranking_key(total: int, residence_months: int, residence_start: date | None) -> tuple[int, ...]:
    """Higher score first; ties by longer residence, then by the earlier start."""
    start = residence_start.toordinal() if residence_start else date.max.toordinal()
    return (-total, -residence_months, start)
