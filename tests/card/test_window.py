"""Taps through the whole chain: a card personalised and read through pcscd's virtual reader
(`hub card emulate` in its own process, pyscard in the test), the window agent, and the hub
served on loopback deciding. Cards that should be refused are made the way an attacker
would: by editing a card's memory, or by copying its data to a card with another key."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlmodel import Session

from hub import jobs
from hub.card import issuing, layout, protocol
from hub.clock import FixedClock
from hub.composition import Hub
from hub.window.agent import WindowAgent
from hub.window.applet import load_card, save_card
from hub.window.hubclient import HubClient
from hub.window.reader import command
from hub.window.writer import refresh_card
from tests.auth.helpers import access_token, bearer
from tests.card.conftest import SERVICE, Cards, Window, card_link
from tests.card.helpers import issued_permit, tiny_png
from tests.card.pcsc import HUB, wait_for
from tests.conftest import RegisterClient
from tests.servers import LoopbackServer


def _tap(window: Window, cards: Cards, card_file: Path) -> tuple[bool, list[str], int]:
    link = card_link(cards(card_file))
    decision = window.agent.tap(link)
    return decision.grant, [code for code, _, _ in decision.reasons], link.apdus


def test_a_genuine_card_is_granted_in_three_apdus(
    window: Window, cards: Cards, personalised: tuple[str, Path]
) -> None:
    link = card_link(cards(personalised[1]))
    decision = window.agent.tap(link)
    assert decision.grant and not decision.offline and decision.reasons == ()
    assert link.apdus == 3  # SELECT, READ BINARY (extended), INTERNAL AUTHENTICATE
    assert decision.holder is not None  # only the holder fields education's agreement allows:
    assert set(decision.holder["holder"]) == {"citizen_id", "name", "current_region"}
    assert "GRANTED" in decision.render("en") and "准予办理" in decision.render("zh-CN")


def test_a_forged_record_is_refused(
    window: Window, cards: Cards, personalised: tuple[str, Path]
) -> None:
    """The holder's own card, its record rewritten (a later expiry) and re-signed by a key
    that is not the hub's."""
    card_file = personalised[1]
    cards(card_file).remove()
    state = load_card(card_file)
    assert state.record is not None
    signed = layout.decode(state.record)
    later = replace(
        signed.record.card, valid_until=signed.record.card.valid_until + timedelta(days=3650)
    )
    forger = ec.generate_private_key(ec.SECP256R1())
    forged = layout.sign(replace(signed.record, card=later), signed.kid, forger)
    save_card(card_file, replace(state, record=forged.encode()))
    assert _tap(window, cards, card_file)[:2] == (False, ["record-forged"])


def test_a_cloned_card_is_refused(
    window: Window,
    cards: Cards,
    personalised: tuple[str, Path],
    tmp_path: Path,
) -> None:
    """Every byte the reader can read, copied to a new card: its own key cannot sign."""
    original = load_card(personalised[1])
    clone_file = tmp_path / "clone.card"
    clone = replace(original, private_key=ec.generate_private_key(ec.SECP256R1()))
    save_card(clone_file, clone)
    assert _tap(window, cards, clone_file)[:2] == (False, ["card-not-genuine"])


def test_a_replayed_challenge_is_refused(
    window: Window, cards: Cards, personalised: tuple[str, Path]
) -> None:
    link = card_link(cards(personalised[1]))
    challenge = window.client.post("/verification/v1/challenges", {})
    signature = link.authenticate(base64.urlsafe_b64decode(challenge["challenge"] + "=="))
    body = {
        "challenge_id": challenge["challenge_id"],
        "service": SERVICE,
        "record": base64.b64encode(link.read_record()).decode(),
        "card_signature": base64.b64encode(signature).decode(),
    }
    assert window.client.post("/verification/v1/taps", body)["decision"] == "grant"
    again = window.client.post("/verification/v1/taps", body)
    assert (again["decision"], [r["code"] for r in again["reasons"]]) == (
        "deny",
        ["challenge-used"],
    )


