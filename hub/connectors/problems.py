"""The exchange's problem types: proofs the departments file, look-ups, the changes feed and
dead letters (a holder record the hub cannot build is publishing's, hub.publishing.problems).

Each is a public contract (`/problems/<slug>`, registered once at import); the exchange's
routes raise or answer them.
"""

from __future__ import annotations

from hub.problems import problem_type

PROOF_NOT_OWNED = problem_type(
    "proof-not-owned", 403, "本部门不是该类证明的主管部门", "Not a proof your department files"
)
PROOF_INVALID = problem_type(
    "proof-invalid", 422, "证明文件不符合数据模式", "The proof does not match its schema"
)
NO_AGREEMENT = problem_type(
    "no-agreement", 403, "没有生效的数据共享协议", "No data-sharing agreement in force"
)
PULL_NOT_ENABLED = problem_type(
    "pull-not-enabled", 403, "未开通变更数据拉取", "The changes feed is not enabled"
)
HOLDER_NOT_FOUND = problem_type("holder-not-found", 404, "持证人不存在", "Holder not found")
CURSOR_INVALID = problem_type("cursor-invalid", 400, "游标无效", "Invalid cursor")
PROOF_REVOKED = problem_type("proof-revoked", 410, "证明已撤销", "Proof revoked")
DEAD_LETTER_NOT_FOUND = problem_type(
    "dead-letter-not-found", 404, "死信不存在", "No such dead letter"
)
REPORT_NOT_OWNED = problem_type(
    "report-not-owned", 403, "不是本单位应报送的报告", "Not a report your organisation files"
)
REPORT_INVALID = problem_type(
    "report-invalid", 422, "报告不符合数据模式", "The report does not match its schema"
)
