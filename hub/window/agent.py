"""The service-window agent: a card is tapped, the agent reads it, the hub decides.

On line a tap is three APDUs (SELECT, one extended READ BINARY, INTERNAL AUTHENTICATE over
the hub's challenge) and two calls to the hub (challenge, tap). When the hub cannot be
reached the agent decides by what it cached while on line: the issuing keys (the record's
signature, and through the record the card's own key, which must sign a challenge the agent
makes up), the signed status list of refused cards, and the catalogue. Such a decision is
marked offline, kept on disk, and reported to the hub when it answers again. What cannot be
known off line (how long the holder has lived here) is not guessed: a service that needs it
is refused with `offline-unverifiable`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from hub.auth.domain import Department
from hub.card import layout
from hub.card.protocol import proves_possession
from hub.permits.domain import PermitState
from hub.text import Text
from hub.verification import domain
from hub.verification.domain import (
    REASON_TITLES,
    STATUS_LIST_TYPE,
    Reason,
    Service,
    Standing,
)
from hub.window.hubclient import HubClient, HubRefused, HubUnreachable
from hub.window.reader import CardLink

log = logging.getLogger(__name__)
SCOPE = "verification:tap"
_STATUS_REFUSALS = {reason.value: reason for reason in domain.CARD_ENDED.values()} | {
    reason.value: reason for reason in domain.PERMIT_REFUSED.values()
}


@dataclass(frozen=True)
class WindowDecision:
    """What the clerk is shown, and what an offline decision reports later."""

    decision_id: str
    grant: bool
    reasons: tuple[tuple[str, str, str], ...]  # (code, zh, en)
    service: str
    card_serial: str | None
    holder: dict[str, Any] | None
    offline: bool
    decided_at: str
    apdus: int
    photo: layout.Photo | None = None  # the card's, when the card proved genuine

    def render(self, language: str) -> str:
        zh = language == "zh-CN"
        verdict = (
            ("准予办理" if zh else "GRANTED") if self.grant else ("不予办理" if zh else "DENIED")
        )
        mode = (" [离线核验]" if zh else " [offline]") if self.offline else ""
        lines = [f"{verdict}{mode} {self.service} {self.card_serial or ''}".rstrip()]
        lines += [f"  - {zh_text if zh else en} ({code})" for code, zh_text, en in self.reasons]
        if self.holder:
            lines += [f"  {key}: {value}" for key, value in sorted(self.holder.items())]
        return "\n".join(lines)


class Cache:
    """What the agent keeps on disk to decide off line, and its unreported decisions."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / "pending").mkdir(parents=True, exist_ok=True)

    def save(self, name: str, content: str) -> None:
        path = self.directory / name
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(content)
        os.replace(temporary, path)  # whole or not at all: a crash never leaves half a list

    def load(self, name: str) -> str | None:
        path = self.directory / name
        return path.read_text() if path.exists() else None

    def keep(self, decision: dict[str, Any]) -> None:
        self.save(f"pending/{decision['decision_id']}.json", json.dumps(decision))

    def pending(self) -> list[Path]:
        return sorted((self.directory / "pending").glob("*.json"))


