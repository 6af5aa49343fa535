"""Signed checkpoints of the audit log, kept by the departments, on both databases: signed by
the hub's key over every chain's head, received by every push department in order (a
department that was down gets what it missed), and compared with the log by `hub audit verify
--witness`, which names a tail cut off with its head rewound, and a history rewritten after a
checkpoint: both invisible to the plain verification."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import ECKey, KeySet
from sqlmodel import Session

from hub import checkpoints
from hub.audit import FIRST_CHAIN, AuditEvent
from hub.audit import heads as audit_heads
from hub.auth.keys import active_key
from hub.composition import Hub
from hub.connectors.checkpoints import CheckpointSent, publish
from hub.connectors.config import DeliveryMode, DepartmentLink
from hub.connectors.receiver import create_receiver
from hub.connectors.signing import new_secret
from hub.db import unit_of_work
from tests.commands import hub_env, run_hub
from tests.connectors.helpers import Receiver
from tests.servers import free_port


def subject_in(hub: Hub, chain: int, n: int) -> str:
    """The `n`th holder hash whose entries go to `chain` of the hub's log."""
    matching = (
        subject
        for candidate in range(100_000)
        if zlib.crc32(
            (subject := hashlib.sha256(f"holder-{candidate}".encode()).hexdigest()).encode()
        )
        % hub.audit.chains
        + FIRST_CHAIN
        == chain
    )
    for _ in range(n):
        next(matching)
    return next(matching)


def append(hub: Hub, chain: int, count: int, first: int = 0) -> None:
    for n in range(first, first + count):
        with unit_of_work(hub.engine) as session:
            happened = AuditEvent("office", "permit.read", "disclosed", "public-security")
            subject = subject_in(hub, chain, n)
            hub.audit.record(
                session, AuditEvent(**{**vars(happened), "subject": subject}), hub.clock.now()
            )


def sign(hub: Hub) -> checkpoints.AuditCheckpoint | None:
    with unit_of_work(hub.engine) as session:
        key = active_key(session, hub.key_password)
        assert key is not None
        return checkpoints.sign(session, key, hub.settings.issuer, hub.clock.now())


def link_to(url: str, env: str) -> DepartmentLink:
    return DepartmentLink(
        endpoint=f"{url}/webhooks/holder-records",
        secret_env=env,
        agreement="education-holders",
        delivery=DeliveryMode.BOTH,
        events=("*",),
    )


@pytest.fixture
def witness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DepartmentLink, Receiver]]:
    secret = new_secret()
    monkeypatch.setenv("HUB_TEST_SECRET_EDUCATION", secret)
    receiver = Receiver(create_receiver("education", secret, tmp_path / "education.db"))
    yield link_to(receiver.url, "HUB_TEST_SECRET_EDUCATION"), receiver
    receiver.stop()


def test_a_checkpoint_is_signed_by_the_hub_s_key_over_every_chain(
    app_client: TestClient, hub: Hub
) -> None:
    append(hub, 2, 3)
    append(hub, 5, 1)
    first = sign(hub)
    assert first is not None

    published = KeySet.import_key_set(app_client.get("/oauth/jwks.json").json())
    header = jws.extract_compact(first.token.encode()).headers()
    assert header["typ"] == checkpoints.MEDIA_TYPE
    verified = jws.deserialize_compact(first.token, published.get_by_kid(header["kid"]))
    claims = json.loads(verified.payload)
    with Session(hub.engine) as session:
        heads = audit_heads(session)
    assert [tuple(chain) for chain in claims["chains"]] == heads
    assert len(heads) == hub.audit.chains
    lengths = {chain: length for chain, length, _ in heads}
    assert lengths[2] >= 3 and lengths[5] >= 1
    assert claims["size"] == sum(lengths.values()) and claims["root"] == checkpoints.root_hash(
        heads
    )
    assert claims["iss"] == hub.settings.issuer and claims["id"] == first.id

    assert sign(hub) is None  # nothing appended since: nothing new to sign
    append(hub, 2, 1, first=3)
    second = sign(hub)
    assert second is not None and second.id == first.id + 1