def _act(
    app_client: TestClient, office: dict[str, str], permit_id: str, action: str, **body: str
) -> None:
    version = app_client.get(f"/registry/v1/permits/{permit_id}", headers=office).headers["etag"]
    answer = app_client.post(
        f"/registry/v1/permits/{permit_id}/{action}",
        headers={**office, "If-Match": version},
        json=body or None,
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("action", "body", "reasons"),
    [
        ("replace", {}, ["card-reported-lost"]),
        ("cancel", {"reason": "conditions-no-longer-met"}, ["card-cancelled", "permit-cancelled"]),
    ],
)
def test_a_card_ended_by_the_registry_is_refused(
    app_client: TestClient,
    office: dict[str, str],
    window: Window,
    cards: Cards,
    personalised: tuple[str, Path],
    action: str,
    body: dict[str, str],
    reasons: list[str],
) -> None:
    permit_id, card_file = personalised
    _act(app_client, office, permit_id, action, **body)
    assert _tap(window, cards, card_file)[:2] == (False, reasons)


def test_a_suspended_permit_is_refused_until_endorsed_and_rewritten(
    app_client: TestClient,
    hub: Hub,
    clock: FixedClock,
    register_client: RegisterClient,
    window: Window,
    writer: HubClient,
    cards: Cards,
    personalised: tuple[str, Path],
) -> None:
    permit_id, card_file = personalised
    clock.set(clock.now() + timedelta(days=370))  # not endorsed by expiry
    jobs.sweep_expired(hub, hub.clock.today())
    assert _tap(window, cards, card_file)[:2] == (False, ["permit-suspended"])

    office = bearer(
        access_token(
            app_client, register_client("public-security", ("registry:read", "registry:write"))
        )
    )
    _act(app_client, office, permit_id, "endorse")  # within 30 days of suspension: restored
    refresh_card(writer, card_link(cards(card_file)), permit_id)
    assert _tap(window, cards, card_file)[:2] == (True, [])


def test_a_service_of_another_department_is_not_entitled(
    window: Window, cards: Cards, personalised: tuple[str, Path]
) -> None:
    agent = WindowAgent(window.client, "driving-licence", window.agent.cache)
    decision = agent.tap(card_link(cards(personalised[1])))
    assert not decision.grant and [c for c, _, _ in decision.reasons] == ["service-not-entitled"]


def test_an_unknown_card_is_refused(
    hub: Hub,
    window: Window,
    cards: Cards,
    personalised: tuple[str, Path],
    tmp_path: Path,
) -> None:
    """A record the hub really signed, for a serial it never registered (a card made from a
    leaked signing key would look the same)."""
    state = load_card(personalised[1])
    assert state.record is not None
    record = layout.decode(state.record).record
    unknown = replace(record, card=replace(record.card, serial="CF-NEVER-ISSUED"))
    with Session(hub.engine) as session:
        signed = issuing.sign_record(session, hub.card_key_password, unknown)
    unknown_file = tmp_path / "unknown.card"
    save_card(unknown_file, replace(state, record=signed.encode()))
    assert _tap(window, cards, unknown_file)[:2] == (False, ["card-unknown"])


def test_a_write_not_authorised_by_the_hub_is_refused_by_the_card(
    cards: Cards, personalised: tuple[str, Path]
) -> None:
    """A window (or anyone at a reader) trying to extend the card's validity itself."""
    card_file = personalised[1]
    before = load_card(card_file).record
    link = card_link(cards(card_file))
    nonce = link.write_nonce()
    forger = ec.generate_private_key(ec.SECP256R1())
    assert before is not None
    keys = b'{"keys": []}'
    message = protocol.write_message(link.card_key(), nonce, before, keys)
    signature = forger.sign(message, ec.ECDSA(hashes.SHA256()))
    for kid in (*link.trusted_kids(), "attacker"):
        write = protocol.encode_write(protocol.WriteCommand(before, kid, signature, keys))
        link.write_nonce()
        with pytest.raises(Exception) as refused:
            link.put_data(write)
        assert getattr(refused.value, "sw", None) in (
            protocol.SW.SECURITY_NOT_SATISFIED,
            protocol.SW.REFERENCE_NOT_FOUND,
        )
    assert load_card(card_file).record == before
    data = link.send(command(protocol.Ins.READ_BINARY, ne=65536), accept=(protocol.SW.OK,))
    assert data == before


