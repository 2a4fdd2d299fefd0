"""One error style for the API: ``{"detail": "<what is wrong and how to fix it>"}`` with a fitting 4xx status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from nexus.core.errors import InvalidInputError, NexusError, NotFoundError, SafetyError, StateError
from nexus.guard.policy import AccessDenied

#: error class → HTTP status (the first match wins)
STATUS: list[tuple[type[NexusError], int]] = [
    (AccessDenied, 403),
    (NotFoundError, 404),
    (InvalidInputError, 422),
    (StateError, 409),
    (SafetyError, 409),
    (NexusError, 400),
]


def install(app: FastAPI) -> None:
    """Map the Nexus exception tree to HTTP responses."""

    async def nexus_error(request: Request, exc: Exception) -> JSONResponse:
        code = next((c for cls, c in STATUS if isinstance(exc, cls)), 400)
        return JSONResponse({"detail": str(exc)}, status_code=code)

    app.add_exception_handler(NexusError, nexus_error)