def test_every_department_gets_every_checkpoint_in_order_even_after_an_outage(
    app_client: TestClient,
    hub: Hub,
    witness: tuple[DepartmentLink, Receiver],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    education, kept_by_education = witness
    secret = new_secret()
    monkeypatch.setenv("HUB_TEST_SECRET_HOUSING", secret)
    down = free_port()
    links = {
        "education": education,
        "housing": link_to(f"http://127.0.0.1:{down}", "HUB_TEST_SECRET_HOUSING"),
    }
    append(hub, 1, 1)
    signed = [sign(hub)]
    append(hub, 3, 1)
    signed.append(sign(hub))
    ids = [f"ckp_{checkpoint.id}" for checkpoint in signed if checkpoint is not None]

    with httpx.Client(timeout=5) as client:
        assert publish(hub.engine, hub.clock, links, client) == {"education": 2, "housing": 0}
        with Session(hub.engine) as session:
            mark = session.get(CheckpointSent, "housing")
            assert (
                mark is not None and mark.last_id == 0 and "ConnectError" in (mark.last_error or "")
            )
        housing = Receiver(create_receiver("housing", secret, tmp_path / "housing.db"), port=down)
        try:
            assert publish(hub.engine, hub.clock, links, client) == {"housing": 2}
            assert [c["webhook_id"] for c in httpx.get(f"{housing.url}/checkpoints").json()] == ids
        finally:
            housing.stop()
    kept = httpx.get(f"{kept_by_education.url}/checkpoints").json()
    assert [c["webhook_id"] for c in kept] == ids
    assert [c["checkpoint"] for c in kept] == [c.token for c in signed if c is not None]
    assert kept_by_education.received() == []  # not mistaken for holder records


def test_the_witness_names_a_cut_tail_and_a_rewritten_history(
    app_client: TestClient,
    hub: Hub,
    database_url: str,
    witness: tuple[DepartmentLink, Receiver],
    tmp_path: Path,
) -> None:
    link, receiver = witness
    append(hub, 4, 5)
    append(hub, 7, 3)
    assert sign(hub) is not None
    with httpx.Client(timeout=5) as client:
        assert publish(hub.engine, hub.clock, {"education": link}, client) == {"education": 1}
    env = hub_env(database_url)
    witnessed = f"{receiver.url}/checkpoints"
    intact = run_hub("audit", "verify", "--witness", witnessed, env=env)
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.endswith(f"in {hub.audit.chains} chains, against 1 checkpoints\n")

    with hub.engine.begin() as connection:  # chain 4: the last two rows gone, the head rewound
        rows = connection.execute(
            sa.text("SELECT position, row_hash FROM audit_log WHERE chain = 4 ORDER BY position")
        ).all()
        length = len(rows)
        connection.execute(
            sa.text("DELETE FROM audit_log WHERE chain = 4 AND position > :p"), {"p": length - 2}
        )
        connection.execute(
            sa.text("UPDATE audit_head SET seq = :p, row_hash = :h WHERE id = 4"),
            {"p": length - 2, "h": rows[length - 3].row_hash},
        )
    with hub.engine.begin() as connection:  # chain 7: its last row replaced by another history
        last = connection.execute(
            sa.text("SELECT max(position) FROM audit_log WHERE chain = 7")
        ).scalar_one()
        previous = connection.execute(
            sa.text("SELECT row_hash FROM audit_log WHERE chain = 7 AND position = :p"),
            {"p": last - 1},
        ).scalar_one()
        connection.execute(
            sa.text("DELETE FROM audit_log WHERE chain = 7 AND position = :p"), {"p": last}
        )
        connection.execute(
            sa.text("UPDATE audit_head SET seq = :p, row_hash = :h WHERE id = 7"),
            {"p": last - 1, "h": previous},
        )
    append(hub, 7, 1, first=50)  # written with the key, as one who had it would

    plain = run_hub("audit", "verify", env=env)
    assert plain.returncode == 0, "neither can be seen from inside the database"

    kept = httpx.get(witnessed).json()
    forged = jws.serialize_compact(
        {"alg": "ES256", "kid": "not-the-hub"}, b'{"chains": []}', ECKey.generate_key("P-256")
    )
    saved = tmp_path / "education-checkpoints.json"
    saved.write_text(json.dumps([*kept, {"checkpoint": forged}]))
    for source in (witnessed, str(saved)):
        broken = run_hub("audit", "verify", "--witness", source, env=env)
        assert broken.returncode == 1
        lines = [
            line for line in broken.stderr.splitlines() if not line.startswith("audit verify:")
        ]
        when = json.loads(jws.extract_compact(kept[0]["checkpoint"].encode()).payload)["at"]
        set_aside = [
            "hub: a checkpoint set aside, not the hub's:"
            " signed by a key the hub never had (not-the-hub)"
        ]
        assert lines == [
            *(set_aside if source == str(saved) else []),
            f"hub: audit log broken in 2 places ({plain.stdout.split()[3]} rows read"
            f" in {hub.audit.chains} chains, against 1 checkpoints):",
            f"  chain 4, rows {length - 1}..{length}: truncated"
            f" (the chain ends at row {length - 2}; checkpoint 1 of {when} saw {length} rows)",
            f"  chain 7, row {last}: forked (not the row checkpoint 1 of {when} saw)",
        ]


def test_an_incremental_walk_starts_from_the_last_checkpoint(
    app_client: TestClient, hub: Hub, database_url: str
) -> None:
    env = hub_env(database_url)
    refused = run_hub("audit", "verify", "--since-checkpoint", env=env)
    assert refused.returncode == 2 and "no checkpoint is signed yet" in refused.stderr
    append(hub, 2, 4)
    signed = run_hub("audit", "checkpoint", env=env)
    assert (signed.returncode, signed.stdout) == (0, "checkpoint signed\n"), signed.stderr
    append(hub, 2, 2, first=4)
    append(hub, 9, 1)

    since = run_hub("audit", "verify", "--since-checkpoint", env=env)
    assert since.returncode == 0, since.stderr
    assert (
        since.stdout
        == f"audit log intact: 3 rows in {hub.audit.chains} chains, since checkpoint 1\n"
    )

    with hub.engine.begin() as connection:
        length = connection.execute(sa.text("SELECT seq FROM audit_head WHERE id = 2")).scalar_one()
        connection.execute(
            sa.text("UPDATE audit_log SET outcome = 'x' WHERE chain = 2 AND position = :p"),
            {"p": length},
        )
    after = run_hub("audit", "verify", "--since-checkpoint", env=env)
    assert after.returncode == 1
    assert f"  chain 2, row {length}: altered (content changed)" in after.stderr.splitlines()

    with hub.engine.begin() as connection:  # the checkpoint's own row rewritten: forked there
        connection.execute(
            sa.text("UPDATE audit_log SET row_hash = :h WHERE chain = 2 AND position = :p"),
            {"h": "f" * 64, "p": length - 2},
        )
    forked = run_hub("audit", "verify", "--since-checkpoint", env=env)
    assert forked.returncode == 1
    assert any(
        line.startswith(f"  chain 2, row {length - 2}: forked (not the row checkpoint 1 of")
        for line in forked.stderr.splitlines()
    )
