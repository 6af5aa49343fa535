"""Verification's own problem types (a denied tap is an answer, not a problem).

Each is a public contract (`/problems/<slug>`, registered once at import); the window routes
raise them, beside publishing's for holder records (`hub.publishing.problems`) and the
registry's for tap-decision documents (`hub.schemas.problems`).
"""

from __future__ import annotations

from hub.problems import problem_type

OFFLINE_CONFLICT = problem_type(
    "offline-decision-conflict",
    409,
    "该核验结果编号已以其他内容报送",
    "A decision id was reported before with other content",
)
