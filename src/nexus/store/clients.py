"""Client data rights in the database: enrolment, consent, dream journal, export and erasure.

Export follows GDPR Art. 20, erasure Art. 17; each is authorised through the policy table and written to the
audit log in the same transaction.

The audit log never holds content: consent changes keep the scope names, the journal keeps only that an entry was
written, an erasure keeps counts. After an erasure the client row stays, with every personal field emptied and
``erased_at`` set, so the audit entries that name its (random, pseudonymous) id still verify.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from nexus.core.checks import plural
from nexus.core.errors import InvalidInputError, StateError
from nexus.core.lifecycle import SessionState
from nexus.guard.chain import canonical_ts
from nexus.guard.consent import ConsentChange, Scope, change_scopes, parse_scopes
from nexus.guard.dependency import NightSummary, dependency_index, natural_night_due, weaning_plan
from nexus.guard.policy import SYSTEM, Action, Principal
from nexus.store.access import check_access, get_client
from nexus.store.audit import append, entries, entry_dict
from nexus.store.db import Store
from nexus.store.models import (
    ApiToken,
    Client,
    DecisionRow,
    DreamscapeProgram,
    JournalEntry,
    NightSession,
    SessionMode,
    utcnow,
)

ACTIVE = (SessionState.CALIBRATING, SessionState.RUNNING, SessionState.EXTRACTING)
STIMULI = ("click", "cue")
EXPORT_FORMAT = "bedtime-nexus-client-export/1"


def add_client(s: Session, code: str, *, display_name: str | None = None, birth_year: int | None = None,
               sex: str | None = None, scopes: list[str] | None = None, actor: str = SYSTEM.actor) -> Client:
    """Enrol a client with a pseudonymous ``code`` (what staff see) and initial consent scopes; audited."""
    code = code.strip()
    if not code or len(code) > 64 or not code.isprintable():
        raise InvalidInputError(f"Invalid client code {code!r}: give 1-64 printable characters, e.g. C-0042.")
    if s.scalars(select(Client).where(Client.code == code)).first() is not None:
        raise InvalidInputError(f"A client with code '{code}' exists already: choose another code.")
    granted = change_scopes([], grant=scopes or []).after
    c = Client(code=code, display_name=display_name, birth_year=birth_year, sex=sex, consent_scopes=granted)
    s.add(c)
    s.flush()
    append(s, actor, "client.add", c.id, {"scopes": granted})
    return c


def set_consent(store: Store, principal: Principal, client: str, *, grant: list[str] | None = None,
                revoke: list[str] | None = None) -> ConsentChange:
    """Grant and revoke consent scopes; effective for the next step of a running session. Audited."""
    with store.session() as s:
        c = get_client(s, client)
        cid, erased = c.id, c.erased_at
    if erased is not None:
        raise StateError(f"Client '{client}' was erased; there is no consent to change.")
    check_access(store, principal, Action.CONSENT_CHANGE, cid)
    with store.session() as s:
        c = get_client(s, cid)
        ch = change_scopes(c.consent_scopes or [], grant=grant or [], revoke=revoke or [])
        c.consent_scopes = ch.after
        append(s, principal.actor, "consent.change", c.id,
               {"granted": ch.granted, "revoked": ch.revoked, "after": ch.after})
    return ch


def client_scopes(s: Session, client: str) -> list[str]:
    """The client's consent scopes now (what the facility reads at each step)."""
    return [x.value for x in parse_scopes(get_client(s, client).consent_scopes or [])]


def add_journal_entry(store: Store, principal: Principal, client: str, text: str, *, mood: str | None = None,
                      tags: list[str] | None = None, session_id: str | None = None) -> int:
    """A client's morning dream-journal entry (only the client may write it); the audit keeps no content."""
    if not text.strip():
        raise InvalidInputError("Empty journal entry: write what you remember of the night.")
    if "\x00" in text:
        raise InvalidInputError("The journal entry contains a NUL character: remove it.")
    with store.session() as s:
        cid = get_client(s, client).id
    check_access(store, principal, Action.JOURNAL_WRITE, cid)
    with store.session() as s:
        e = JournalEntry(client_id=cid, session_id=session_id, text=text, mood=mood, tags=list(tags or []))
        s.add(e)
        s.flush()
        append(s, principal.actor, "journal.write", cid, {"entry": e.id})
        return e.id


def read_journal(store: Store, principal: Principal, client: str) -> list[dict[str, Any]]:
    """The client's journal, for the client only (refused and audited for anyone else)."""
    with store.session() as s:
        cid = get_client(s, client).id
    check_access(store, principal, Action.JOURNAL_READ, cid)
    with store.session() as s:
        return [_journal_dict(e) for e in s.scalars(
            select(JournalEntry).where(JournalEntry.client_id == cid).order_by(JournalEntry.written_at))]


