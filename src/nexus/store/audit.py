"""The audit log in the database: append (one or many, in the caller's transaction), verify, checkpoints.

Entries are only ever inserted (FHIR AuditEvent: never updated or deleted). Appends lock the one row of
``audit_head`` first (``UPDATE`` takes a row lock on PostgreSQL and the write lock on SQLite), so concurrent
writers get consecutive ``seq`` numbers and link to each other's entries; the lock is held until the caller's
transaction ends, which is what makes an entry part of the same transaction as the change it records.

Typical use (the facility, after a step)::

    from nexus.guard.chain import AuditRecord
    from nexus.store.audit import append_many, decision_records

    with store.session() as s:
        s.add_all(decision_rows)                       # what is recorded ...
        append_many(s, decision_records(session_id, decisions))   # ... and its audit, one transaction
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from nexus.core.errors import StorageError
from nexus.guard.chain import (
    GENESIS,
    AuditRecord,
    Checkpoint,
    VerifyReport,
    check_record,
    entry_hash,
    key_id,
    normalise_payload,
    sign_checkpoint,
    verify_chain,
)
from nexus.store.db import Store
from nexus.store.models import AuditCheckpoint, AuditEntry, AuditHead, utcnow

_HEAD_ID = 1


def _lock_head(s: Session) -> tuple[int, str]:
    """Lock the head row for this transaction and return ``(seq, hash)`` of the last entry."""
    try:
        res = s.execute(update(AuditHead).where(AuditHead.id == _HEAD_ID).values(seq=AuditHead.seq)
                        .execution_options(synchronize_session=False))
    except OperationalError as exc:
        raise StorageError(f"The audit log is locked by another writer for too long ({exc.orig}). Retry.") from None
    if res.rowcount == 0:  # type: ignore[attr-defined]
        # a database made without migrations: start the head from the entries there are
        last = s.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
        seq, h = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        s.execute(insert(AuditHead).values(id=_HEAD_ID, seq=seq, hash=h))
        return seq, h
    row = s.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == _HEAD_ID)).one()
    return int(row[0]), str(row[1])


def append_many(s: Session, records: Iterable[AuditRecord | Mapping[str, Any]]) -> list[int]:
    """Append records to the chain in the caller's transaction; return their ``seq`` numbers.

    Parameters
    ----------
    s : Session
        An open database session (``with store.session() as s``); the entries commit or roll back with it.
    records : iterable of AuditRecord or dict
        Each with ``actor``, ``action`` and optionally ``subject`` and ``payload``.
    """
    recs = [check_record(r if isinstance(r, AuditRecord) else _record(r)) for r in records]
    if not recs:
        return []
    seq, prev = _lock_head(s)
    rows: list[dict[str, Any]] = []
    for r in recs:
        seq += 1
        ts = utcnow()
        payload = normalise_payload(r.payload)
        h = entry_hash(seq, ts, r.actor, r.action, r.subject, payload, prev)
        rows.append({"seq": seq, "ts": ts, "actor": r.actor, "action": r.action, "subject": r.subject,
                     "payload": payload, "prev_hash": prev, "hash": h})
        prev = h
    s.execute(insert(AuditEntry), rows)
    s.execute(update(AuditHead).where(AuditHead.id == _HEAD_ID).values(seq=seq, hash=prev)
              .execution_options(synchronize_session=False))
    return [int(r["seq"]) for r in rows]


def append(
    s: Session, actor: str, action: str, subject: str | None = None, payload: Mapping[str, Any] | None = None
) -> int:
    """Append one entry in the caller's transaction; return its ``seq``."""
    return append_many(s, [AuditRecord(actor, action, subject, dict(payload or {}))])[0]


def _record(d: Mapping[str, Any]) -> AuditRecord:
    from nexus.core.errors import InvalidInputError

    missing = [k for k in ("actor", "action") if not d.get(k)]
    if missing:
        raise InvalidInputError(f"Audit record {dict(d)!r} has no {', '.join(missing)}: give actor and action.")
    return AuditRecord(str(d["actor"]), str(d["action"]), d.get("subject"), dict(d.get("payload") or {}))


