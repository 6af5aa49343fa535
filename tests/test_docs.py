"""The API's documentation pages load nothing from outside the hub: an intranet reaches no
CDN, and Swagger UI's validator badge would send the OpenAPI document away."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", ["swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"]),
        ("/redoc", ["redoc.standalone.js", "favicon.png"]),
    ],
)
def test_the_docs_pages_are_served_with_their_assets(
    app_client: TestClient, page: str, assets: list[str]
) -> None:
    answer = app_client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert EXTERNAL.search(answer.text) is None, answer.text
    assert "cdn.jsdelivr" not in answer.text and "fonts.googleapis" not in answer.text
    for asset in assets:
        assert f"/assets/docs/{asset}" in answer.text
        served = app_client.get(f"/assets/docs/{asset}")
        assert served.status_code == 200 and len(served.content) > 1_000
    if page == "/docs":
        assert '"validatorUrl": null' in answer.text
    assert app_client.get("/assets/docs/../../pyproject.toml").status_code == 404
