"""The identity platform the tests sign staff in through: tests/oidc/provider.mjs (node's
oidc-provider, installed by `make oidc`) in its own process on a loopback port."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hub.settings import DelegationConfig
from tests.servers import free_port

HERE = Path(__file__).parent
CLIENT_ID = "permit-hub"
CLIENT_SECRET = "only-for-tests-the-hub-at-the-platform"
SECRET_ENV = "HUB_TEST_OIDC_SECRET"
PASSWORD = "platform-password"
PEOPLE: dict[str, dict[str, Any]] = {
    "liu.yang": {"name": "刘洋", "hub_department": "public-security", "hub_roles": ["数据治理"]},
    "chen.jing": {"name": "陈静", "hub_department": "housing", "hub_roles": ["访客"]},
    "wang.fang": {"name": "王芳", "hub_department": "public-security", "hub_roles": ["数据治理"]},
}
"""liu.yang governs; chen.jing has no role the hub maps; wang.fang's name is a local account
in the tests that make one."""


@contextmanager
def identity_platform(redirect_uri: str, tmp_path: Path) -> Iterator[str]:
    """The platform, knowing the hub as a client with `redirect_uri`; yields its issuer."""
    if not (HERE / "node_modules" / "oidc-provider").is_dir() or shutil.which("node") is None:
        pytest.fail("the identity platform needs node and `make oidc` (tests/oidc/node_modules)")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = {
        "issuer": issuer,
        "client": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [redirect_uri],
        },
        "people": {
            name: {"password": PASSWORD, "claims": {"preferred_username": name, **claims}}
            for name, claims in PEOPLE.items()
        },
    }
    path = tmp_path / "identity-platform.json"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    process = subprocess.Popen(
        ["node", str(HERE / "provider.mjs"), str(port), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    ready = threading.Event()
    printed: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            printed.append(line)
            if line.strip() == "listening":
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(20):
            pytest.fail("the identity platform did not start:\n" + "".join(printed))
        yield issuer
    finally:
        process.terminate()
        process.wait(10)


def delegation(issuer: str) -> DelegationConfig:
    """`[staff_oidc]` as a bureau would write it for this platform."""
    return DelegationConfig(
        issuer=issuer,
        client_id=CLIENT_ID,
        client_secret_env=SECRET_ENV,
        name_zh="省统一身份认证平台",
        name_en="the provincial identity platform",
        scope="openid profile hub",
        department_claim="hub_department",
        roles_claim="hub_roles",
        roles={"数据治理": "governance", "审计": "auditor"},
    )
