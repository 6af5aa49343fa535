"""The permit registry's problem types: registrations, applications, proofs on file and the
lifecycle.

Each is a public contract (`/problems/<slug>`, registered once at import); the registry's
routes raise or answer them, and other domains that speak of permits and proofs (the exchange,
the card writer) import them from here. The lifecycle's refusals and the eligibility rules'
refusals are one type per rule, titled by the tables here, which the domain checks its codes
against.
"""

from __future__ import annotations

from collections.abc import Mapping

from hub.problems import problem_type

# Every refusal's stable code with a title in both languages; the API turns each into its own
# problem type, so a client can tell "too early to endorse" from "already expired".
REFUSAL_TITLES: Mapping[str, tuple[str, str]] = {
    "illegal-transition": ("居住证当前状态不允许该操作", "Not allowed in the permit's state"),
    "endorsement-window-not-open": ("签注期尚未开始", "Endorsement window not open yet"),
    "permit-expired": ("居住证已过有效期", "Permit expired"),
    "permit-not-expired": ("居住证尚未到期", "Permit not expired"),
    "settlement-not-configured": ("本地无按居住年限落户的规定", "No settlement rule here"),
    "settlement-residence-too-short": ("连续居住年限不足", "Continuous residence too short"),
    "moved-after-report": ("迁入日期晚于申报日期", "Move dated after its report"),
}

INELIGIBILITY_TITLES: Mapping[str, tuple[str, str]] = {
    "excluded-move": ("不予办理居住证的迁移", "Move excluded from permits"),
    "household-not-outside": ("户籍不在居住地以外", "Household registered where you live"),
    "unknown-exemption": ("不适用的免除条件", "Exemption not recognised here"),
    "residence-too-short": ("居住时间不足", "Residence too short"),
    "insurance-too-short": ("社会保险缴费时间不足", "Social insurance too short"),
    "insurance-not-continuous": ("社会保险未连续缴纳", "Social insurance not continuous"),
    "study-too-short": ("就读时间不足", "Study too short"),
    "condition-too-short": ("就业或住所时间不足", "Employment or residence too short"),
    "no-condition-met": ("不符合任一申领条件", "No condition met"),
}
"""Every ineligibility's stable code with a title in both languages."""

PERMIT_NOT_FOUND = problem_type("permit-not-found", 404, "居住证不存在", "Permit not found")
REFUSED = {code: problem_type(code, 409, zh, en) for code, (zh, en) in REFUSAL_TITLES.items()}
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
    code: problem_type(code, 422, zh, en) for code, (zh, en) in INELIGIBILITY_TITLES.items()
}
PROOF_CONFLICT = problem_type(
    "proof-conflict", 409, "同一证明编号的内容不一致", "Proof id reused with other content"
)
NO_JURISDICTION = problem_type("no-jurisdiction", 403, "未分配辖区", "No jurisdiction assigned")
REPORT_CONFLICT = problem_type(
    "report-conflict", 409, "报告编号已用于其他报告", "Report id reused with other content"
)
POINTS_UNAVAILABLE = problem_type(
    "points-unavailable", 404, "无积分信息", "Points not available here"
)
PROOF_NOT_FOUND = problem_type("proof-not-found", 404, "证明不存在", "Proof not found")
ADDRESS_REFUSED = problem_type(
    "address-change-refused", 422, "变更登记不符合规定", "Address change not accepted"
)