def _journal_dict(e: JournalEntry) -> dict[str, Any]:
    return {"id": e.id, "written_at": canonical_ts(e.written_at), "session": e.session_id, "text": e.text,
            "mood": e.mood, "tags": e.tags}


def client_nights(s: Session, client_id: str) -> list[NightSummary]:
    """Night summaries of a client's ended sessions (for the dependency index)."""
    from nexus.staging.stats import sleep_statistics

    out = []
    sessions = s.scalars(select(NightSession).where(NightSession.client_id == client_id,
                                                    NightSession.state == SessionState.ENDED))
    for n in sessions:
        stimuli = len(s.scalars(select(DecisionRow.id).where(DecisionRow.session_id == n.id,
                                                             DecisionRow.kind.in_(STIMULI))).all())
        se = None
        if n.hypnograms:
            h = n.hypnograms[-1]
            try:
                se = float(sleep_statistics(h.stages, h.epoch_s)["SE"])
            except (InvalidInputError, KeyError):
                se = None
        night = (n.started_at or n.created_at).date().isoformat()
        out.append(NightSummary(night, n.mode.value == "stimulation" and stimuli > 0, stimuli, se))
    return out


def client_view(store: Store, principal: Principal, client: str) -> dict[str, Any]:
    """What ``nexus client show`` prints: consent, dependency index, natural-night schedule, weaning plan."""
    with store.session() as s:
        c = get_client(s, client)
        cid = c.id
    check_access(store, principal, Action.CONSENT_READ, cid)
    with store.session() as s:
        c = get_client(s, cid)
        nights = client_nights(s, cid)
        scopes = list(c.consent_scopes or [])
        due, why = natural_night_due(nights, opt_out=Scope.OPT_OUT_NATURAL_NIGHTS.value in scopes)
        tonight = s.scalars(select(NightSession).where(NightSession.client_id == cid,
                                                       NightSession.state.in_(ACTIVE))).first()
        if tonight is not None:  # under way: tonight is what it was started as, and it is one of the nights
            due = tonight.mode is SessionMode.RECORD_ONLY
            why = f"under way; {plural(len(nights) + 1, 'night')} so far, tonight's included"
        return {
            "id": c.id, "code": c.code, "erased_at": c.erased_at.isoformat() if c.erased_at else None,
            "consent": scopes,
            "dependency": dependency_index(nights).to_dict(),
            "natural_night_tonight": {"due": due, "reason": why},
            "weaning_plan": weaning_plan(nights).to_dict(),
        }


def _recording_files(data_dir: Path, sessions: list[NightSession], ids: list[str]) -> list[Path]:
    files: set[Path] = set()
    for n in sessions:
        if n.recording_path:
            p = Path(n.recording_path)
            p = p if p.is_absolute() else data_dir / p
            if p.is_file():
                files.add(p)
    if data_dir.is_dir():
        for p in data_dir.rglob("*"):
            if p.is_file() and any(i in p.name for i in ids):
                files.add(p)
    return sorted(files)


def _session_dict(n: NightSession) -> dict[str, Any]:
    def ts(x: datetime | None) -> str | None:
        return canonical_ts(x) if x is not None else None

    return {"id": n.id, "bed": n.bed, "mode": n.mode.value, "state": n.state.value, "source": n.source,
            "program": n.program_id, "created_at": ts(n.created_at), "started_at": ts(n.started_at),
            "ended_at": ts(n.ended_at), "end_reason": n.end_reason,
            "glitches": [{"onset_s": g.onset_s, "duration_s": g.duration_s, "category": g.category.value,
                          "kind": g.kind, "priority": g.priority.value, "message": g.message} for g in n.glitches],
            "decisions": [{"t_s": d.t_s, "kind": d.kind, "command": d.command, "inputs": d.inputs,
                           "reason": d.reason} for d in n.decisions]}


