"""``GET /api/health``: no authentication."""

from __future__ import annotations

from fastapi import APIRouter

from nexus import __version__
from nexus.api.schemas import Health

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health")
def health() -> Health:
    """The service is up."""
    return Health(version=__version__)
