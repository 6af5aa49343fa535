"""OAuth 2.0 errors (RFC 6749 §5.2, §4.1.2.1) as the hub's problem types, for the token
routes and the sign-in page alike."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error

from hub.auth.server import NOT_AUTHENTICATED, AssertionReplayed
from hub.problems import Problem, ProblemType, Text, problem_type

_OAUTH_PROBLEMS: dict[str, tuple[ProblemType, str]] = {
    error: (problem_type(error.replace("_", "-"), status, zh, en), zh)
    for error, status, zh, en in [
        ("invalid_request", 400, "OAuth 请求无效", "Invalid OAuth request"),
        ("invalid_client", 401, "客户端认证失败", "Client authentication failed"),
        ("invalid_grant", 400, "授权无效", "Invalid grant"),
        ("unauthorized_client", 400, "客户端无权使用该授权类型", "Unauthorized client"),
        ("unsupported_grant_type", 400, "不支持的授权类型", "Unsupported grant type"),
        ("invalid_scope", 400, "请求的权限范围无效", "Invalid scope"),
        ("unsupported_token_type", 400, "不支持的令牌类型", "Unsupported token type"),
        ("unsupported_response_type", 400, "不支持的响应类型", "Unsupported response type"),
        ("access_denied", 403, "访问被拒绝", "Access denied"),
    ]
}
ASSERTION_REPLAYED = problem_type(
    "client-assertion-replayed", 401, "客户端断言已被使用过", "Client assertion replayed"
)
AUTHENTICATION_THROTTLED = problem_type(
    "client-authentication-throttled",
    429,
    "客户端认证失败次数过多",
    "Too many failed client authentications",
)


def oauth_problem(error: OAuth2Error) -> Problem:
    """RFC 6749 §5.2 members (`error`, `error_description`) ride along as extensions."""
    kind, zh = _OAUTH_PROBLEMS.get(error.error, _OAUTH_PROBLEMS["invalid_request"])
    headers = {}
    if isinstance(error, AssertionReplayed):
        kind, zh = ASSERTION_REPLAYED, ASSERTION_REPLAYED.title.zh
    if kind.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="permit-hub"'
    description = error.get_error_description() or kind.title.en
    if description.startswith("The client cannot authenticate with methods"):
        description = NOT_AUTHENTICATED  # no credentials: worded as a wrong secret is
    return Problem(
        kind,
        Text(zh, description),
        headers=headers,
        extensions={"error": error.error, "error_description": description},
    )


INVALID_REQUEST = _OAUTH_PROBLEMS["invalid_request"][0]
