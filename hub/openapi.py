"""The OpenAPI document as the contract: every error an operation can answer, and how.

FastAPI describes what a route declares: its parameters, its body, its success response. The
errors come from elsewhere: the one problem handler (hub.problems), the edge checks in front of
every route, the token guard. Writing them into each route by hand would repeat the same dozen
lines fifty times and drift; so they are derived here, once, from what each operation is:

- every operation can answer 400 (a request the hub cannot read: a body that is not JSON, an
  unreadable header), 422 (a parameter or body that fails validation, or that the edge refuses,
  e.g. a U+0000) and 500;
- one with a request body also 413 (too large) and 415 (not the media type it takes);
- one with path parameters also 404 (nothing there);
- a guarded one (`@requires`) also 401 (no or a bad token) and 403 (a scope missing); one
  taking a client's own credentials (the OAuth endpoints) 401.

A route adds what only it can answer (409, 412, 428...) with `responses=`; whatever a route
declares for a 4xx or 5xx is given the problem-details media type and schema here.

The answers themselves are declared by the domains, as closed models (`ClosedView`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from hub.auth.domain import SCOPES
from hub.auth.guard import CLIENT_SECRET_BASIC, OPENAPI_SCHEME
from hub.problems import MEDIA_TYPE


class ClosedView(BaseModel):
    """The base of the hub's answers: an answer's promised shape, no field more.

    `extra="forbid"` makes the document say `additionalProperties: false` of the answer, so a
    field added to what a route sends without its promise in the model fails the contract
    test (tests/test_contract.py checks real answers against the document) instead of leaking
    out undocumented, and a model built in code refuses it at once. An answer open on purpose
    is a plain model instead, and says why: a holder record, whose fields a department's
    agreement chooses; the OAuth 2.0 answers, to which their RFCs let members be added.
    """

    model_config = ConfigDict(extra="forbid")


PROBLEM_REF: Final = "#/components/schemas/Problem"
_METHODS: Final = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})

PROBLEM_SCHEMA: Final[Mapping[str, Any]] = {
    "title": "Problem",
    "description": (
        "RFC 9457 problem details. `type` is stable (a machine reads it); `title` and `detail`"
        " are in the language of Accept-Language (zh-CN or en). Extension members may follow,"
        " e.g. `error`/`error_description` of OAuth 2.0 at /oauth/*."
    ),
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "/problems/<slug>, served by the hub"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Each field that failed, by JSON pointer into the body or by name.",
            "items": {
                "type": "object",
                "required": ["detail"],
                "properties": {
                    "detail": {"type": "string"},
                    "pointer": {"type": "string"},
                    "parameter": {"type": "string"},
                },
            },
        },
    },
}


def _error_statuses(operation: Mapping[str, Any]) -> set[int]:
    statuses = {400, 422, 500}
    if "requestBody" in operation:
        statuses |= {413, 415}
    if any(parameter.get("in") == "path" for parameter in operation.get("parameters", [])):
        statuses.add(404)
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    if schemes:
        statuses.add(401)
    if OPENAPI_SCHEME in schemes:
        statuses.add(403)
    declared = {int(code) for code in operation.get("responses", {}) if str(code).isdigit()}
    return statuses | {code for code in declared if code >= 400}


def describe_errors(document: dict[str, Any]) -> None:
    """Give every operation of `document` its error responses as problem details."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = dict(PROBLEM_SCHEMA)
    schemas.pop("HTTPValidationError", None)  # FastAPI's 422 shape: the hub never sends it
    schemas.pop("ValidationError", None)
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(_error_statuses(operation)):
                declared = responses.get(str(status), {})
                responses[str(status)] = {
                    "description": declared.get("description") or HTTPStatus(status).phrase,
                    "content": {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
                }


def install(app: FastAPI, issuer: str) -> None:
    """Serve the document with the OAuth 2.0 scheme GuardedRoute's security requirements name
    and every operation's errors; built once, on first request."""
    plain: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = plain()
            flow = {"tokenUrl": f"{issuer}/oauth/token", "scopes": dict(SCOPES)}
            schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[OPENAPI_SCHEME] = {"type": "oauth2", "flows": {"clientCredentials": flow}}
            schemes[CLIENT_SECRET_BASIC] = {"type": "http", "scheme": "basic"}
            describe_errors(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
