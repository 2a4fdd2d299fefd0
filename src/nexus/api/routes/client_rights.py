"""A client's rights over the API: consent (read, change), dream journal, export (GDPR Art. 20), erasure (Art. 17).

Each route goes through the same store functions as ``nexus client``: the policy table decides (the client on
their own record, a clinician only with ``clinician_sharing``, admins for export and erasure), every access and
every refusal is audited, and a consent change reaches a running bed from its next step (the facility reads it).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import Response
from pydantic import BaseModel, Field

from nexus.api.deps import PrincipalDep, StoreDep

router = APIRouter(prefix="/api/clients", tags=["client rights"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such client."}}


class ConsentIn(BaseModel):
    """Scopes to grant and to revoke (see ``nexus client consent --help`` for the scopes)."""

    grant: list[str] = Field(default_factory=list, max_length=16)
    revoke: list[str] = Field(default_factory=list, max_length=16)


class JournalIn(BaseModel):
    """A morning dream-journal entry (only the client may write it)."""

    text: str = Field(min_length=1, max_length=20_000)
    mood: str | None = Field(default=None, max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=32)
    session: str | None = Field(default=None, max_length=64)


def _data_dir() -> Path:
    from nexus.core.settings import load_settings

    return Path(load_settings().data_dir)


@router.get("/{client}/consent", responses=NOT_FOUND)
def get_consent(client: str, principal: PrincipalDep, store: StoreDep) -> dict[str, Any]:
    """The client's consent, dependency index, natural night tonight and weaning plan (``consent.read``)."""
    from nexus.store.clients import client_view

    return client_view(store, principal, client)


@router.post("/{client}/consent", responses={**NOT_FOUND, 409: {"description": "The client was erased."}})
def change_consent(client: str, body: Annotated[ConsentIn, Body()], principal: PrincipalDep,
                   store: StoreDep) -> dict[str, Any]:
    """Grant and revoke scopes (``consent.change``: the client, or an admin); audited, effective next step."""
    from nexus.store.clients import set_consent

    ch = set_consent(store, principal, client, grant=body.grant, revoke=body.revoke)
    return {"before": ch.before, "after": ch.after, "granted": ch.granted, "revoked": ch.revoked, "notes": ch.notes}


@router.get("/{client}/journal", responses=NOT_FOUND)
def get_journal(client: str, principal: PrincipalDep, store: StoreDep) -> list[dict[str, Any]]:
    """The client's dream journal: the client, or a clinician the client shares it with."""
    from nexus.store.clients import read_journal

    return read_journal(store, principal, client)


@router.post("/{client}/journal", status_code=201, responses=NOT_FOUND)
def write_journal(client: str, body: Annotated[JournalIn, Body()], principal: PrincipalDep,
                  store: StoreDep) -> dict[str, int]:
    """Write a journal entry (the client only; the audit keeps that it was written, not what)."""
    from nexus.store.clients import add_journal_entry

    return {"id": add_journal_entry(store, principal, client, body.text, mood=body.mood, tags=body.tags,
                                    session_id=body.session)}


@router.get("/{client}/export", responses={**NOT_FOUND, 200: {"content": {"application/zip": {}},
                                                               "description": "The export as a zip."}})
def export(client: str, principal: PrincipalDep, store: StoreDep) -> Response:
    """Everything about the client as a zip: JSON, TSV, EDF+ and a manifest with SHA-256 (``client.export``)."""
    from nexus.store.clients import export_client

    with tempfile.TemporaryDirectory(prefix="nexus-export-") as tmp:
        path = Path(tmp) / "export.zip"
        export_client(store, principal, client, path, data_dir=_data_dir())
        data = path.read_bytes()
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": 'attachment; filename="client-export.zip"'})


@router.post("/{client}/erase", responses={**NOT_FOUND, 409: {"description": "A session of the client is "
                                                                              "running: extract it first."}})
def erase(client: str, principal: PrincipalDep, store: StoreDep) -> dict[str, int]:
    """Erase the client (``client.erase``): signals, journal, events, files and personal fields; audited."""
    from nexus.store.clients import erase_client

    return erase_client(store, principal, client, data_dir=_data_dir())
