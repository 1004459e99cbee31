"""The operators' and auditors' console: one static page over the REST API, served at /console.

The page holds no data and needs no key to load; everything it shows comes from the API with
the key the user types, kept in the browser tab's session storage only. Record contents (case
numbers, reasons, receivers' answers) are untrusted text, so the script writes them with
`textContent` only and the Content-Security-Policy refuses inline script and any other origin.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, HTTPException
from fastapi.responses import RedirectResponse, Response

ASSETS = {  # file -> media type; nothing else in the folder is served
    "index.html": "text/html; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "messages.json": "application/json",  # every word of the console, in Chinese and English
    "console.js": "text/javascript; charset=utf-8",
    "cases.js": "text/javascript; charset=utf-8",
    "stats.js": "text/javascript; charset=utf-8",
    "echarts.min.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
# Apache ECharts ships with the package (with its license) and is served from the node itself:
# agency networks are closed, and a CDN would be another origin the policy refuses anyway.
PATHS = {"echarts.min.js": "vendor/echarts/echarts.min.js"}

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def asset(name: str) -> bytes:
    return (resources.files("gateway.api") / "console" / PATHS.get(name, name)).read_bytes()


def mount(app: FastAPI) -> None:
    """Add GET /console and its files to `app` (kept out of the OpenAPI schema)."""

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/console")

    @app.get("/console", include_in_schema=False)
    async def page() -> Response:
        return Response(asset("index.html"), media_type=ASSETS["index.html"], headers=HEADERS)

    @app.get("/console/{name}", include_in_schema=False)
    async def file(name: str) -> Response:
        if name not in ASSETS or name == "index.html":
            raise HTTPException(404, f"the console has no file {name}")
        return Response(asset(name), media_type=ASSETS[name], headers=HEADERS)
