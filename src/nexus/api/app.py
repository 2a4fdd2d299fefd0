"""The app factory: REST routers, the floor WebSocket, the console's static files, error handling.

Nothing is built at import time: :func:`create_app` takes the running facility and its database.
OpenAPI at ``/openapi.json``, interactive docs at ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), their
scripts and styles served by this process from the ``fastapi-offline`` package (under :data:`DOCS_ASSETS`):
like the console, the docs load nothing from elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from nexus import __version__
from nexus.api import errors
from nexus.api.routes import assign, auth, beds, client_rights, clients, floor, glitches, health, programs, sessions
from nexus.api.schemas import Invalid, Problem
from nexus.facility.service import FacilityService
from nexus.store.db import Store

#: Largest request body accepted, in bytes (a program is a few kB).
MAX_BODY = 1_000_000
#: What every route behind the token may answer besides its own responses (documented in the schema).
GUARDED: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "A body that cannot be read (not UTF-8, not JSON)."},
    401: {"model": Problem, "description": "No token, or a token that is unknown, expired or revoked."},
    403: {"model": Problem, "description": "The token's role may not do this (the guard's policy table)."},
    413: {"model": Problem, "description": f"Request body over {MAX_BODY} bytes."},
    422: {"model": Invalid, "description": "Invalid input: the detail names the field or the problem."},
}
#: Where the Swagger UI and ReDoc scripts are served (from the fastapi-offline package).
DOCS_ASSETS = "/docs-assets"
#: The docs pages may load scripts, styles, images and data from this server only (inline scripts start them).
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")


def console_dir() -> Path:
    """The folder of the console's static files."""
    return Path(str(files("nexus.console") / "static"))


def create_app(service: FacilityService, store: Store, *, trusted_proxies: Sequence[str] = ()) -> FastAPI:
    """The Nexus web app for ``service`` (a started :class:`FacilityService`) and its ``store``.

    ``trusted_proxies`` (addresses or networks, ``NEXUS_TRUSTED_PROXIES``): a request from one of them is taken
    to come from the address its ``X-Forwarded-For`` names (the last one that is not itself a trusted proxy), so
    that the staff login's lockout and the audit see each client behind a reverse proxy; from anywhere else
    the header is ignored (anyone can send it).
    """
    app: FastAPI = FastAPIOffline(
        title="Bedtime Nexus", version=__version__, static_url=DOCS_ASSETS,
        description="The facility's REST API and live floor feed. Every route but /api/health and the logins "
                    "(/api/auth/login, /api/auth/client/login, /api/auth/client/enrol) needs a bearer token.")
    app.state.service = service
    app.state.store = store
    errors.install(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
            return JSONResponse({"detail": f"Request body too large: at most {MAX_BODY} bytes."}, status_code=413)
        return await call_next(request)

    @app.middleware("http")
    async def docs_stay_home(request: Request, call_next):
        # ReDoc's bundle links its logo from its maker's CDN: the docs pages may load from this server only
        response = await call_next(request)
        if request.url.path in ("/docs", "/redoc"):
            response.headers["Content-Security-Policy"] = DOCS_CSP
        return response

    if trusted_proxies:  # uvicorn's own middleware (nexus.api.server turns off uvicorn's default trust)
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(trusted_proxies))
    app.include_router(health.router)
    for r in (auth, beds, sessions, assign, clients, client_rights, programs, glitches, floor):
        app.include_router(r.router, responses=GUARDED)
    app.mount("/console", StaticFiles(directory=console_dir(), html=True), name="console")

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/console/")

    return app
