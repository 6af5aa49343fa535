"""Use cases of the points scheme: a holder's indicators (and score, where the city's table
is configured) and the ranking for a service rationed by score. Every holder shown is an
audited read, as any read of the registry is."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from sqlmodel import Session, col, select

from hub.audit import Actor, AuditLog
from hub.permits import points
from hub.permits.eligibility import ProofOnFile
from hub.permits.jurisdictions import Jurisdiction, PointsTable
from hub.permits.problems import POINTS_UNAVAILABLE
from hub.permits.service import audit_disclosure, residence_of
from hub.permits.store import Permit, Proof
from hub.problems import DomainProblem, Problem, Text

REGISTRY_DEPARTMENT: Final = "public-security"
_CHUNK: Final = 500


@dataclass(frozen=True)
class HolderPoints:
    on: date
    measures: list[points.Measure]
    table: PointsTable | None
    score: points.Score | None


@dataclass(frozen=True)
class Ranked:
    permit: Permit
    score: points.Score
    residence_months: int


class PointsUnavailable(DomainProblem):
    """No points scheme, no published table, or no such rationed service in the place."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.text = Text(zh, en)

    def problem(self) -> Problem:
        return Problem(POINTS_UNAVAILABLE, self.text)


def _filed(rows: Iterable[Proof]) -> list[points.FiledProof]:
    return [
        points.FiledProof(
            row.id,
            ProofOnFile(row.kind, row.source_department, row.valid_from, row.valid_to, row.details),
        )
        for row in rows
    ]


def _proofs(session: Session, holders: Sequence[str]) -> dict[str, list[points.FiledProof]]:
    found: dict[str, list[Proof]] = {holder: [] for holder in holders}
    for index in range(0, len(holders), _CHUNK):
        query = select(Proof).where(
            col(Proof.citizen_id_hash).in_(holders[index : index + _CHUNK]),
            col(Proof.revoked_at).is_(None),
        )
        for row in session.exec(query):
            found[row.citizen_id_hash].append(row)
    return {holder: _filed(rows) for holder, rows in found.items()}


def holder_points(
    session: Session,
    audit: AuditLog,
    permit: Permit,
    place: Jurisdiction,
    on: date,
    *,
    actor: Actor,
    now: datetime,
) -> HolderPoints:
    """The holder's indicators on `on`, with their evidence; a score where the place's table
    is configured. PointsUnavailable where the place has no points scheme."""
    scheme = place.points
    if scheme is None:
        raise PointsUnavailable(
            f"{place.name.zh}未实行积分制", f"{place.name.en} has no points scheme"
        )
    period = residence_of(session, permit, on)
    residence = points.residence(
        permit.registration_id, period.start if period else None, on, REGISTRY_DEPARTMENT
    )
    proofs = _proofs(session, [permit.citizen_id_hash])[permit.citizen_id_hash]
    found = points.measures(scheme, residence, proofs, on)
    audit_disclosure(
        session, audit, "permit.points", [permit.citizen_id_hash], actor=actor, now=now
    )
    table = scheme.table
    return HolderPoints(on, found, table, points.score(table, found) if table else None)


def ranking(
    session: Session,
    audit: AuditLog,
    place: Jurisdiction,
    service_code: str,
    today: date,
    limit: int,
    *,
    actor: Actor,
    now: datetime,
) -> list[Ranked]:
    """The valid permits of the place ranked for a service rationed by score: the first
    `limit`, each holder's read audited."""
    table = place.points.table if place.points else None
    if table is None:
        raise PointsUnavailable(
            f"{place.name.zh}尚未公布积分分值表", f"{place.name.en} has published no points table"
        )
    if service_code not in {service.code for service in table.services}:
        known = ", ".join(service.code for service in table.services) or "none"
        raise PointsUnavailable(
            f"{place.name.zh}不按积分分配此项服务（按积分分配：{known}）",
            f"{place.name.en} does not ration this service by points (it rations: {known})",
        )
    scheme = place.points
    assert scheme is not None
    permits = list(
        session.exec(
            select(Permit).where(
                col(Permit.jurisdiction) == place.code, col(Permit.state) == "valid"
            )
        )
    )
    proofs = _proofs(session, [permit.citizen_id_hash for permit in permits])
    ranked = []
    for permit in permits:
        start = permit.residence_start if permit.residence_start <= today else None
        residence = points.residence(permit.registration_id, start, today, REGISTRY_DEPARTMENT)
        found = points.measures(scheme, residence, proofs[permit.citizen_id_hash], today)
        ranked.append(Ranked(permit, points.score(table, found), residence.months))
    ranked.sort(
        key=lambda r: points.ranking_key(
            r.score.total, r.residence_months, r.permit.residence_start
        )
    )
    chosen = ranked[:limit]
    holders = [r.permit.citizen_id_hash for r in chosen]
    audit_disclosure(session, audit, "permit.points-ranking", holders, actor=actor, now=now)
    return chosen
