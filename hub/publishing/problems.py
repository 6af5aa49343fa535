"""Publishing's problem type: a holder record the hub cannot build (a public contract,
`/problems/<slug>`, registered once at import), answered by the exchange's look-up and feed
and by a tap alike.
"""

from __future__ import annotations

from hub.problems import problem_type

RECORD_UNAVAILABLE = problem_type(
    "holder-record-unavailable", 500, "暂时无法生成持证人记录", "The holder record is unavailable"
)
