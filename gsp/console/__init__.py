"""The stewards' and operators' console: static pages served at ``/console`` by the control plane.

The pages hold no data. In the browser they sign in with the user's own credential (a token, kept in the
tab's sessionStorage) and call the platform's API with it, so what a page shows is exactly what the API
lets that credential's roles see: the authorisation matrix decides, not the page. Plain ES modules, no
build step and no third-party script: `static/app.js` (sign-in, routing, the API client, the DOM helper,
Vietnamese and English text) and one module per page in `static/pages/`. The Content-Security-Policy
allows scripts, styles and requests from the control plane only.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from gsp.errors import NotFound
from gsp.http.routes import Call, Route

__all__ = ["STATIC", "console_routes"]

STATIC = Path(__file__).parent / "static"
_ASSET = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_-]+)*\.(js|css|svg)$")
_TYPES = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def console_routes() -> list[Route]:
    async def index(call: Call) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={**_HEADERS, "Content-Type": "text/html; charset=utf-8"})

    async def asset(call: Call) -> web.StreamResponse:
        name = call.path["asset"] if "page" not in call.path else f"pages/{call.path['page']}"
        path = (STATIC / name).resolve()
        if not _ASSET.match(name) or not path.is_relative_to(STATIC.resolve()) or not path.is_file():
            raise NotFound(f"no console file {name!r}")
        return web.FileResponse(path, headers={**_HEADERS, "Content-Type": f"{_TYPES[path.suffix[1:]]}; charset=utf-8"})

    return [
        Route("GET", "/console", index, summary="The console's page (no data: it signs in and calls this API)",
              tag="console", responds="text/html"),
        Route("GET", "/console/{asset}", asset, summary="The console's shell script and styles", tag="console",
              responds="text/javascript, text/css or image/svg+xml"),
        Route("GET", "/console/pages/{page}", asset, summary="The script of one console page", tag="console",
              responds="text/javascript"),
    ]