def test_offline_decisions_use_the_cached_lists_and_are_reported_later(
    app_client: TestClient,
    office: dict[str, str],
    live: LoopbackServer,
    window: Window,
    cards: Cards,
    personalised: tuple[str, Path],
    hub: Hub,
) -> None:
    window.agent.refresh()
    live.stop()
    decision = window.agent.tap(card_link(cards(personalised[1])))
    assert decision.grant and decision.offline and decision.holder is None
    assert len(window.agent.cache.pending()) == 1

    live.start()
    _act(app_client, office, personalised[0], "replace")  # the card is lost, now
    window.agent.refresh()
    assert window.agent.report_pending() == 1  # reported, and forgotten
    live.stop()
    lost = window.agent.tap(card_link(cards(personalised[1])))
    assert (lost.grant, lost.offline) == (False, True)
    assert [code for code, _, _ in lost.reasons] == ["card-reported-lost"]
    live.start()


def test_the_window_command_shows_decisions_and_survives_a_card_pulled_out(
    live: LoopbackServer,
    window: Window,
    cards: Cards,
    personalised: tuple[str, Path],
    tmp_path: Path,
) -> None:
    log = tmp_path / "window.log"
    env = {**os.environ, "HUB_CLIENT_ID": window.client_id, "HUB_CLIENT_SECRET": window.secret}
    argv = [
        HUB,
        "window",
        "--service",
        SERVICE,
        "--hub",
        live.url,
        "--language",
        "en",
        "--cache",
        str(tmp_path / "agent"),
    ]
    # The agent starts at an empty reader. With the personalised card still in, the agent
    # would be reading it at start-up while the test swaps it for the next one; vpcd then
    # hands the new card to pcscd before pcscd has seen the old one go.
    cards.empty()
    with log.open("w") as output:
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "Ready" in log.read_text(), "the window agent to start")
        emulator = cards(personalised[1])
        wait_for(lambda: "GRANTED" in log.read_text(), "a decision", timeout=20)
        emulator.remove()
        wait_for(lambda: "Card removed" in log.read_text(), "the removal")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0, log.read_text()


def test_the_card_writer_commands(
    app_client: TestClient,
    hub: Hub,
    office: dict[str, str],
    live: LoopbackServer,
    register_client: RegisterClient,
    cards: Cards,
    tmp_path: Path,
) -> None:
    """`hub card personalise` and `hub card refresh` through the reader; a refusal by the hub
    is one sentence and exit 1, and leaves the card as it was."""
    new = register_client("public-security", ("registry:read", "registry:write"))
    assert new.secret
    env = {**os.environ, "HUB_CLIENT_ID": new.client_id, "HUB_CLIENT_SECRET": new.secret}
    photo = tmp_path / "photo.png"
    photo.write_bytes(tiny_png())
    permit_id = issued_permit(hub, app_client, office)
    card_file = tmp_path / "cli.card"
    cards(card_file)

    def card(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [HUB, "card", *args, "--hub", live.url]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    written = card("personalise", "--permit", permit_id, "--photo", str(photo))
    assert written.returncode == 0, written.stderr
    assert written.stdout.startswith("card ") and permit_id in written.stdout
    assert card("refresh", "--permit", permit_id).returncode == 0
    record = load_card(card_file).record
    refused = card("personalise", "--permit", "no-such-permit", "--photo", str(photo))
    assert refused.returncode == 1 and "the hub refused" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert load_card(card_file).record == record


def test_the_hub_client_takes_a_new_token_once_when_its_token_is_refused(
    live: LoopbackServer, window: Window
) -> None:
    client = window.client
    assert client.get("/verification/v1/catalogue")["services"]
    first = client._token  # the token it holds now, to revoke behind its back
    assert first is not None
    revoked = httpx.post(
        f"{live.url}/oauth/revoke",
        data={"token": first},
        auth=(window.client_id, window.secret),
    )
    assert revoked.status_code == 200
    assert client.get("/verification/v1/catalogue")["services"]  # 401, a new token, the answer
    assert client._token not in (None, first)