def export_client(store: Store, principal: Principal, client: str, out: str | Path, *,
                  data_dir: str | Path | None = None) -> dict[str, Any]:
    """Write everything about a client to a zip (GDPR Art. 20); return its manifest.

    The zip holds JSON (client, sessions with glitches and decisions, programs, journal, dependency index, audit
    entries about the client), hypnograms and events as TSV, recordings as EDF+, and ``manifest.json`` listing
    every file with its size and SHA-256.
    """
    from nexus.formats.hypnogram import write_hypnogram

    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise InvalidInputError(f"Export file '{out}' must end in .zip, e.g. -o client.zip.")
    if not out.parent.exists():
        raise InvalidInputError(f"The folder of '{out}' does not exist: create it or write elsewhere.")
    with store.session() as s:
        cid = get_client(s, client).id
    check_access(store, principal, Action.CLIENT_EXPORT, cid)
    ddir = Path(data_dir) if data_dir is not None else None
    files: dict[str, bytes] = {}
    with store.session() as s:
        c = get_client(s, cid)
        sessions = list(s.scalars(select(NightSession).where(NightSession.client_id == cid)
                                  .order_by(NightSession.created_at)))
        sids = [n.id for n in sessions]
        files["client.json"] = _json({
            "id": c.id, "code": c.code, "display_name": c.display_name, "birth_year": c.birth_year, "sex": c.sex,
            "intake": c.intake, "consent_scopes": c.consent_scopes, "created_at": canonical_ts(c.created_at),
            "erased_at": canonical_ts(c.erased_at) if c.erased_at else None})
        files["sessions.json"] = _json([_session_dict(n) for n in sessions])
        files["programs.json"] = _json([{"id": p.id, "name": p.name, "version": p.version, "body": p.body,
                                         "sha256": p.sha256, "curator_reasons": p.curator_reasons}
                                        for p in s.scalars(select(DreamscapeProgram)
                                                           .where(DreamscapeProgram.client_id == cid))])
        files["journal.json"] = _json([_journal_dict(e) for e in s.scalars(
            select(JournalEntry).where(JournalEntry.client_id == cid).order_by(JournalEntry.written_at))])
        files["dependency.json"] = _json(dependency_index(client_nights(s, cid)).to_dict())
        with tempfile.TemporaryDirectory() as tmp:
            for n in sessions:
                for i, h in enumerate(n.hypnograms):
                    p = write_hypnogram(Path(tmp) / f"{n.id}-{i}.tsv", h.stages, h.epoch_s)
                    files[f"hypnograms/{n.id}-{h.kind}-{i}.tsv"] = p.read_bytes()
                if n.events:
                    rows = ["onset\tduration\tdescription\tchannel"] + [
                        f"{e.onset_s:.3f}\t{e.duration_s:.3f}\t{e.description}\t{e.channel or ''}" for e in n.events]
                    files[f"events/{n.id}.tsv"] = ("\n".join(rows) + "\n").encode()
        if ddir is not None:
            for p in _recording_files(ddir, sessions, sids):
                if p.suffix.lower() in (".edf", ".bdf"):
                    files[f"recordings/{p.name}"] = p.read_bytes()
        audit = entries(s, subjects=[cid, *sids])
        files["audit.json"] = _json([entry_dict(e) for e in audit])
        manifest = {"format": EXPORT_FORMAT, "client": cid, "created_at": canonical_ts(utcnow()),
                    "files": {name: {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                              for name, b in sorted(files.items())}}
        tmp_out = out.with_suffix(".zip.part")
        with zipfile.ZipFile(tmp_out, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", _json(manifest))
            for name, b in sorted(files.items()):
                z.writestr(name, b)
        tmp_out.replace(out)
        append(s, principal.actor, "client.export", cid, {"files": len(files), "sessions": len(sids)})
    return manifest


def erase_client(store: Store, principal: Principal, client: str, *,
                 data_dir: str | Path | None = None) -> dict[str, int]:
    """Erase a client (GDPR Art. 17); return what was erased, as counts.

    Gone: sessions with their hypnograms, events, glitches and decisions, programs, journal, tokens, recording
    files and every personal field. The audit log keeps only the fact and the counts. Refused while a session is
    active (extract it first).
    """
    with store.session() as s:
        c = get_client(s, client)
        cid, erased = c.id, c.erased_at
    if erased is not None:
        raise StateError(f"Client '{client}' was already erased on {erased.date()}; nothing to do.")
    check_access(store, principal, Action.CLIENT_ERASE, cid)
    ddir = Path(data_dir) if data_dir is not None else None
    with store.session() as s:
        c = get_client(s, cid)
        sessions = list(s.scalars(select(NightSession).where(NightSession.client_id == cid)))
        active = [n for n in sessions if n.state in ACTIVE]
        if active:
            append(s, principal.actor, "client.erase.refused", cid, {"active_sessions": [n.id for n in active]})
            refused = ", ".join(f"{n.id} ({n.state.value})" for n in active)
    if active:
        raise StateError(f"Client '{client}' has an active session ({refused}): extract it first "
                         "('nexus extract SESSION'), then erase.")
    with store.session() as s:
        c = get_client(s, cid)
        sessions = list(s.scalars(select(NightSession).where(NightSession.client_id == cid)))
        sids = [n.id for n in sessions]
        paths = _recording_files(ddir, sessions, [cid, *sids]) if ddir is not None else []
        counts = {"sessions": len(sessions),
                  "journal_entries": len(s.scalars(select(JournalEntry.id).where(JournalEntry.client_id == cid))
                                         .all()),
                  "programs": len(c.programs), "files": len(paths)}
        for n in sessions:
            s.delete(n)
        s.execute(delete(JournalEntry).where(JournalEntry.client_id == cid))
        s.execute(delete(ApiToken).where(ApiToken.client_id == cid))
        for prog in list(c.programs):
            s.delete(prog)
        c.display_name = c.birth_year = c.sex = None
        c.password_hash = c.invite_hash = c.invite_expires_at = c.locked_until = None  # no portal login left
        c.intake, c.consent_scopes = {}, []
        c.code = f"erased-{cid}"[:64]
        c.erased_at = utcnow()
        append(s, principal.actor, "client.erase", cid, counts)
        s.flush()
        # files last: if the database part fails, nothing was deleted from disk
        for p in paths:
            p.unlink(missing_ok=True)
    return counts


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def psyche_glitches(store: Store, principal: Principal, client: str) -> list[dict[str, Any]]:
    """A client's psyche glitches (distress, nightmares): the client, or staff when ``psyche_monitoring`` is granted."""
    from nexus.core.glitches import GlitchCategory
    from nexus.store.models import GlitchRow

    with store.session() as s:
        cid = get_client(s, client).id
    check_access(store, principal, Action.PSYCHE_READ, cid)
    with store.session() as s:
        rows = s.scalars(select(GlitchRow).join(NightSession).where(
            NightSession.client_id == cid, GlitchRow.category == GlitchCategory.PSYCHE).order_by(GlitchRow.id))
        return [{"session": g.session_id, "onset_s": g.onset_s, "duration_s": g.duration_s, "kind": g.kind,
                 "priority": g.priority.value, "message": g.message} for g in rows]


def research_export(store: Store, principal: Principal, out: str | Path, *, key: str) -> dict[str, Any]:
    """De-identified nights of every client who granted ``research`` consent, as a zip; return its manifest.

    Each client appears under a pseudonym (HMAC of their id with ``key``), with hypnograms as TSV and per-night
    mode, stimuli and sleep efficiency. No personal field, journal, psyche glitch or raw signal leaves. Clients
    without research consent are skipped (counted in the manifest); each included one is audited.
    """
    import hmac

    from nexus.formats.hypnogram import write_hypnogram
    from nexus.guard.policy import authorize

    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise InvalidInputError(f"Export file '{out}' must end in .zip, e.g. -o research.zip.")
    if not authorize(principal, Action.RESEARCH_EXPORT, client_id="any", client_scopes=[Scope.RESEARCH.value]).allowed:
        check_access(store, principal, Action.RESEARCH_EXPORT)  # audits and raises the refusal
    files: dict[str, bytes] = {}
    included, skipped = 0, 0
    with store.session() as s:
        clients = list(s.scalars(select(Client).where(Client.erased_at.is_(None)).order_by(Client.created_at)))
        consenting = [c.id for c in clients if Scope.RESEARCH.value in (c.consent_scopes or [])]
        skipped = len(clients) - len(consenting)
    for cid in consenting:
        check_access(store, principal, Action.RESEARCH_EXPORT, cid)
        pseudo = hmac.new(key.encode(), b"research:" + cid.encode(), hashlib.sha256).hexdigest()[:16]
        with store.session() as s, tempfile.TemporaryDirectory() as tmp:
            nights = []
            for i, n in enumerate(s.scalars(select(NightSession).where(NightSession.client_id == cid,
                                                                       NightSession.state == SessionState.ENDED)
                                            .order_by(NightSession.created_at))):
                stimuli = len(s.scalars(select(DecisionRow.id).where(DecisionRow.session_id == n.id,
                                                                     DecisionRow.kind.in_(STIMULI))).all())
                nights.append({"night": i + 1, "mode": n.mode.value, "stimuli": stimuli})
                for j, h in enumerate(n.hypnograms):
                    p = write_hypnogram(Path(tmp) / f"{i}-{j}.tsv", h.stages, h.epoch_s)
                    files[f"{pseudo}/night{i + 1:03d}-{h.kind}-{j}.tsv"] = p.read_bytes()
            files[f"{pseudo}/nights.json"] = _json(nights)
        included += 1
    listing = {k: {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()} for k, b in sorted(files.items())}
    manifest = {"format": "bedtime-nexus-research-export/1", "clients": included,
                "skipped_without_consent": skipped, "files": listing}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", _json(manifest))
        for k, b in sorted(files.items()):
            z.writestr(k, b)
    with store.session() as s:
        append(s, principal.actor, "research.export", None, {"clients": included, "skipped": skipped})
    return manifest
