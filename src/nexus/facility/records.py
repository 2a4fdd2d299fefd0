"""A facility night's database rows, shared by ``nexus simulate`` and ``nexus run``.

:func:`open_db` opens the facility database at the migration head (sessions left open by a crashed
facility get their end state first); :func:`start_rows` writes the clients, programs and running
sessions of planned beds; :func:`store_decisions` copies the decisions a night journaled into the
decision table and, in the same transaction, into the tamper-evident audit chain (one
``decision.<kind>`` entry each, actor ``system``), so that every automated decision of the facility
can be verified later with ``nexus audit verify``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexus.facility.simulate import BedPlan

#: Decisions copied per database statement.
BATCH = 5000


def open_db(url: str | None = None) -> Any:
    """The facility database (``url``, or the settings' ``NEXUS_DATABASE_URL``) upgraded to the head, recovered."""
    from nexus.core.settings import load_settings
    from nexus.facility.recovery import recover
    from nexus.store import upgrade
    from nexus.store.db import open_store

    settings = load_settings(**({"database_url": url} if url else {}))
    store = open_store(settings, create=True, check=False)
    upgrade(store.engine, "head")
    recover(store)  # sessions left open by a facility that crashed get their end state first
    return store


def start_rows(store: Any, beds: Sequence[BedPlan]) -> None:
    """Write each planned bed's client, program (with the curator's reasons) and session, now running.

    Tonight's night is decided here (:func:`~nexus.guard.tonight.plan_tonight`) from the client's consent
    and earlier nights: a client whose code is already enrolled comes back with the consent on record and
    their nights, so the natural-night schedule and the weaning plan can make tonight record-only or lower
    its stimulation dose. ``beds`` are updated in place (program, scopes, reasons); the plan of each night
    is audited (``night.plan``) with the client's enrolment (``client.add``), in the same transaction.

    Raises
    ------
    StateError
        A returning client's consent does not allow a night at all (no ``recording``); nothing is written.
    """
    from sqlalchemy import select

    from nexus.core.errors import StateError
    from nexus.core.lifecycle import SessionState
    from nexus.guard.tonight import plan_tonight
    from nexus.store.audit import append_many
    from nexus.store.clients import client_nights
    from nexus.store.models import Client, DreamscapeProgram, NightSession, SessionMode

    with store.session() as s:
        audit: list[dict[str, Any]] = []
        for k, b in enumerate(beds):
            client = s.scalars(select(Client).where(Client.code == b.client, Client.erased_at.is_(None))).first()
            if client is None:
                client = Client(code=b.client, display_name=f"Synthetic sleeper {k + 1}",
                                intake={"profile": b.profile, "seed": b.seed, **b.intake},
                                consent_scopes=list(b.scopes))
                s.add(client)
                s.flush()
                audit.append({"actor": "system", "action": "client.add", "subject": client.id,
                              "payload": {"scopes": list(b.scopes)}})
                nights = []
            else:  # a returning client: the consent on record and the nights so far decide tonight
                b.scopes = list(client.consent_scopes or [])
                nights = client_nights(s, client.id)
            tonight = plan_tonight(b.scopes, nights, b.program)
            if not tonight.run:
                raise StateError(f"Client '{b.client}' cannot have a night: " + "; ".join(tonight.reasons) + ".")
            if tonight.program is not b.program:
                b.program = tonight.program
                b.reasons = [*b.reasons, *({"choice": "tonight", "why": r} for r in tonight.reasons)]
            audit.append({"actor": "system", "action": "night.plan", "subject": b.session,
                          "payload": {"client": client.id, "scopes": list(b.scopes), **tonight.to_dict()}})
            prog_id = None
            if b.program is not None:
                body = b.program.model_dump(mode="json", exclude_none=True)
                text = json.dumps(body, sort_keys=True)
                row_p = DreamscapeProgram(client_id=client.id, name=b.program.name, body=body,
                                          sha256=hashlib.sha256(text.encode()).hexdigest(),
                                          curator_reasons=b.reasons)
                s.add(row_p)
                s.flush()
                prog_id = row_p.id
            row = NightSession(id=b.session, client_id=client.id, bed=f"bed-{k + 1}", program_id=prog_id,
                               mode=SessionMode.RECORD_ONLY if b.program is None else SessionMode.STIMULATION,
                               state=SessionState.PREPARED, source=f"synthetic:{b.profile}:{b.seed}")
            row.transition_to(SessionState.CALIBRATING)
            row.transition_to(SessionState.RUNNING)
            s.add(row)
        append_many(s, audit)


def decision_rows(journals: Iterable[Path], names: set[str]) -> Iterator[list[dict[str, Any]]]:
    """The decisions of sessions ``names`` journaled in ``journals`` (folders), in batches of database rows."""
    from nexus.store.recording import line_may_hold

    batch: list[dict[str, Any]] = []
    for j in journals:
        path = Path(j) / "records.jsonl"
        if not path.is_file():
            continue
        with path.open("rb") as fh:
            for line in fh:
                if not line_may_hold(line, kind="decision"):
                    continue
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if r["session"] not in names:
                    continue
                batch.append({"session_id": r["session"], "t_s": r["onset"], "kind": r["description"][:32],
                              "command": r.get("command") or {}, "inputs": r.get("inputs") or {},
                              "reason": r.get("reason", "")})
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
    if batch:
        yield batch


def store_decisions(s: Any, journals: Iterable[Path], names: set[str]) -> int:
    """Insert the journaled decisions of ``names`` and audit each one, in the caller's transaction ``s``.

    Returns how many decisions were stored. The audit entry of a decision carries its time on the
    session's clock (``t``, s), command, inputs and reason.
    """
    from sqlalchemy import insert

    from nexus.store.audit import append_many
    from nexus.store.models import DecisionRow

    n = 0
    for batch in decision_rows(journals, names):
        s.execute(insert(DecisionRow), batch)
        append_many(s, [{"actor": "system", "action": f"decision.{r['kind']}", "subject": r["session_id"],
                         "payload": {"t": r["t_s"], "command": r["command"], "inputs": r["inputs"],
                                     "reason": r["reason"]}} for r in batch])
        n += len(batch)
    return n
