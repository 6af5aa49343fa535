"""Fixtures of the verification tests: an acceptance office, the shipped agreements, window
terminals of any department, and personalised cards of newly issued permits (Chifeng holders
resident for two years, tests/card/helpers.issued_permit)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from hub.auth.domain import ClientKind
from hub.composition import Hub
from tests.auth.helpers import access_token, bearer
from tests.card.helpers import issued_permit
from tests.conftest import RegisterClient, seed_shipped_agreements
from tests.verification.helpers import PermitCard, personalise

Window = Callable[..., dict[str, str]]
MakeCard = Callable[..., PermitCard]


@pytest.fixture
def office(app_client: TestClient, register_client: RegisterClient) -> dict[str, str]:
    new = register_client("public-security", ("registry:read", "registry:write"))
    return bearer(access_token(app_client, new))


@pytest.fixture
def seeded(hub: Hub) -> Hub:
    """The shipped agreements, as on a first start with config/agreements."""
    seed_shipped_agreements(hub)
    return hub


@pytest.fixture
def window(app_client: TestClient, register_client: RegisterClient, seeded: Hub) -> Window:
    """Headers of a new service-window terminal of `department` with the tap scope."""

    def make(department: str = "education") -> dict[str, str]:
        new = register_client(department, ("verification:tap",), kind=ClientKind.WINDOW_TERMINAL)
        return bearer(access_token(app_client, new))

    return make


@pytest.fixture
def make_card(app_client: TestClient, hub: Hub, office: dict[str, str], seeded: Hub) -> MakeCard:
    """A personalised card of a newly issued permit of holder number `n`."""

    def make(n: int = 1) -> PermitCard:
        return personalise(hub, issued_permit(hub, app_client, office, n))

    return make
