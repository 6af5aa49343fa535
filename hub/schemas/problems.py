"""The schema registry's problem types: subjects and versions, compatibility, the version
lifecycle and data-sharing agreements.

Each is a public contract (`/problems/<slug>`, registered once at import); the registry's
routes raise them, and the exchange, which validates documents against registered versions,
imports the ones it shares (a retired version) from here.
"""

from __future__ import annotations

from hub.problems import problem_type

SUBJECT_NOT_FOUND = problem_type(
    "schema-subject-not-found", 404, "数据主题不存在", "No such subject"
)
VERSION_NOT_FOUND = problem_type(
    "schema-version-not-found", 404, "数据主题版本不存在", "No such schema version"
)
SCHEMA_INVALID = problem_type("schema-invalid", 422, "模式定义无效", "Invalid schema")
SCHEMA_INCOMPATIBLE = problem_type(
    "schema-incompatible", 409, "新版本与兼容性规则冲突", "The schema breaks compatibility"
)
ILLEGAL_STATE_CHANGE = problem_type(
    "schema-state-change-illegal", 409, "版本状态不能如此变更", "Illegal version state change"
)
SCHEMA_NOT_IN_USE = problem_type(
    "schema-version-not-in-use", 409, "该模式版本未启用", "The schema version is not in use"
)
VERSION_RETIRED = problem_type(
    "schema-version-retired", 409, "该版本已停用", "The schema version is retired"
)
AGREEMENT_NOT_FOUND = problem_type(
    "agreement-not-found", 404, "数据共享协议不存在", "No such agreement"
)
AGREEMENT_REFUSED = problem_type(
    "agreement-refused", 422, "数据共享协议内容不符合规定", "Agreement not accepted"
)
AGREEMENT_TOO_NARROW = problem_type(
    "agreement-too-narrow",
    409,
    "数据共享协议未允许模式版本要求的字段",
    "An agreement does not allow fields the schema version requires",
)
