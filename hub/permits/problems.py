"""The permit registry's problem types: registrations, applications, proofs on file and the
lifecycle.

Each is a public contract (`/problems/<slug>`, registered once at import); the registry's
routes raise or answer them, and other domains that speak of permits and proofs (the exchange,
the card writer) import them from here. The lifecycle's refusals and the eligibility rules'
refusals are one type per rule, titled by the domain's own tables.
"""

from __future__ import annotations

from hub.permits import domain, eligibility
from hub.problems import problem_type

PERMIT_NOT_FOUND = problem_type("permit-not-found", 404, "居住证不存在", "Permit not found")
REFUSED = {
    code: problem_type(code, 409, zh, en) for code, (zh, en) in domain.REFUSAL_TITLES.items()
}
REGISTRATION_REFUSED = problem_type(
    "registration-refused", 422, "居住登记信息不符合规定", "Registration not accepted"
)
REGISTRATION_NOT_FOUND = problem_type(
    "registration-not-found", 404, "居住登记不存在", "Registration not found"
)
CANCEL_REASON = problem_type(
    "cancellation-reason-invalid", 422, "注销原因无效", "Invalid cancellation reason"
)
APPLICATION_INCOMPLETE = problem_type(
    "application-incomplete", 422, "申领材料不全", "Application incomplete"
)
PERMIT_EXISTS = problem_type("permit-exists", 409, "已持有有效居住证", "A live permit exists")
CLAIM_INVALID = problem_type("claim-invalid", 422, "申领条件填写有误", "Invalid claim")
INELIGIBLE = {
    code: problem_type(code, 422, zh, en)
    for code, (zh, en) in eligibility.INELIGIBILITY_TITLES.items()
}
PROOF_CONFLICT = problem_type(
    "proof-conflict", 409, "同一证明编号的内容不一致", "Proof id reused with other content"
)
PROOF_NOT_FOUND = problem_type("proof-not-found", 404, "证明不存在", "Proof not found")
ADDRESS_REFUSED = problem_type(
    "address-change-refused", 422, "变更登记不符合规定", "Address change not accepted"
)
