"""Serving the facility: the first admin, the uvicorn server, a clean stop.

:func:`serve` runs the app until Ctrl-C or SIGTERM (uvicorn's graceful shutdown), then stops the
facility: every bed is ended (stimulation stops), its rows are written and the journal is flushed.
"""

from __future__ import annotations

import secrets
import signal
from collections.abc import Callable, Sequence

from sqlalchemy import select

from nexus.core.errors import ConfigError
from nexus.facility.service import FacilityService
from nexus.store.access import add_user
from nexus.store.db import Store
from nexus.store.models import StaffRole, StaffUser

FIRST_ADMIN = "admin"


def ensure_admin(store: Store) -> tuple[str, str] | None:
    """Create the first admin with a random password when there is no admin; return (username, password) once.

    Returns None when an admin exists already (the password is never shown again).
    """
    with store.session() as s:
        if s.scalars(select(StaffUser).where(StaffUser.role == StaffRole.ADMIN)).first() is not None:
            return None
        name = FIRST_ADMIN
        n = 1
        while s.scalars(select(StaffUser).where(StaffUser.username == name)).first() is not None:
            n += 1
            name = f"{FIRST_ADMIN}{n}"
        password = secrets.token_urlsafe(15)
        add_user(s, name, "admin", password=password, full_name="First administrator", actor="system")
    return name, password


def check_port(host: str, port: int) -> None:
    """Refuse a port that another program holds (before any bed starts)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"Cannot listen on {host}:{port} ({exc.strerror}): choose another --port "
                              "or stop the program that uses it.") from None


def serve(service: FacilityService, store: Store, *, host: str, port: int,
          on_ready: Callable[[], None] | None = None, trusted_proxies: Sequence[str] = ()) -> None:
    """Run the API and console on ``host:port`` until Ctrl-C or SIGTERM; stop the facility after (main thread).

    ``trusted_proxies``: reverse proxies whose ``X-Forwarded-For`` is believed (see :func:`create_app`).
    """
    import uvicorn

    from nexus.api.app import create_app

    app = create_app(service, store, trusted_proxies=trusted_proxies)
    if on_ready is not None:
        on_ready()
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 (its default), so any
    # local program could pick the address a login is locked by; the app trusts NEXUS_TRUSTED_PROXIES only
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                                           proxy_headers=False))
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again: turn that into an exception
    # here, so that the facility is stopped (sessions ended, journal flushed) instead of the process just dying
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        server.run()
    except (KeyboardInterrupt, _Interrupted):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        service.stop()


class _Interrupted(Exception):
    """SIGTERM arrived."""


def _interrupted(signum: int, frame: object) -> None:
    raise _Interrupted(signum)
