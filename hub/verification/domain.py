"""The rules of a tap at a service window, over plain data: no framework, no SQL, no clock.

A tap answers one question: may this card's holder have this service at this window now? The
answer is `grant` or `deny` with stable reason codes, each with a title in both languages the
hub speaks. The checks run in a fixed order (DESIGN.md, "Cards resist copying"):

1. the hub's challenge, fresh and used once;
2. the card record: it decodes and carries the hub's issuing signature;
3. the card itself: registered at personalisation with the very key the record binds, and it
   proves possession of that key's private half by signing the challenge (a copied card
   cannot);
4. the card's live standing: not reported lost, replaced or cancelled, its permit in force;
5. the service's conditions from the catalogue.

Steps 1-3 stop at the first failure: nothing the card says can be believed after one. Step 4
lists every failure and stops, since a service cannot be judged for a card that is refused
anyway; step 5 lists every condition that fails, so the clerk can tell the holder everything
at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Final

from hub.auth.domain import Department
from hub.permits.domain import PermitState, add_months
from hub.text import Text

CHALLENGE_BYTES: Final = 32
"""What the card signs: the hub's nonce, 32 bytes no one without the hub's key can predict
(hub.verification.challenges), or off line the agent's own, 32 random bytes. The card takes
16 to 64."""
CHALLENGE_TTL: Final = timedelta(seconds=60)
"""A challenge is good for one tap within a minute: long enough to read a card, too short to
collect signatures for later."""
STATUS_LIST_TTL: Final = timedelta(hours=24)
"""How long a window agent may decide by one status list before it must fetch a newer one."""


class Reason(StrEnum):
    """Why a tap was denied; the codes are a public contract (window agents show and log them,
    the offline agent reports the same ones)."""

    CHALLENGE_UNKNOWN = "challenge-unknown"
    CHALLENGE_EXPIRED = "challenge-expired"
    CHALLENGE_USED = "challenge-used"
    RECORD_MALFORMED = "record-malformed"
    RECORD_FORGED = "record-forged"
    CARD_UNKNOWN = "card-unknown"
    CARD_KEY_MISMATCH = "card-key-mismatch"
    CARD_NOT_GENUINE = "card-not-genuine"
    CARD_REPORTED_LOST = "card-reported-lost"
    CARD_REPLACED = "card-replaced"
    CARD_CANCELLED = "card-cancelled"
    PERMIT_SUSPENDED = "permit-suspended"
    PERMIT_CANCELLED = "permit-cancelled"
    PERMIT_NOT_VALID = "permit-not-valid"
    PERMIT_EXPIRED = "permit-expired"
    SERVICE_NOT_ENTITLED = "service-not-entitled"
    RESIDENCE_TOO_SHORT = "residence-too-short"
    WRONG_JURISDICTION = "wrong-jurisdiction"
    OFFLINE_UNVERIFIABLE = "offline-unverifiable"
    """Only a window agent deciding off line gives this: its status list is out of date, or
    the service needs a fact the card does not carry (continuous residence)."""


UNPROVEN: Final = frozenset(
    {
        Reason.CHALLENGE_UNKNOWN,
        Reason.CHALLENGE_EXPIRED,
        Reason.CHALLENGE_USED,
        Reason.RECORD_MALFORMED,
        Reason.RECORD_FORGED,
        Reason.CARD_UNKNOWN,
        Reason.CARD_KEY_MISMATCH,
        Reason.CARD_NOT_GENUINE,
    }
)
"""Reasons that leave the card itself unproven: its record not the hub's, or the card not the
one the record names. What such a card carries (its photo) is not shown as the holder's."""

REASON_TITLES: Mapping[Reason, Text] = {
    Reason.CHALLENGE_UNKNOWN: Text("核验挑战码不存在", "Unknown challenge"),
    Reason.CHALLENGE_EXPIRED: Text("核验挑战码已过期，请重新读卡", "Challenge expired; tap again"),
    Reason.CHALLENGE_USED: Text(
        "核验挑战码已使用，请重新读卡", "Challenge already used; tap again"
    ),
    Reason.RECORD_MALFORMED: Text("卡内数据无法读取", "The card's record cannot be read"),
    Reason.RECORD_FORGED: Text(
        "卡内数据非本平台签发", "The card's record was not signed by the hub"
    ),
    Reason.CARD_UNKNOWN: Text("该卡未在平台登记", "The card is not registered with the hub"),
    Reason.CARD_KEY_MISMATCH: Text(
        "卡片密钥与登记不符", "The card's key is not the registered one"
    ),
    Reason.CARD_NOT_GENUINE: Text(
        "卡片认证失败，疑为复制卡", "The card failed authentication (a copy?)"
    ),
    Reason.CARD_REPORTED_LOST: Text("该卡已挂失", "The card was reported lost"),
    Reason.CARD_REPLACED: Text("该卡已换领，请使用新卡", "The card was replaced; use the new card"),
    Reason.CARD_CANCELLED: Text("该卡已注销", "The card was cancelled"),
    Reason.PERMIT_SUSPENDED: Text(
        "居住证使用功能已中止，请办理签注", "The permit is suspended; endorse it"
    ),
    Reason.PERMIT_CANCELLED: Text("居住证已注销", "The permit was cancelled"),
    Reason.PERMIT_NOT_VALID: Text("居住证尚未生效", "The permit is not in force"),
    Reason.PERMIT_EXPIRED: Text("居住证已过有效期", "The permit has expired"),
    Reason.SERVICE_NOT_ENTITLED: Text(
        "本窗口不办理该项服务", "This window's department does not provide the service"
    ),
    Reason.RESIDENCE_TOO_SHORT: Text("居住年限不足", "Residence too short for the service"),
    Reason.WRONG_JURISDICTION: Text(
        "该项服务不在持证人居住地提供", "The service is not offered where the permit was issued"
    ),
    Reason.OFFLINE_UNVERIFIABLE: Text(
        "离线状态下无法核验，请待联网后办理", "Cannot be verified off line; wait for the hub"
    ),
}


