"""What a change to a subject reaches, told to the person before they make it: moving a
version's state or changing the subject's compatibility mode names the agreements on the
subject and their departments, which version is exchanged before and after, and what would
stop the change (an agreement too narrow for a version about to become ACTIVE) or what the
new mode would have refused among the versions already in use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session

from hub.schemas import domain, service
from hub.schemas.compat import CompatibilityMode, Violation, check
from hub.schemas.store import Agreement, current_agreements


@dataclass(frozen=True)
class Impact:
    agreements: list[Agreement]  # the latest version of each agreement on the subject
    binding: frozenset[str]  # ids of those in force now or later (held to the subject)
    exchanged_now: int | None
    exchanged_after: int | None
    shortfalls: list[domain.Shortfall]  # each refuses the change
    breaks: list[tuple[int, Violation]]  # versions in use the new mode would have refused

    @property
    def departments(self) -> list[str]:
        """The departments whose agreements are held to the subject."""
        return sorted({a.department for a in self.agreements if a.id in self.binding})

    @property
    def stops_exchange(self) -> bool:
        """After the change nothing of the subject can be exchanged, though it was."""
        return self.exchanged_now is not None and self.exchanged_after is None


def _agreements(
    session: Session, subject: str, today: date
) -> tuple[list[Agreement], frozenset[str]]:
    agreements = current_agreements(session, subject=subject)
    binding = frozenset(
        a.id
        for a in agreements
        if domain.binding(domain.AgreementStatus(a.status), a.valid_to, today)
    )
    return agreements, binding


def of_state_change(
    session: Session,
    registry: service.Registry,
    subject: str,
    version: int,
    wanted: domain.VersionState,
    today: date,
) -> Impact:
    """What moving `version` to `wanted` reaches (IllegalStateChange if it may not move so)."""
    row = service.version_of(session, subject, version)
    domain.change_state(domain.VersionState(row.state), wanted)
    agreements, binding = _agreements(session, subject, today)
    states = {
        v.version: domain.VersionState(v.state) for v in service.versions_of(session, subject)
    }
    shortfalls: list[domain.Shortfall] = []
    if wanted is domain.VersionState.ACTIVE:
        held = [a for a in agreements if a.id in binding]
        resolve = registry.resolve_through(session)
        shortfalls = service.shortfalls(resolve, held, subject, [(version, row.definition)])
    return Impact(
        agreements,
        binding,
        _exchanged(states),
        _exchanged({**states, version: wanted}),
        shortfalls,
        [],
    )


def _exchanged(states: Mapping[int, domain.VersionState]) -> int | None:
    """The version exchanged when the versions are in these states: the newest ACTIVE or
    DEPRECATED one, as `service.exchangeable_version` finds it in the database."""
    return max((v for v, state in states.items() if state in domain.EXCHANGEABLE), default=None)


def of_mode_change(session: Session, subject: str, mode: CompatibilityMode, today: date) -> Impact:
    """What setting the subject's mode to `mode` reaches: each later registration is checked
    by it; the versions in use are not changed, but those it would have refused are named."""
    service.subject_row(session, subject)
    agreements, binding = _agreements(session, subject, today)
    versions = service.versions_of(session, subject)
    history = [
        (row.version, row.definition)
        for row in versions
        if row.state != domain.VersionState.RETIRED
    ]
    breaks = [
        (number, violation)
        for at, (number, definition) in enumerate(history)
        for violation in check(mode, history[:at], definition)
    ]
    exchanged = _exchanged({v.version: domain.VersionState(v.state) for v in versions})
    return Impact(agreements, binding, exchanged, exchanged, [], breaks)
