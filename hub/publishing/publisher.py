"""`Publisher`: builds the holder records that leave the hub, for the relay, the changes feed,
a look-up and a tap alike.

Whatever the way out, a department receives its agreement's view of the whole record (its
agreed fields and the fixed envelope, nothing a schema requires besides), valid against the
holder-record version in use, or nothing: a record that cannot be both is a RecordUnavailable,
a fault of the hub that is reported, never a record sent wrong or incomplete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from hub.auth.domain import Department
from hub.connectors.config import DepartmentLink
from hub.permits.identity import CitizenIdUnreadable, CitizenIdVault
from hub.permits.outbox import permit_snapshot
from hub.permits.store import Outbox, Permit, PermitEvent, Registration
from hub.publishing.records import RecordUnavailable, holder_record
from hub.publishing.terms import Refusal, Terms, VersionInUse
from hub.schemas.agreements import Projections
from hub.schemas.service import Registry
from hub.schemas.store import Agreement
from hub.text import Text


@dataclass(frozen=True)
class OnDemand:
    """A holder record asked for now (a look-up, a tap), not published for a permit event:
    its `event` names the request (`event_id`, `kind`), its facts are the permit's as they are."""

    kind: str
    event_id: str
    at: datetime
    today: date


@dataclass(frozen=True)
class Publisher:
    """What building an outgoing record needs, and nothing else of the hub: the schema
    registry, the compiled projections, the vault that opens sealed IDs, each department's
    link (which names its agreement), and this process's memo of the terms."""

    schemas: Registry
    projections: Projections
    vault: CitizenIdVault
    departments: Mapping[Department, DepartmentLink]
    terms: Terms = field(default_factory=Terms)

    def agreement_in_force(
        self, session: Session, department: Department, today: date
    ) -> Agreement | Refusal:
        """The department's agreement in force today (remembered), or why it has none."""
        link = self.departments.get(department)
        return self.terms.remembered_agreement_in_force(session, link, department, today)

    def for_department(
        self,
        version: VersionInUse,
        agreement: Agreement,
        record: dict[str, Any],
        today: date,
        event: str,
    ) -> dict[str, Any]:
        """The agreement's view of `record`, valid against `version`; RecordUnavailable if the
        version requires a field the agreement does not allow, or the view is invalid anyway."""
        projected = self.projections.project(
            agreement, version.schema, record, today, self.schemas.resolve
        )
        if projected.shortfall is not None:
            en, zh = projected.shortfall.describe()
            raise RecordUnavailable(Text(f"事件 {event}：{zh}", f"event {event}: {en}"), event)
        view = projected.record
        if not version.validator.is_valid(view):
            issues = version.validator.errors(view)
            where = ", ".join(issue.pointer or "/" for issue in issues[:5])
            name = f"{version.schema.subject}:{version.schema.version}"
            raise RecordUnavailable(
                Text(
                    f"事件 {event} 的记录不符合 {name}（{where}）",
                    f"the record of event {event} is invalid against {name} at {where}",
                ),
                event,
            )
        return view

    def on_demand(
        self,
        session: Session,
        request: OnDemand,
        agreement: Agreement,
        permit: Permit,
        registration: Registration,
        citizen_id: str,
    ) -> dict[str, Any]:
        """The agreement's view of the holder's record now, valid against the version in
        use (remembered: one record per request)."""
        version = self.terms.remembered_version_in_use(session, self.schemas)
        record = holder_record(
            schema_uri=version.uri,
            schema_version=version.schema.version,
            event_seq=0,
            event_type=request.kind,
            at=request.at,
            snapshot=permit_snapshot(permit),
            registration=registration,
            citizen_id=citizen_id,
        )
        record["event"]["id"] = request.event_id  # not a permit event: an id of its own
        return self.for_department(version, agreement, record, request.today, request.event_id)

    def event_records(
        self, session: Session, version: VersionInUse, seqs: Sequence[int]
    ) -> dict[int, dict[str, Any] | RecordUnavailable]:
        """The whole holder record of each permit event (before any agreement's projection),
        in one query for the events, their outbox snapshots, permits and registrations; the
        feed and the relay both publish these. A record whose sealed ID cannot be opened is
        its RecordUnavailable instead: never a record without its holder."""
        rows = session.execute(
            sa.select(PermitEvent, col(Outbox.snapshot), Permit, Registration)
            .join(Permit, col(Permit.id) == col(PermitEvent.permit_id))
            .join(Registration, col(Registration.id) == col(Permit.registration_id))
            .outerjoin(Outbox, col(Outbox.event_seq) == col(PermitEvent.seq))
            .where(col(PermitEvent.seq).in_(list(seqs)))
        ).all()
        out: dict[int, dict[str, Any] | RecordUnavailable] = {}
        for event, snapshot, permit, registration in rows:
            seq = event.seq or 0
            try:
                citizen_id = self.vault.open(registration.citizen_id_sealed).value
            except CitizenIdUnreadable as unreadable:
                out[seq] = RecordUnavailable(
                    Text(
                        f"事件 {seq} 的身份证号无法解密",
                        f"the citizen ID of event {seq} cannot be read ({unreadable})",
                    ),
                    str(seq),
                )
                continue
            out[seq] = holder_record(
                schema_uri=version.uri,
                schema_version=version.schema.version,
                event_seq=seq,
                event_type=event.type,
                at=event.at,
                snapshot=snapshot or permit_snapshot(permit),
                registration=registration,
                citizen_id=citizen_id,
            )
        return out