class Decision(StrEnum):
    GRANT = "grant"
    DENY = "deny"


@dataclass(frozen=True)
class Service:
    """One entry of the published list of services and conveniences a permit unlocks
    (config/catalogue.toml), with what the hub checks before granting it."""

    code: str
    name: Text
    department: Department
    """The responsible department: only its windows provide the service."""
    permit_states: frozenset[PermitState]
    minimum_residence_months: int | None
    """Continuous residence the service needs, counted from the permit's residence start."""
    jurisdictions: frozenset[str] | None
    """Where the service is offered (jurisdiction codes); None: wherever a permit is issued."""
    conditions: tuple[Text, ...]
    """What the window checks itself (documents, the child's schooling, ...): shown, not
    decided by the hub."""
    cite: str


@dataclass(frozen=True)
class Catalogue:
    services: Mapping[str, Service]


@dataclass(frozen=True)
class Standing:
    """What the registry says now about a tapped card and its permit."""

    card_status: str
    permit_state: PermitState
    expires_on: date | None
    residence_start: date
    jurisdiction: str


CARD_ENDED: Mapping[str, Reason] = {
    "lost": Reason.CARD_REPORTED_LOST,
    "returned": Reason.CARD_REPLACED,
    "superseded": Reason.CARD_REPLACED,  # renewed where the old card is not collected
    "cancelled": Reason.CARD_CANCELLED,
}
"""How each ended card status is refused; any status but `live` refuses the card."""

PERMIT_REFUSED: Mapping[PermitState, Reason] = {
    PermitState.SUSPENDED: Reason.PERMIT_SUSPENDED,
    PermitState.CANCELLED: Reason.PERMIT_CANCELLED,
}
"""Permit states that refuse every card of the permit, on line and on the status list."""


def refused_status(card_status: str, permit_state: PermitState) -> Reason | None:
    """Why a card must be refused whatever the service, or None if its standing is good."""
    if card_status != "live":
        return CARD_ENDED.get(card_status, Reason.CARD_CANCELLED)
    return PERMIT_REFUSED.get(permit_state)


def standing_reasons(standing: Standing, service: Service, today: date) -> list[Reason]:
    """The card's and the permit's failures, both listed."""
    reasons = []
    if standing.card_status != "live":
        reasons.append(CARD_ENDED.get(standing.card_status, Reason.CARD_CANCELLED))
    state = standing.permit_state
    if state not in service.permit_states:
        reasons.append(PERMIT_REFUSED.get(state, Reason.PERMIT_NOT_VALID))
    elif state is PermitState.VALID and standing.expires_on and standing.expires_on < today:
        reasons.append(Reason.PERMIT_EXPIRED)  # the nightly sweep has not suspended it yet
    return reasons


def service_reasons(
    service: Service, department: Department, standing: Standing, today: date
) -> list[Reason]:
    """Every condition of the service the tap does not meet."""
    reasons = []
    if department is not service.department:
        reasons.append(Reason.SERVICE_NOT_ENTITLED)
    months = service.minimum_residence_months
    if months is not None and add_months(standing.residence_start, months) > today:
        reasons.append(Reason.RESIDENCE_TOO_SHORT)
    if service.jurisdictions is not None and standing.jurisdiction not in service.jurisdictions:
        reasons.append(Reason.WRONG_JURISDICTION)
    return reasons


def assess(
    service: Service, department: Department, standing: Standing, today: date
) -> list[Reason]:
    """Steps 4 and 5 of a tap whose card proved genuine."""
    return standing_reasons(standing, service, today) or service_reasons(
        service, department, standing, today
    )


def decision_of(reasons: Sequence[str]) -> Decision:
    return Decision.DENY if reasons else Decision.GRANT


AUDIT_OUTCOME_MAX: Final = 64


def audit_outcome(decision: str, reasons: Sequence[str]) -> str:
    """`grant`, or `deny:` with the reasons, as an audit outcome (at most 64 characters):
    reasons that do not fit are counted (`deny:a,b+2`), never cut in the middle."""
    text = decision
    for index, reason in enumerate(reasons):
        longer = f"{text}{',' if index else ':'}{reason}"
        left = len(reasons) - index - 1
        if len(longer) + (len(f"+{left}") if left else 0) > AUDIT_OUTCOME_MAX:
            return f"{text}+{left + 1}"
        text = longer
    return text


STATUS_LIST_TYPE: Final = "hub-status-list+jws"
"""The `typ` of the status list's JWS header (RFC 8725 §3.11: explicit typing), so nothing
else the issuing key signs can be taken for a status list."""
