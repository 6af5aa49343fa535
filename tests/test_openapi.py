"""The answers the OpenAPI document promises are closed, through one base (hub.openapi.ClosedView):
a field added to an answer without its promise fails the contract test instead of leaking out.

Found from the application's own routes (their response models and the models of their declared
responses, and every model inside those), so a new route's answers are covered without a list.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, get_args

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.routing import BaseRoute

from hub.auth.api import Introspected, JsonWebKey, JsonWebKeySet, TokenIssued
from hub.openapi import ClosedView
from hub.publishing.views import HolderRecord, RecordEvent

OPEN_ON_PURPOSE: frozenset[type[BaseModel]] = frozenset(
    {
        HolderRecord,  # its fields are the registry's schema version and the agreement's choice
        RecordEvent,
        TokenIssued,  # OAuth 2.0 answers: their RFCs let members be added
        Introspected,
        JsonWebKey,
        JsonWebKeySet,
    }
)


def _collect(annotation: Any, found: set[type[BaseModel]]) -> None:
    """Add every pydantic model in `annotation` to `found`: itself, its type arguments, and
    the models of its fields."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in found:
            found.add(annotation)
            for field in annotation.model_fields.values():
                _collect(field.annotation, found)
    else:
        for argument in get_args(annotation):
            _collect(argument, found)


def _routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, those of included routers too (FastAPI includes a router lazily)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def _answer_models(app: FastAPI) -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    for route in _routes(app.routes):
        declared = [response.get("model") for response in route.responses.values()]
        for annotation in (route.response_model, *declared):
            _collect(annotation, found)
    return found


def test_every_answer_model_is_a_closed_view_or_open_on_purpose(app_client: TestClient) -> None:
    app = app_client.app
    assert isinstance(app, FastAPI)
    models = _answer_models(app)
    closed = models - OPEN_ON_PURPOSE
    assert models >= OPEN_ON_PURPOSE
    assert {model.__module__ for model in closed} == {  # every domain's answers were found
        "hub.auth.api",
        "hub.card.api",
        "hub.connectors.views",
        "hub.permits.views",
        "hub.schemas.views",
        "hub.verification.api",
    }
    assert {model.__name__ for model in closed if not issubclass(model, ClosedView)} == set()
    assert {model.model_config.get("extra") for model in closed} == {"forbid"}
