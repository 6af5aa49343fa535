"""The per-process memo of agreements and the holder-record version (hub.publishing.terms):
this process's commits are seen at once, another process's within the memo's freshness."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlmodel import col

from hub.audit import Actor
from hub.auth.domain import Department
from hub.composition import Hub
from hub.db import unit_of_work
from hub.publishing.terms import Refusal, Terms
from hub.schemas import domain as schema_domain
from hub.schemas import service as schema_service
from hub.schemas.store import Agreement
from tests.conftest import seed_shipped_agreements
from tests.connectors.helpers import set_agreement_status

EDUCATION = Department.EDUCATION
TODAY = date(2026, 11, 26)


def education_agreement(hub: Hub, terms: Terms) -> Agreement | Refusal:
    with unit_of_work(hub.engine) as session:
        link = hub.departments.get(EDUCATION)
        return terms.remembered_agreement_in_force(session, link, EDUCATION, TODAY)


def test_an_agreement_changed_by_this_process_is_seen_by_the_next_request(hub: Hub) -> None:
    seed_shipped_agreements(hub)
    terms = Terms(fresh_for=3600.0)  # nothing goes stale by time here
    before = education_agreement(hub, terms)
    assert isinstance(before, Agreement)
    assert education_agreement(hub, terms) is before  # remembered, not read again
    set_agreement_status(hub, before.id, schema_domain.AgreementStatus.SUSPENDED)
    after = education_agreement(hub, terms)
    assert isinstance(after, Refusal)
    assert "suspended" in after.en


def test_another_process_s_change_is_seen_once_the_memo_is_no_longer_fresh(hub: Hub) -> None:
    seed_shipped_agreements(hub)
    remembering, fresh = Terms(fresh_for=3600.0), Terms(fresh_for=0.0)
    kept = education_agreement(hub, remembering)
    assert isinstance(kept, Agreement)
    with hub.engine.begin() as connection:  # as another process would: no session hook here
        connection.execute(
            sa.update(Agreement)
            .where(col(Agreement.id) == kept.id)
            .values(status=schema_domain.AgreementStatus.SUSPENDED.value)
        )
    assert education_agreement(hub, remembering) is kept  # within FRESH_FOR of its reading
    assert isinstance(education_agreement(hub, fresh), Refusal)


def test_the_holder_record_version_is_read_again_after_a_local_schema_change(hub: Hub) -> None:
    terms = Terms(fresh_for=3600.0)
    with unit_of_work(hub.engine) as session:
        first = terms.remembered_version_in_use(session, hub.schemas)
    with unit_of_work(hub.engine) as session:
        assert terms.remembered_version_in_use(session, hub.schemas) is first
        schema_service.set_state(
            session,
            hub.schemas,
            hub.audit,
            first.schema.subject,
            first.schema.version,
            schema_domain.VersionState.DEPRECATED,  # still exchanged, now deprecated
            actor=Actor("governance", "public-security"),
            now=hub.clock.now(),
        )
    with unit_of_work(hub.engine) as session:
        again = terms.remembered_version_in_use(session, hub.schemas)
    assert again is not first
    assert again.schema.state == schema_domain.VersionState.DEPRECATED.value
