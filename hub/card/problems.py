"""The card writer's problem types: why a card cannot be personalised or rewritten now.

Each is a public contract (`/problems/<slug>`, registered once at import), one per refusal code
of `hub.card.service.CardRefused`, which the card routes answer with the type of its code.
"""

from __future__ import annotations

from hub.problems import ProblemType, problem_type

_TITLES = {
    "card-photo-invalid": (422, "照片无效", "Invalid photo"),
    "card-key-invalid": (422, "卡公钥无效", "Invalid card key"),
    "card-not-issued": (409, "尚未发卡", "No card issued"),
    "card-not-writable": (409, "该卡不能写入", "Card not writable"),
    "card-already-personalised": (409, "卡号已绑定另一张卡", "Card serial bound to another card"),
    "card-not-registered": (409, "不是登记的卡", "Not the registered card"),
    "card-record-invalid": (409, "卡内记录无效", "Card record invalid"),
    "card-trusts-no-hub-key": (409, "卡不信任本平台密钥", "Card trusts no hub key"),
}
REFUSED: dict[str, ProblemType] = {
    code: problem_type(code, status, zh, en) for code, (status, zh, en) in _TITLES.items()
}
