r"""A record-only facility: real beds (LSL, BrainFlow, EDF replay, synthetic) through the live loop.

:func:`record` runs the same :class:`~nexus.facility.supervisor.Supervisor` and
:class:`~nexus.facility.pipeline.Lane`\\ s as a stimulating facility, with natural nights only (no
dreamscape loop, no sound path): every bed is checked at the edge, journaled, staged and watched for
glitches (``analyze=True``), and written at the end as one EDF+ per bed with its session row.

* Beds join when their device appears (:mod:`nexus.facility.floor`), also late in the night.
* A stream that vanishes raises a ``dropout`` glitch, and ``stream_returned`` when it is back; the
  missing stretch is a gap in the EDF+ (``gap`` annotation, 0 µV).
* LSL clocks: the inlet's time corrections are applied, every offset is written to
  ``<bed>.clock.tsv`` beside the EDF+, offset and drift go into the session's summary, and a clock
  jump raises a ``clock_jump`` glitch (the samples are re-anchored, not cut).
* Files: ``OUT/journal`` (crash-safe while recording), ``OUT/<bed>.edf`` (+ events and clock TSVs),
  ``OUT/record.json`` (what each bed recorded).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexus.core.checks import check_number
from nexus.core.clock import Clock, RealClock, ScaledClock
from nexus.core.errors import StorageError
from nexus.core.log import logger
from nexus.facility.floor import BedMap, BedOffer, Floor, make_floor
from nexus.facility.heap import settle_heap
from nexus.facility.supervisor import Supervisor
from nexus.sources.spec import SourceSpec
from nexus.store.recording import RecordingJournal

#: how long a lane waits for late samples, by source kind, in s (network devices jitter)
DELAY_S = {"lsl": 0.5, "brainflow": 0.3, "replay": 0.0, "synthetic": 0.0}


@dataclass
class BedRecord:
    """One bed of a recording run."""

    session: str
    label: str
    source: str
    client: str | None
    bed: str | None
    channels: tuple[str, ...]
    fs: float
    joined_wall: float
    first_sample_wall: float | None = None
    edf: str | None = None
    samples: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    clock: dict[str, Any] = field(default_factory=dict)
    glitches: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        d = dict(self.__dict__)
        d["channels"] = list(self.channels)
        return d


@dataclass
class RecordResult:
    """What :func:`record` did."""

    run_id: str
    spec: str
    seconds: float
    beds: list[BedRecord]
    refused: list[str]
    out: Path

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (written to ``OUT/record.json``)."""
        return {"run_id": self.run_id, "source": self.spec, "seconds": self.seconds,
                "beds": [b.as_dict() for b in self.beds], "refused": self.refused, "out": str(self.out)}


