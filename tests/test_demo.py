"""The demo data set: loaded through the services, consistent, deterministic, never doubled."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from hub.clock import FixedClock
from hub.composition import Hub, build_hub
from hub.db import make_engine, unit_of_work
from hub.demo import DemoSummary, generate_people, load_demo
from hub.permits.identity import CitizenId, parse_citizen_id
from hub.permits.store import Outbox, Permit, PermitEvent, Registration
from hub.settings import Settings
from tests.commands import assert_one_sentence, hub_env, run_hub

SMALL = 120


@pytest.fixture
def loaded(hub: Hub) -> tuple[Hub, DemoSummary, list[int]]:
    calls: list[int] = []
    summary = load_demo(hub, SMALL, seed=7, progress=calls.append)
    return hub, summary, calls


def test_every_jurisdiction_gets_holders_and_every_state_occurs(
    loaded: tuple[Hub, DemoSummary, list[int]],
) -> None:
    hub, summary, calls = loaded
    assert summary.holders == summary.registrations == SMALL
    assert set(summary.holders_by_jurisdiction) == set(hub.jurisdictions)
    assert all(n > 0 for n in summary.holders_by_jurisdiction.values())
    assert {"valid", "suspended", "cancelled", "accepted"} <= set(summary.permits_by_state)
    assert summary.proofs > 0 and summary.refused_applications > 0
    assert summary.cards > 0 and summary.late_registrations > 0
    assert summary.taps > 0 and summary.reports_on_file > 0 and summary.worklist > 0
    assert calls == [SMALL]  # one batch of 200 holds them all
    assert summary.seconds > 0


def test_every_permit_has_events_and_every_event_one_outbox_row(
    loaded: tuple[Hub, DemoSummary, list[int]],
) -> None:
    hub, summary, _ = loaded
    with Session(hub.engine) as session:
        permits = session.exec(select(Permit)).all()
        events = session.exec(select(PermitEvent)).all()
        outbox = session.exec(select(Outbox)).all()
    assert len(permits) == summary.permits > 0
    with_events = {event.permit_id for event in events}
    assert {permit.id for permit in permits} <= with_events
    assert sorted(row.event_seq for row in outbox) == sorted(e.seq for e in events if e.seq)
    assert len(outbox) == len(events) == summary.events == summary.outbox
    today = hub.clock.today()
    assert all(permit.accepted_on <= today for permit in permits)
    assert all(date.fromisoformat(event.payload["on"]) <= today for event in events)
    for permit in permits:  # the last event leaves the permit in its current state
        last = max((e for e in events if e.permit_id == permit.id), key=lambda e: e.seq or 0)
        assert last.state_after == permit.state


def test_audit_chain_verifies_and_no_clear_citizen_id_is_stored(
    loaded: tuple[Hub, DemoSummary, list[int]],
) -> None:
    hub, _, _ = loaded
    people = generate_people(hub.jurisdictions, SMALL, 7, hub.clock.today())
    numbers = {person.citizen_id for person in people}
    with unit_of_work(hub.engine) as session:
        assert hub.audit.verify(session).intact
        texts: list[str] = []
        for name in ("registration", "proof", "permit_event", "audit_log", "permit", "card"):
            table = SQLModel.metadata.tables[name]
            for row in session.execute(sa.select(table)).all():
                texts.extend(str(value) for value in row)
        sealed = session.exec(select(Registration)).all()
        opened = {hub.vault.open(row.citizen_id_sealed).value for row in sealed}
    assert opened == numbers  # sealed, and the seal opens to the generated people
    dump = "\n".join(texts)
    assert not any(number in dump for number in numbers)


def test_loading_twice_is_refused(loaded: tuple[Hub, DemoSummary, list[int]]) -> None:
    hub, _, _ = loaded
    with pytest.raises(ValueError, match="already has 120 registrations"):
        load_demo(hub, 10, seed=7)
    with unit_of_work(hub.engine) as session:
        count = session.execute(sa.select(sa.func.count()).select_from(Registration)).scalar()
    assert count == SMALL


def test_generated_people_are_valid_and_deterministic(hub: Hub) -> None:
    today = hub.clock.today()
    people = generate_people(hub.jurisdictions, 600, 2026, today)
    assert people == generate_people(hub.jurisdictions, 600, 2026, today)
    assert people != generate_people(hub.jurisdictions, 600, 2027, today)
    assert len({person.citizen_id for person in people}) == 600
    for person in people:
        number = parse_citizen_id(person.citizen_id, today=today)
        place = hub.jurisdictions[person.jurisdiction]
        assert number.region_code == person.household_region
        assert not place.covers(person.household_region)
        assert place.covers(person.current_region)
        assert date(1950, 1, 1) <= number.birth_date <= date(2008, 12, 31)
        assert date(2023, 1, 1) <= person.arrived_on <= today
        assert len(person.contact) == 11 and person.contact[:2] in ("13", "15", "18")
    ethnicities = {p.ethnicity for p in people if p.jurisdiction == "nanning"}
    assert {"汉族", "壮族"} <= ethnicities
    mongolian = {p.ethnicity for p in people if p.jurisdiction in ("chifeng", "inner-mongolia")}
    assert "蒙古族" in mongolian
    chifeng = {p.current_region for p in people if p.jurisdiction == "chifeng"}
    assert {"150402", "150403", "150404"} <= chifeng


def _fresh_hub(template: Path, directory: Path, clock: FixedClock) -> Hub:
    directory.mkdir()
    shutil.copy(template, directory / "hub.db")
    url = f"sqlite:///{directory / 'hub.db'}"
    settings = Settings(
        database_url=url,
        secret_key="demo-test-master-secret-0123456789abcdef-0123",
        secret_key_file=directory / "unused.key",
        default_language="en",
    )
    return build_hub(settings, engine=make_engine(url), clock=clock)


def test_same_seed_gives_same_data_set(sqlite_template: Path, tmp_path: Path) -> None:
    """Two fresh SQLite databases (the fixtures give one per test), the same seed and day."""
    clock = FixedClock(datetime(2026, 3, 2, 4, 0, tzinfo=UTC))
    first = _fresh_hub(sqlite_template, tmp_path / "a", clock)
    second = _fresh_hub(sqlite_template, tmp_path / "b", clock)
    try:
        one, two = load_demo(first, 150, seed=11), load_demo(second, 150, seed=11)
        assert one == two  # every count; only the elapsed seconds differ
        rows = []
        for hub in (first, second):
            with Session(hub.engine) as session:
                query = select(Registration.name, Registration.current_region).order_by(
                    col(Registration.name), col(Registration.current_region)
                )
                rows.append(session.exec(query).all())
        assert rows[0] == rows[1]
    finally:
        first.engine.dispose()
        second.engine.dispose()


def test_person_ids_carry_sex_and_birth(hub: Hub) -> None:
    person = generate_people(hub.jurisdictions, 1, 1, hub.clock.today())[0]
    number = CitizenId(person.citizen_id)
    assert number.birth_date == person.birth_date


def _hub_demo(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_hub("demo", "--holders", "12", "--seed", "3", *args, env=hub_env(database_url))


def _registrations(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return int(
                session.execute(sa.select(sa.func.count()).select_from(Registration)).scalar_one()
            )
    finally:
        engine.dispose()


def test_if_empty_loads_on_a_first_start_and_nothing_later(database_url: str) -> None:
    """What `make run` does at every start: the small set once, into the empty database."""
    first = _hub_demo(database_url, "--if-empty")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("holders: 12 ")
    assert _registrations(database_url) == 12

    again = _hub_demo(database_url, "--if-empty")
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert again.stderr == "hub: the database has 12 registrations: no demo set loaded\n"
    assert _registrations(database_url) == 12


def test_a_demo_into_a_database_with_registrations_names_make_reset(database_url: str) -> None:
    assert _hub_demo(database_url).returncode == 0

    refused = _hub_demo(database_url)
    assert_one_sentence(refused, "already has 12 registrations", "`make reset`", "HUB_DATABASE_URL")
    assert _registrations(database_url) == 12
