"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc`, with every script, style
and icon served by the hub itself: a government intranet reaches no CDN, and FastAPI's own
pages load theirs from one.

The assets come from the fastapi-offline package (pinned in pyproject.toml, from PyPI at
install time), which vendors swagger-ui-dist 5 and ReDoc 2; only its static files are used.
Swagger UI's validator badge, which would send the OpenAPI document to validator.swagger.io,
is switched off.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from hub.auth.guard import public

ASSETS: Final = "/assets/docs"


def install(app: FastAPI, title: str) -> None:
    """Mount the assets and add the two pages (public, like the OpenAPI document)."""
    directory = files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(directory)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    @public
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title}: API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    @public
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title}: API",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