def record(
    spec: SourceSpec,
    seconds: float,
    out: str | Path,
    *,
    store: Any = None,
    bed_map: BedMap | None = None,
    analyze: bool = True,
    tick_s: float = 0.1,
    dropout_s: float = 2.0,
    clock: Clock | None = None,
    on_line: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> RecordResult:
    """Record every bed of ``spec`` for ``seconds`` of (source) time; one EDF+ per bed in ``out``.

    Parameters
    ----------
    spec : SourceSpec
        Where the beds come from (:func:`~nexus.sources.spec.parse_source`).
    seconds : float
        Length of the recording, in s of the facility clock (a replay at ``speed=X`` takes seconds/X).
    out : path-like
        Output folder (created; must not hold an earlier recording's journal).
    store : nexus.store.db.Store, optional
        Facility database: clients (unassigned beds get a placeholder client), record-only session
        rows (running while they record, ended with their EDF+ and summary), glitch rows.
    bed_map : BedMap, optional
        Stream name or source id → client.
    analyze : bool
        Run the live analyzers (stager, event detectors, glitch monitor); off: raw recording only.
    tick_s : float
        Tick of the loop, in s.
    dropout_s : float
        A bed without samples for this long raises a ``dropout`` glitch, in s.
    clock : Clock, optional
        Default: real time, or ``speed`` times faster for a replay.
    on_line : callable, optional
        Called with each line worth telling the user (beds joining, refusals).
    stop : threading.Event, optional
        Set from another thread to end the recording early (everything recorded is written).
    """
    check_number("seconds", seconds, gt=0, unit="s")
    root = Path(out)
    if (root / "journal" / "sessions.jsonl").exists():
        raise StorageError(f"'{root}' already holds a recording journal. Choose a new --out folder.")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"Cannot create '{root}': {exc.strerror}. Choose a writable --out folder.") from None
    say = on_line or (lambda line: logger.info("%s", line))
    if clock is None:
        clock = ScaledClock(spec.speed) if spec.kind == "replay" else RealClock()
    run_id = secrets.token_hex(4)
    journal = RecordingJournal(root / "journal", background_sync=True)
    from nexus.facility.analyzers import default_analyzers

    speed = float(getattr(clock, "speed", 1.0))
    tick = tick_s * speed  # ticks every tick_s of real time, in clock seconds
    analyzers = default_analyzers(dreamscape=False, block_s=tick) if analyze else []
    sup = Supervisor(clock, journal=journal, analyzers=analyzers, delay_s=DELAY_S[spec.kind] * speed,
                     dropout_s=dropout_s * speed, retry_s=2.0 * speed, lane_capacity=64,
                     buffer_s=max(8.0, 4 * tick))
    beds: dict[str, BedRecord] = {}
    floor: Floor | None = None
    if store is not None:
        from nexus.facility.orders import register_run

        register_run(store, run_id, [root / "journal"])
    try:
        if spec.kind == "synthetic":
            _add_synthetic(sup, spec, run_id, beds, store)
        else:
            floor = make_floor(spec, clock, bed_map)
            floor.start()
        try:
            _loop(sup, floor, seconds, tick, run_id, beds, store, say, stop)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop early, keep and write everything recorded
            say("Stopped early: writing what was recorded.")
    finally:
        if floor is not None:
            floor.close()
        _finish_beds(sup, beds)
        sup.close()
        journal.close()
        if spec.kind == "lsl":  # every inlet closed and destroyed in its reader thread, within a bound
            from nexus.sources.lsl_reader import wait_readers

            wait_readers(3.0)
    paths = journal.finalize(root, store=None, clients={b.session: b.client for b in beds.values() if b.client})
    for b in beds.values():
        if b.session in paths:
            b.edf = str(paths[b.session])
        _write_clock_tsv(root, b, sup)
    result = RecordResult(run_id, spec.text, seconds, list(beds.values()),
                          list(floor.refused) if floor is not None else [], root)
    if store is not None:
        _end_rows(store, result, sup)
        from nexus.facility.orders import end_run

        end_run(store, run_id, "recording over")
    (root / "record.json").write_text(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
    return result


def _loop(sup: Supervisor, floor: Floor | None, seconds: float, tick_s: float, run_id: str,
          beds: dict[str, BedRecord], store: Any, say: Callable[[str], None], stop: threading.Event | None) -> None:
    clock = sup.clock

    def take() -> None:
        if floor is not None:
            offers, refused = floor.poll()
            for line in refused:
                say(f"Refused: {line}")
            for offer in offers:
                _join(sup, offer, run_id, beds, store, say)

    take()  # devices there from the start (a replay's files) join before the clock starts
    sup.settle()  # their lanes built and warmed up now; later layouts are built beside the running loop
    settle_heap()  # no full garbage collection of the set-up's objects inside a tick (see facility/heap.py)
    t_end = clock.now() + seconds
    nxt = clock.now()
    while True:
        nxt = min(nxt + tick_s, t_end)
        clock.sleep_until(nxt)
        take()
        sup.step(due_at=nxt)
        _watch_beds(sup, beds)
        if nxt >= t_end - 1e-9 or _replayed(sup, floor) or (stop is not None and stop.is_set()):
            break


def _replayed(sup: Supervisor, floor: Floor | None) -> bool:
    """True when every bed is a replay that has handed out its whole recording, and all of it was processed."""
    if floor is None or floor.spec.kind != "replay" or not sup.sessions or len(sup.sessions) < floor.offered:
        return False
    for rt in sup.sessions.values():
        inner = getattr(rt.source, "inner", None)
        if not getattr(inner, "exhausted", False):
            return False
    return sup.lag_s() == 0.0 and all(ln.processed >= ln.high[ln.active].max(initial=0) for ln in sup.lanes)


def _join(sup: Supervisor, offer: BedOffer, run_id: str, beds: dict[str, BedRecord], store: Any,
          say: Callable[[str], None]) -> None:
    name = f"{offer.source.session}-{run_id}"
    n = 2
    while name in sup.sessions or name in sup.joining:  # two devices with the same label: numbered
        name = f"{offer.source.session}.{n}-{run_id}"
        n += 1
    offer.source.session = name
    scopes = None  # an unassigned bed has no client to ask: it records only
    if store is not None and offer.client is not None:
        scopes = _client_scopes(store, offer.client)
        if scopes is None:
            say(f"{offer.describe}: client {offer.client} of the bed map is not in the facility database; it records "
                "as an unassigned bed.")
            offer.client = None
    try:
        sup.add_session(name, offer.source, scopes=scopes)
    except Exception as exc:  # a source that fails to start (or a client without consent) stays out
        say(f"Refused: {offer.describe} could not start: {_one_line(str(exc))}")
        offer.source.close()
        return
    beds[name] = BedRecord(name, offer.label, offer.describe, offer.client, offer.bed, tuple(offer.source.channels),
                           float(offer.source.fs), time.time())
    if store is not None:
        _start_row(store, beds[name], run_id)
    who = f"client {offer.client}" if offer.client else "unassigned, record only"
    say(f"Bed {name}: {offer.describe}, {len(offer.source.channels)} channels at {offer.source.fs:g} Hz ({who}).")


def _add_synthetic(sup: Supervisor, spec: SourceSpec, run_id: str, beds: dict[str, BedRecord], store: Any) -> None:
    from nexus.sources.synthetic.fleet import SyntheticFleet

    fleet = SyntheticFleet("typical_adult", seeds=range(spec.count), hours=8.0)
    names = [f"synthetic-{k + 1}-{run_id}" for k in range(spec.count)]
    sup.add_fleet(fleet, names)
    now = time.time()
    for k, name in enumerate(names):
        beds[name] = BedRecord(name, f"synthetic-{k + 1}", f"synthetic:typical_adult:{k}", None, None,
                               tuple(fleet.channels), float(fleet.fs), now, now)
        if store is not None:
            _start_row(store, beds[name], run_id)


def _watch_beds(sup: Supervisor, beds: dict[str, BedRecord]) -> None:
    """After a tick: first samples seen, clock jumps raised as glitches (Python work only on change)."""
    for name, b in beds.items():
        rt = sup.sessions.get(name)
        if rt is None or rt.source is None:
            continue
        if b.first_sample_wall is None and rt.started:
            b.first_sample_wall = time.time()
        jumps = getattr(rt.source, "new_jumps", None)
        while jumps:
            j = jumps.pop(0)
            # the supervisor's own glitch path: rate rules, journal and listeners as for edge glitches
            sup._glitch(rt, j["t_s"], "clock_jump",
                        f"The device's clock jumped by {j['jump_s']:+.3f} s; its samples were re-anchored to "
                        "follow on without a gap.", force=True, evidence={"jump_s": j["jump_s"]})


def _finish_beds(sup: Supervisor, beds: dict[str, BedRecord]) -> None:
    for name, b in beds.items():
        rt = sup.sessions.get(name)
        if rt is None:
            continue
        if rt.state != "ended":
            b.counts = sup.session_counts(name)
        stats = getattr(rt.source, "clock_stats", None)
        if stats is not None:
            b.clock = stats()
    for g in sup.glitches:
        bed = beds.get(g.session)
        if bed is not None:
            bed.glitches[g.kind] = bed.glitches.get(g.kind, 0) + 1


def _write_clock_tsv(root: Path, b: BedRecord, sup: Supervisor) -> None:
    """``<bed>.clock.tsv``: every LSL clock offset measured (host time, offset, session time) and jump."""
    rt = sup.sessions.get(b.session)
    src = None if rt is None else rt.source
    offsets = getattr(src, "offsets", None)
    if not offsets and not getattr(src, "jumps", None):
        return
    lines = ["kind\thost_lsl_time_s\tsession_time_s\tvalue_s"]
    lines += [f"offset\t{h:.6f}\t{t:.4f}\t{o:.9f}" for h, o, t in offsets or []]
    lines += [f"jump\t\t{j['t_s']:.4f}\t{j['jump_s']:.6f}" for j in getattr(src, "jumps", [])]
    (root / f"{b.session}.clock.tsv").write_text("\n".join(lines) + "\n")


def _one_line(msg: str) -> str:
    return " ".join(msg.split())


# -- database rows ------------------------------------------------------------------------------
def _client_scopes(store: Any, code: str) -> list[str] | None:
    """The consent scopes of the client with ``code`` (None when the database has no such client)."""
    from sqlalchemy import select

    from nexus.store.models import Client

    with store.session() as s:
        client = s.scalars(select(Client).where(Client.code == code, Client.erased_at.is_(None))).first()
        return None if client is None else [str(x) for x in (client.consent_scopes or [])]


def _start_row(store: Any, b: BedRecord, run_id: str) -> None:
    from sqlalchemy import select

    from nexus.core.lifecycle import SessionState
    from nexus.store.models import Client, NightSession, SessionMode

    with store.session() as s:
        code = b.client or f"unassigned-{b.label}"[:64]
        client = s.scalars(select(Client).where(Client.code == code)).first()
        if client is None:
            client = Client(code=code, display_name=None if b.client else f"Unassigned bed ({b.source})",
                            intake={"unassigned": True} if not b.client else {})
            s.add(client)
            s.flush()
        row = NightSession(id=b.session, client_id=client.id, bed=b.bed or b.label[:32], program_id=None,
                           mode=SessionMode.RECORD_ONLY, state=SessionState.PREPARED, source=b.source[:200],
                           facility_run_id=run_id)
        row.transition_to(SessionState.CALIBRATING)
        row.transition_to(SessionState.RUNNING)
        s.add(row)


def _end_rows(store: Any, result: RecordResult, sup: Supervisor) -> None:
    from nexus.core.glitches import AlarmPriority, GlitchCategory
    from nexus.core.lifecycle import SessionState
    from nexus.store.models import GlitchRow, NightSession

    with store.session() as s:
        for b in result.beds:
            row = s.get(NightSession, b.session)
            if row is None:
                continue
            if row.state == SessionState.RUNNING:
                row.transition_to(SessionState.EXTRACTING)
            if row.state == SessionState.EXTRACTING:
                row.transition_to(SessionState.ENDED, reason="recording over")
            row.recording_path = b.edf
            row.summary = {"counts": b.counts, "clock": b.clock, "glitches": b.glitches, "channels": list(b.channels),
                           "fs": b.fs}
        for g in sup.glitches:
            if g.session in {b.session for b in result.beds}:
                s.add(GlitchRow(session_id=g.session, onset_s=g.onset_s, duration_s=g.duration_s or None,
                                category=GlitchCategory(g.category), kind=g.kind,
                                priority=AlarmPriority(g.priority), channel=g.channel, message=g.message))


def assign_bed(store: Any, session: str, client_code: str, *, actor: str = "technician") -> str:
    """Give an unassigned bed's session (a stream that matched no client) to its client; audited.

    The client must exist and have consented to ``recording``; the placeholder client of the bed is
    removed once it holds no session. Returns the client's id.

    Raises
    ------
    NotFoundError
        No such session or client.
    StateError
        The session already belongs to a client, or the client has not consented to recording.
    """
    from sqlalchemy import func, select

    from nexus.core.errors import NotFoundError, StateError
    from nexus.guard.consent import Scope, effective_scopes
    from nexus.store.audit import append
    from nexus.store.models import Client, NightSession

    with store.session() as s:
        row = s.get(NightSession, session)
        if row is None:
            raise NotFoundError(f"No session '{session}'. List them with 'nexus sessions'.")
        old = s.get(Client, row.client_id)
        if old is None or not (old.intake or {}).get("unassigned"):
            raise StateError(f"Session '{session}' already belongs to client {old.code if old else '?'}; only an "
                             "unassigned bed can be assigned.")
        client = s.scalars(select(Client).where(Client.code == client_code, Client.erased_at.is_(None))).first()
        if client is None:
            raise NotFoundError(f"No client '{client_code}'. Add the client first.")
        if Scope.RECORDING not in effective_scopes(client.consent_scopes or []):
            raise StateError(f"Client {client_code} has not consented to 'recording'; record the consent first "
                             "('nexus client consent').")
        row.client_id = client.id
        s.flush()
        if not s.scalar(select(func.count()).select_from(NightSession).where(NightSession.client_id == old.id)):
            s.delete(old)
        append(s, actor, "session.assigned", session, {"client": client_code, "was": old.code})
        return str(client.id)


__all__ = ["BedRecord", "RecordResult", "assign_bed", "record"]
