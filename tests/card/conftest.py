"""The card tests' PC/SC context: see tests/card/pcsc.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from smartcard import scard

from tests.auth.helpers import access_token, bearer
from tests.card.pcsc import LOCK, PORT, READER, card_present, eventually, try_lock, wait_for
from tests.conftest import RegisterClient


@pytest.fixture(scope="module")
def pcsc() -> Iterator[int]:
    """A PC/SC context with the reader to ourselves: the lock shared by every card test run,
    then pcscd and its virtual reader, empty."""
    with LOCK.open("w") as lock:
        wait_for(lambda: try_lock(lock), f"the virtual reader lock {LOCK}", timeout=300)
        result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if result != scard.SCARD_S_SUCCESS:
            pytest.fail(
                f"pcscd is not running ({scard.SCardGetErrorMessage(result)}): the card tests "
                "need pcscd with the vsmartcard-vpcd driver (`make pcscd`)"
            )
        try:
            if not eventually(lambda: not card_present(context), 3):
                pytest.fail(
                    f"{READER} already holds a card: something other than a test is connected "
                    f"to port {PORT} (see HUB_TEST_VPCD_PORT)"
                )
            yield context
        finally:
            scard.SCardReleaseContext(context)


@pytest.fixture
def office(app_client: TestClient, register_client: RegisterClient) -> dict[str, str]:
    """Headers of an acceptance office's system (registry:read and registry:write)."""
    new = register_client("public-security", ("registry:read", "registry:write"))
    return bearer(access_token(app_client, new))
