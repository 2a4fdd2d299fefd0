"""Queries over the facility's sessions (what ``nexus sessions`` and the API list)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from nexus.store.models import Client, DreamscapeProgram, NightSession


def list_sessions(store: Any, *, state: str | None = None, client_code: str | None = None,
                  limit: int = 200) -> list[dict[str, Any]]:
    """Sessions with their client code, program name and version, newest first, as JSON-ready dicts.

    Parameters
    ----------
    store : Store
        An open database.
    state : str, optional
        Only sessions in this state (``running``, ``ended``, …).
    client_code : str, optional
        Only sessions of this client.
    limit : int
        At most this many rows.
    """
    q = (select(NightSession, Client.code, DreamscapeProgram.name, DreamscapeProgram.version)
         .join(Client, NightSession.client_id == Client.id)
         .outerjoin(DreamscapeProgram, NightSession.program_id == DreamscapeProgram.id))
    if state is not None:
        q = q.where(NightSession.state == state)
    if client_code is not None:
        q = q.where(Client.code == client_code)
    q = q.order_by(NightSession.created_at.desc(), NightSession.id).limit(limit)
    out = []
    with store.session() as s:
        for row, code, pname, pver in s.execute(q):
            out.append({
                "session": row.id, "client": code, "program": None if pname is None else f"{pname} v{pver}",
                "mode": str(row.mode.value), "state": str(row.state.value), "bed": row.bed, "source": row.source,
                "started_at": None if row.started_at is None else row.started_at.isoformat(),
                "ended_at": None if row.ended_at is None else row.ended_at.isoformat(),
                "end_reason": row.end_reason,
            })
    return out