class WindowAgent:
    def __init__(self, client: HubClient, service: str, cache: Cache) -> None:
        self.client = client
        self.service = service
        self.cache = cache

    # --- on line ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Fetch what an offline decision needs; HubUnreachable if the hub does not answer."""
        whoami = self.client.get("/auth/v1/whoami")
        keys = self.client.get("/verification/v1/issuing-keys")
        catalogue = self.client.get("/verification/v1/catalogue")
        status = self.client.get_text("/verification/v1/status-list")
        self.cache.save("whoami.json", json.dumps(whoami))
        self.cache.save("issuing-keys.json", json.dumps(keys))
        self.cache.save("catalogue.json", json.dumps(catalogue))
        self.cache.save("status-list.jws", status)

    def report_pending(self) -> int:
        """Report offline decisions; returns how many were accepted (and forgotten)."""
        paths = self.cache.pending()
        if not paths:
            return 0
        decisions = [json.loads(path.read_text()) for path in paths]
        self.client.post("/verification/v1/offline-decisions", {"decisions": decisions})
        for path in paths:
            path.unlink()
        return len(paths)

    def tap(self, link: CardLink) -> WindowDecision:
        """Decide for the card on `link` (connected and selected)."""
        try:
            challenge = self.client.post("/verification/v1/challenges", {})
        except HubUnreachable:
            return self.decide_offline(link, link.read_record())
        record = link.read_record()
        nonce = base64.urlsafe_b64decode(challenge["challenge"] + "==")
        signature = link.authenticate(nonce)
        body = {
            "challenge_id": challenge["challenge_id"],
            "service": self.service,
            "record": base64.b64encode(record).decode(),
            "card_signature": base64.b64encode(signature).decode(),
        }
        try:
            answer = self.client.post("/verification/v1/taps", body)
        except HubUnreachable:
            return self.decide_offline(link, record)
        self._report_quietly()
        signed = _decoded(record)
        return WindowDecision(
            decision_id=str(answer["tap_id"]),
            grant=answer["decision"] == "grant",
            reasons=tuple(_reason_texts(r["code"], r["title"]) for r in answer["reasons"]),
            service=self.service,
            card_serial=_serial(signed),
            holder=answer.get("holder"),
            offline=False,
            decided_at=str(answer["decided_at"]),
            apdus=link.apdus,
            photo=_photo(signed, [r["code"] for r in answer["reasons"]]),
        )

    def _report_quietly(self) -> None:
        """Back on line: report what was decided off line; a failure waits for the next tap
        (a refusal is logged: the decisions stay on disk for staff to look at)."""
        try:
            self.report_pending()
        except HubUnreachable:
            pass
        except HubRefused as refused:
            log.warning("the hub refused the offline decisions: %s", refused)

    # --- off line --------------------------------------------------------------------------

    def decide_offline(self, link: CardLink, record_bytes: bytes) -> WindowDecision:
        now = datetime.now(UTC)
        signed = _decoded(record_bytes)
        reasons, serial = self._offline_reasons(link, signed, now), _serial(signed)
        decision = WindowDecision(
            decision_id=str(uuid.uuid4()),
            grant=not reasons,
            reasons=tuple(_reason_texts(reason.value) for reason in reasons),
            service=self.service,
            card_serial=serial,
            holder=None,  # nothing is disclosed without the hub and the agreement
            offline=True,
            decided_at=now.isoformat(),
            apdus=link.apdus,
            photo=_photo(signed, reasons),
        )
        self.cache.keep(
            {
                "decision_id": decision.decision_id,
                "card_serial": serial or "unreadable",
                "service_code": self.service,
                "department": self._department().value,
                "decision": "grant" if decision.grant else "deny",
                "reasons": [reason.value for reason in reasons],
                "offline": True,
                "decided_at": decision.decided_at,
            }
        )
        return decision

    def _offline_reasons(
        self, link: CardLink, signed: layout.SignedRecord | None, now: datetime
    ) -> list[Reason]:
        jwks = json.loads(self._cached("issuing-keys.json"))
        keys = {jwk["kid"]: layout.public_key_of(jwk) for jwk in jwks["keys"]}
        if signed is None:
            return [Reason.RECORD_MALFORMED]
        key = keys.get(signed.kid)
        if key is None or not signed.verify(key):
            return [Reason.RECORD_FORGED]
        challenge = secrets.token_bytes(domain.CHALLENGE_BYTES)
        if not proves_possession(signed.record.card_key, challenge, link.authenticate(challenge)):
            return [Reason.CARD_NOT_GENUINE]
        status = self._status_list(keys, now)
        if status is None:
            return [Reason.OFFLINE_UNVERIFIABLE]
        refused = status.get(signed.record.card.serial)
        if refused is not None:
            return [_STATUS_REFUSALS.get(refused, Reason.CARD_CANCELLED)]
        service = self._service()
        reasons = []
        if service.minimum_residence_months is not None:
            reasons.append(Reason.OFFLINE_UNVERIFIABLE)  # residence is not on the card
            service = replace(service, minimum_residence_months=None)
        standing = Standing(
            card_status="live",
            permit_state=PermitState.VALID,
            expires_on=signed.record.card.valid_until,
            residence_start=signed.record.card.valid_from,  # not used: see above
            jurisdiction=signed.record.card.jurisdiction,
        )
        today = now.date()
        return domain.assess(service, self._department(), standing, today) + reasons

    def _cached(self, name: str) -> str:
        text = self.cache.load(name)
        if text is None:
            raise HubUnreachable(f"the hub is unreachable and {name} was never fetched")
        return text

    def _status_list(
        self, keys: dict[str, ec.EllipticCurvePublicKey], now: datetime
    ) -> dict[str, str] | None:
        """The cached list's refused serials, or None if it is not good to decide by (stale,
        or not signed by a hub issuing key)."""
        token = self._cached("status-list.jws")
        try:
            header = jws.extract_compact(token.encode()).protected
            key = keys.get(str(header.get("kid")))
            if key is None or header.get("typ") != STATUS_LIST_TYPE:
                return None
            payload = json.loads(jws.deserialize_compact(token, ECKey.import_key(key)).payload)
        except (JoseError, ValueError):
            return None
        if datetime.fromisoformat(payload["next_update"]) < now:
            return None
        return dict(payload["cards"])

    def _department(self) -> Department:
        return Department(json.loads(self._cached("whoami.json"))["department"])

    def _service(self) -> Service:
        for view in json.loads(self._cached("catalogue.json"))["services"]:
            if view["code"] == self.service:
                return service_from_view(view)
        raise HubUnreachable(f"service {self.service} is not in the cached catalogue")


def service_from_view(view: dict[str, Any]) -> Service:
    """A catalogue entry as GET /verification/v1/catalogue shows it."""
    return Service(
        code=view["code"],
        name=Text(view["name"]["zh-CN"], view["name"]["en"]),
        department=Department(view["department"]),
        permit_states=frozenset(PermitState(state) for state in view["permit_states"]),
        minimum_residence_months=view["minimum_residence_months"],
        jurisdictions=frozenset(view["jurisdictions"]) if view["jurisdictions"] else None,
        conditions=tuple(Text(c["zh-CN"], c["en"]) for c in view["conditions"]),
        cite=view["cite"],
    )


def _reason_texts(code: str, title: str | None = None) -> tuple[str, str, str]:
    wording = REASON_TITLES.get(Reason(code)) if code in Reason._value2member_map_ else None
    if wording is None:
        return code, title or code, title or code
    return code, wording.zh, wording.en


def _decoded(record: bytes) -> layout.SignedRecord | None:
    """The card's record, or None if the bytes are not one (the decision then says so)."""
    try:
        return layout.decode(record)
    except layout.MalformedRecord:
        return None


def _photo(signed: layout.SignedRecord | None, reasons: Iterable[str]) -> layout.Photo | None:
    """The photo on the card, unless the tap found the card or its record not genuine (a
    forged record's photo is whoever the forger chose)."""
    if signed is None or {str(c) for c in reasons} & {r.value for r in domain.UNPROVEN}:
        return None
    return signed.record.photo


def _serial(signed: layout.SignedRecord | None) -> str | None:
    return None if signed is None else signed.record.card.serial