def decision_records(
    session_id: str, decisions: Iterable[Any], *, actor: str = "system"
) -> list[AuditRecord]:
    """Audit records of a controller's decisions (``Decision`` objects or their ``to_dict()``).

    Each becomes ``decision.<kind>`` about ``session_id``, with the time, command, inputs and reason, so an
    auditor can see for any stimulus what caused it.
    """
    out = []
    for d in decisions:
        dd = d.to_dict() if hasattr(d, "to_dict") else dict(d)
        out.append(AuditRecord(actor, f"decision.{dd.get('kind', 'unknown')}", session_id,
                               {k: dd.get(k) for k in ("t", "command", "inputs", "reason")}))
    return out


def iter_entries(s: Session, *, batch: int = 2000) -> Iterator[AuditEntry]:
    """All entries in ``seq`` order, read in batches (the cursor is closed even when the reader stops early)."""
    result = s.scalars(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch))
    try:
        yield from result
    finally:
        result.close()


def checkpoints(s: Session) -> list[Checkpoint]:
    """The signed checkpoints kept in the database."""
    return [Checkpoint(c.size, c.head_hash, c.ts, c.key_id, c.signature)
            for c in s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.size))]


def checkpoint(s: Session, key: str) -> Checkpoint:
    """Sign the current end of the chain (HMAC with ``key``) and keep the checkpoint; return it.

    The chain's last entry is read under the head lock; signing the same size twice returns the existing one.
    """
    _lock_head(s)
    last = s.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    size, head = (int(last[0]), str(last[1])) if last else (0, GENESIS)
    have = s.scalars(select(AuditCheckpoint).where(AuditCheckpoint.size == size)).first()
    if have is not None:
        return Checkpoint(have.size, have.head_hash, have.ts, have.key_id, have.signature)
    ts = utcnow()
    cp = Checkpoint(size, head, ts, key_id(key), sign_checkpoint(key, size, head, ts))
    s.add(AuditCheckpoint(size=size, head_hash=head, ts=ts, key_id=cp.key_id, signature=cp.signature))
    s.flush()
    return cp


def verify(store: Store, key: str | None = None, extra_checkpoints: Sequence[Checkpoint] = ()) -> VerifyReport:
    """Verify the whole chain, its checkpoints (also any kept outside the database) and its head."""
    with store.session() as s:
        head_row = s.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == _HEAD_ID)).first()
        head = (int(head_row[0]), str(head_row[1])) if head_row else None
        cps = checkpoints(s) + list(extra_checkpoints)
        rows = iter_entries(s)
        try:
            return verify_chain(rows, cps, key=key, head=head)
        finally:
            rows.close()  # type: ignore[attr-defined]


def entries(
    s: Session,
    *,
    subjects: Sequence[str] | None = None,
    actor: str | None = None,
    action_prefix: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[AuditEntry]:
    """Entries filtered by subject(s), actor, action prefix and time, oldest first."""
    q = select(AuditEntry).order_by(AuditEntry.seq)
    if subjects is not None:
        q = q.where(AuditEntry.subject.in_(list(subjects)))
    if actor is not None:
        q = q.where(AuditEntry.actor == actor)
    if action_prefix is not None:
        q = q.where(AuditEntry.action.startswith(action_prefix))
    if since is not None:
        q = q.where(AuditEntry.ts >= since)
    if limit is not None:
        q = q.limit(limit)
    return list(s.scalars(q))


def count(s: Session) -> int:
    """Number of entries."""
    return int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def entry_dict(e: AuditEntry) -> dict[str, Any]:
    """JSON form of an entry."""
    from nexus.guard.chain import canonical_ts

    return {"seq": e.seq, "ts": canonical_ts(e.ts), "actor": e.actor, "action": e.action, "subject": e.subject,
            "payload": e.payload, "prev_hash": e.prev_hash, "hash": e.hash}
