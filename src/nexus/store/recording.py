"""Durable recording of live sessions: an append-only journal, merged into one EDF+ per night.

While sessions run, everything is appended as it arrives to a folder (the *journal*):

``sessions.jsonl``
    one line per session: id, channels, sampling rate, units, start time.
``signals-<k>.seg``
    binary frames of raw signal, one frame per pipeline step and layout; a frame carries many
    sessions at once (``(sessions, channels, samples)`` float32), so a facility of 1000 beds
    writes one frame per step instead of 1000 small writes.
``records.jsonl``
    stages, events, glitches and decisions, one JSON object a line (NaN and infinities as ``null``).

Every write goes to the operating system at once (a killed process loses nothing written), and
the files are ``fsync``-ed at least every ``sync_s`` seconds (1 s by default), so a power cut
loses at most the last second. :func:`recover_journal` reads a journal back, stopping cleanly at
a torn last frame or line and skipping a damaged frame (its CRC or header does not match);
:meth:`RecordingJournal.finalize` (or :func:`merge_journal` after a crash) writes one EDF+ per
session with its stages, glitches, decisions and events as annotations (R-peaks, thousands an hour, only
in the ``<session>.events.tsv`` written beside it with every event), and fills the database row of each session.

Frame layout (little-endian): ``b"NXF1"``, n_sessions u32, n_channels u32, n_samples u32,
crc32 u32 of the body; body: session numbers i32[n_sessions], first-sample times f64[n_sessions]
(seconds since each session's start), samples f32[n_sessions × n_channels × n_samples].
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import struct
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import orjson

from nexus.core.errors import InvalidInputError, NotFoundError, StorageError
from nexus.core.log import logger
from nexus.formats.edf import Annotation, Signal, write_edf

MAGIC = b"NXF1"
_HEAD = struct.Struct("<4sIIII")
STAGE_TEXT = {0: "Sleep stage W", 1: "Sleep stage N1", 2: "Sleep stage N2", 3: "Sleep stage N3",
              4: "Sleep stage R", -1: "Sleep stage ?", -2: "Sleep stage ?"}


@dataclass
class SessionInfo:
    """What the journal knows of one session."""

    number: int
    session: str
    channels: tuple[str, ...]
    fs: float
    units: tuple[str, ...]
    start: str | None = None
    layout: int = 0
    client: str | None = None


@dataclass
class _Layout:
    number: int
    channels: int
    file: BinaryIO


class RecordingJournal:
    """Append-only, crash-safe journal of all sessions of one facility run.

    Parameters
    ----------
    folder : path-like
        Journal folder (created when missing; must be empty or a journal of the same run).
    sync_s : float
        Longest time between two ``fsync`` of the journal files, in seconds.
    background_sync : bool
        Run the periodic ``fsync`` on a helper thread instead of inside :meth:`flush` (a live
        loop's tick must not wait for the disk: an ``fsync`` of a second of a thousand beds takes
        milliseconds to tens of milliseconds). The data reach the OS in :meth:`flush` either way;
        a failed background ``fsync`` is raised by the next :meth:`flush` or :meth:`close`, and
        :meth:`close` waits for it and syncs once more.

    Examples
    --------
    >>> j = RecordingJournal(tmp / "night")                               # doctest: +SKIP
    >>> j.add_session("bed1", ("EEG C4-M1",), 256.0)                      # doctest: +SKIP
    >>> j.write_signals(["bed1"], [0.0], np.zeros((1, 1, 256)))           # doctest: +SKIP
    >>> j.write_record("bed1", "stage", 0.0, 30.0, stage=2)              # doctest: +SKIP
    >>> paths = j.finalize()                                              # doctest: +SKIP
    """

    def __init__(self, folder: str | Path, *, sync_s: float = 1.0, background_sync: bool = False) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot create the recording folder '{self.folder}': {exc.strerror}.") from None
        self.sync_s = float(sync_s)
        existing = _read_sessions(self.folder / "sessions.jsonl")
        self.sessions: dict[str, SessionInfo] = {s.session: s for s in existing}
        self._layouts: dict[tuple[tuple[str, ...], float], _Layout] = {}
        self._sess_file = open(self.folder / "sessions.jsonl", "ab")  # noqa: SIM115 - kept open for the run
        self._rec_file = open(self.folder / "records.jsonl", "ab")  # noqa: SIM115
        self._last_sync = time.monotonic()
        self._dirty = False
        self.closed = False
        self._syncer: Any = None
        self._frames: dict[tuple[str, ...], tuple[_Layout, bytes]] = {}  # session sets already looked up
        self._sync_job: Any = None  # the background fsync in flight
        if background_sync:
            from concurrent.futures import ThreadPoolExecutor

            self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexus-journal-sync")

    # -- writing ---------------------------------------------------------------------------------
    def add_session(
        self,
        session: str,
        channels: Sequence[str],
        fs: float,
        *,
        units: Sequence[str] | None = None,
        start: dt.datetime | None = None,
        sync: bool = True,
        client: str | None = None,
    ) -> SessionInfo:
        """Register a session (written and synced at once; a session registered twice is kept once).

        ``start`` is the night's start (default: now; a simulated night passes its own, e.g. lights-out) and
        ``client`` the client's pseudonymous code; both go into the EDF+ header when the journal is merged.

        With ``sync=False`` the line is written but not yet synced: register many sessions, then
        call :meth:`flush` with ``force=True`` once.
        """
        if session in self.sessions:
            return self.sessions[session]
        chans = tuple(channels)
        info = SessionInfo(
            number=len(self.sessions), session=session, channels=chans, fs=float(fs),
            units=tuple(units) if units else tuple(_unit_of(c) for c in chans),
            start=(start or dt.datetime.now(dt.UTC)).isoformat(), client=client,
        )
        self.sessions[session] = info
        info.layout = self._layout(info).number
        line = {k: v for k, v in info.__dict__.items() if k != "client" or v is not None}
        try:
            self._sess_file.write((json.dumps(line) + "\n").encode())
            self._sess_file.flush()
            if sync:
                os.fsync(self._sess_file.fileno())
        except OSError as exc:
            raise self._write_error(exc) from None
        return info

    def _layout(self, info: SessionInfo) -> _Layout:
        key = (info.channels, info.fs)
        lay = self._layouts.get(key)
        if lay is None:
            # numbered after the first session of this layout, so reopening a journal finds the same file
            number = min(s.number for s in self.sessions.values() if (s.channels, s.fs) == key)
            f = open(self.folder / f"signals-{number}.seg", "ab")  # noqa: SIM115 - kept open for the run
            lay = _Layout(number, len(info.channels), f)
            self._layouts[key] = lay
        return lay

    def write_signals(
        self, sessions: Sequence[str], t0: npt.ArrayLike, data: npt.ArrayLike
    ) -> None:
        """Append raw samples of several sessions of one layout as one frame.

        Parameters
        ----------
        sessions : sequence of str
            Registered sessions with the same channels and rate, one per row of ``data``.
        t0 : array_like, shape (n_sessions,)
            Time of each session's first sample in this block, in seconds since its start.
        data : array_like, shape (n_sessions, n_channels, n_samples)
            Samples in µV (stored as float32).
        """
        x = np.asarray(data, dtype="<f4")
        if x.ndim != 3 or x.shape[0] != len(sessions):
            raise InvalidInputError(f"write_signals needs (sessions, channels, samples), got {x.shape}.")
        if x.shape[0] == 0 or x.shape[2] == 0:
            return
        key = tuple(sessions)
        cached = self._frames.get(key)
        if cached is None:  # a new set of sessions: look them up once (a live lane writes the same set every tick)
            infos = [self.sessions[s] for s in sessions]
            lay = self._layout(infos[0])
            if any(i.layout != infos[0].layout for i in infos):
                raise InvalidInputError("write_signals got sessions of different channel layouts in one frame.")
            numbers = np.fromiter((i.number for i in infos), dtype="<i4", count=len(infos)).tobytes()
            cached = self._frames[key] = (lay, numbers)
            if len(self._frames) > 64:  # sets of individual sources come and go
                self._frames.pop(next(iter(self._frames)))
        lay, numbers = cached
        if x.shape[1] != lay.channels:
            raise InvalidInputError("write_signals got sessions of different channel layouts in one frame.")
        times = np.ascontiguousarray(np.asarray(t0, dtype="<f8").reshape(-1)).data
        samples = np.ascontiguousarray(x).data  # the frame's parts are written as they are, without a joined copy
        crc = zlib.crc32(samples, zlib.crc32(times, zlib.crc32(numbers)))
        try:
            lay.file.write(_HEAD.pack(MAGIC, x.shape[0], x.shape[1], x.shape[2], crc))
            lay.file.write(numbers)
            lay.file.write(times)
            lay.file.write(samples)
        except OSError as exc:
            raise self._write_error(exc) from None
        self._dirty = True

    def write_record(self, session: str, kind: str, onset: float, duration: float = 0.0, **extra: Any) -> None:
        """Append a stage, event, glitch or decision of a session (onset and duration in seconds)."""
        self.write_records([{"session": session, "kind": kind, "onset": float(onset),
                             "duration": float(duration), **extra}])

    def write_records(self, records: Iterable[dict[str, Any]]) -> None:
        """Append many records at once (each a dict with session, kind, onset, duration, …).

        A record may group several events of one session: ``onset`` is then a list, and every
        other list of the same length holds one value per event (expanded again on reading).
        """
        lines = b"".join([_json_line(r) for r in records])
        if lines:
            try:
                self._rec_file.write(lines)
            except OSError as exc:
                raise self._write_error(exc) from None
            self._dirty = True

    def _write_error(self, exc: OSError) -> StorageError:
        """A write that failed (disk full, device gone) as one line; the frames written before stay readable."""
        from nexus.core.files import is_disk_full

        why = "the disk is full" if is_disk_full(exc) else (exc.strerror or str(exc))
        return StorageError(f"Cannot write the recording journal '{self.folder}': {why}. Free some space (or set "
                            "NEXUS_DATA_DIR to another disk); what was written before stays readable "
                            "in that folder.")

    def flush(self, *, force: bool = False) -> None:
        """Hand buffered writes to the OS now; ``fsync`` when ``sync_s`` has passed (or ``force``)."""
        if self.closed:
            return
        files = [self._sess_file, self._rec_file, *(lay.file for lay in self._layouts.values())]
        now = time.monotonic()
        try:
            self._sync_result(wait=force)
            for f in files:
                f.flush()
            if force or (self._dirty and now - self._last_sync >= self.sync_s):
                fds = [f.fileno() for f in files]
                if self._syncer is not None and not force:
                    if self._sync_job is not None:  # the last one still runs: sync again at the next flush
                        return
                    self._sync_job = self._syncer.submit(_fsync_all, fds)
                else:
                    _fsync_all(fds)
                self._last_sync = now
                self._dirty = False
        except OSError as exc:
            raise self._write_error(exc) from None

    def _sync_result(self, *, wait: bool) -> None:
        """Collect the background ``fsync`` when it is done (or wait for it); raise what it raised."""
        job = self._sync_job
        if job is None or not (wait or job.done()):
            return
        self._sync_job = None
        job.result()

    def close(self) -> None:
        """Flush, sync and close the journal files (safe to call twice)."""
        if self.closed:
            return
        try:
            self.flush(force=True)
        finally:  # a journal that cannot be written is still closed (what it buffered is lost, said by flush)
            if self._syncer is not None:
                self._syncer.shutdown(wait=True)  # (flush waited for its job; nothing runs on the files now)
            for f in [self._sess_file, self._rec_file, *(lay.file for lay in self._layouts.values())]:
                with contextlib.suppress(OSError):
                    f.close()
            self.closed = True

    def finalize(
        self, out_dir: str | Path | None = None, *, store: Any = None, start: dt.datetime | None = None,
        clients: dict[str, str] | None = None,
    ) -> dict[str, Path]:
        """Close the journal and write one EDF+ per session (see :func:`merge_journal`)."""
        self.close()
        return merge_journal(self.folder, out_dir, store=store, start=start, clients=clients)


def _fsync_all(fds: list[int]) -> None:
    """``fsync`` each file descriptor (the journal's files, kept open while this runs)."""
    for fd in fds:
        os.fsync(fd)


def _unit_of(channel: str) -> str:
    low = channel.lower()
    if low.startswith("acc"):
        return "mg"
    if low.startswith("resp"):
        return "au"
    return "uV"


def _json_line(rec: dict[str, Any]) -> bytes:
    """One record as a line of strict UTF-8 JSON: NaN and infinities (e.g. the first R-R interval) become null.

    orjson writes it (a thousand decisions of one stage update are one tick's work: about ten times faster
    than :func:`json.dumps`); what it cannot write (an integer beyond 64 bits) goes the standard library's way.
    """
    try:
        return orjson.dumps(rec, default=_json_default, option=_ORJSON_OPTIONS)
    except TypeError:
        return (json.dumps(_finite(rec), default=_json_default, allow_nan=False) + "\n").encode()


_ORJSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def line_may_hold(line: bytes, *, kind: str | None = None, session: str | None = None) -> bool:
    """Whether a raw ``records.jsonl`` line may be a record of ``kind`` and ``session`` (a filter before parsing).

    It knows both spellings: the compact lines written since 2026-12 (``"kind":"event"``, UTF-8 text) and
    the older ones of :func:`json.dumps` (``"kind": "event"``, non-ASCII escaped). A True still needs parsing.
    """
    if kind is not None and f'"kind":"{kind}"'.encode() not in line and f'"kind": "{kind}"'.encode() not in line:
        return False
    if session is not None:
        quoted = json.dumps(session, ensure_ascii=False).encode()
        if quoted not in line and json.dumps(session).encode() not in line:
            return False
    return True


def _finite(o: Any) -> Any:
    if isinstance(o, float | np.floating):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    return o


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# -- reading back ----------------------------------------------------------------------------------
def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    raw = path.read_bytes()
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            try:  # a journal written before 2026-12 may hold a bare NaN (orjson reads strict JSON only)
                rec = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("Skipping a torn line at the end of %s (written during a crash).", path)
                continue
        out += _expand(rec)
    return out


def _expand(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per event: a grouped record (lists of onsets, durations, …) is split up."""
    onset = rec.get("onset")
    if not isinstance(onset, list):
        return [rec]
    # a null among numbers was a NaN (see _json_line)
    lists = {k: [np.nan if x is None else x for x in v] if any(isinstance(x, int | float) for x in v) else v
             for k, v in rec.items() if isinstance(v, list) and len(v) == len(onset)}
    same = {k: v for k, v in rec.items() if k not in lists}
    return [same | {k: v[i] for k, v in lists.items()} for i in range(len(onset))]


def _read_sessions(path: Path) -> list[SessionInfo]:
    infos = []
    for d in _read_lines(path):
        d["channels"], d["units"] = tuple(d["channels"]), tuple(d["units"])
        infos.append(SessionInfo(**d))
    return infos


@dataclass
class FrameIndex:
    """Where one session's samples lie in a signal file."""

    offsets: list[int] = field(default_factory=list)  # byte offset of the session's row
    t0: list[float] = field(default_factory=list)
    n: list[int] = field(default_factory=list)


@dataclass
class RecoveredJournal:
    """A journal read back: sessions, records, and an index of every session's samples."""

    folder: Path
    sessions: dict[str, SessionInfo]
    records: list[dict[str, Any]]
    index: dict[str, FrameIndex]
    files: dict[str, Path]
    torn_bytes: int = 0
    """Bytes of a torn last frame (a crash during a write), ignored."""
    corrupt_bytes: int = 0
    """Bytes of damaged frames before the last good one (CRC or header mismatch), skipped."""

    def samples(self, session: str) -> npt.NDArray[np.float64]:
        """The session's signal, shape (channels, samples), in recorded units; gaps are NaN.

        Samples are placed by their recorded times, so a chunk recorded late or twice lands once,
        at its own time.
        """
        info, idx = self.sessions[session], self.index.get(session, FrameIndex())
        n_ch = len(info.channels)
        if not idx.n:
            return np.zeros((n_ch, 0))
        starts = np.rint(np.asarray(idx.t0) * info.fs).astype(np.int64)
        total = int(max(s + n for s, n in zip(starts, idx.n, strict=True)))
        first = int(min(starts.min(), 0))
        out = np.full((n_ch, total - first), np.nan)
        with open(self.files[session], "rb") as f:
            for off, s, n in zip(idx.offsets, starts, idx.n, strict=True):
                f.seek(off)
                row = np.frombuffer(f.read(4 * n_ch * n), dtype="<f4").reshape(n_ch, n)
                out[:, s - first : s - first + n] = row
        return out


def recover_journal(folder: str | Path) -> RecoveredJournal:
    """Read a journal back (after a clean end or a crash), ignoring a torn last frame or line.

    A damaged frame elsewhere (bytes changed on disk, so its CRC or header does not match) is skipped: its
    samples become a gap, and the frames after it are read as usual.

    Raises
    ------
    NotFoundError
        When ``folder`` holds no journal.
    """
    root = Path(folder)
    if not (root / "sessions.jsonl").exists():
        raise NotFoundError(f"No recording journal in '{root}' (sessions.jsonl missing). Check the folder.")
    infos = {s.session: s for s in _read_sessions(root / "sessions.jsonl")}
    by_number = {s.number: s for s in infos.values()}
    index: dict[str, FrameIndex] = {s: FrameIndex() for s in infos}
    files: dict[str, Path] = {}
    torn = corrupt = 0
    for seg in sorted(root.glob("signals-*.seg")):
        size = seg.stat().st_size
        with open(seg, "rb") as f:
            pos = 0
            while pos < size:
                f.seek(pos)
                head = f.read(_HEAD.size)
                frame = _read_frame(f, head, pos, size)
                if frame is None:
                    # not a whole, intact frame here: a torn tail, or a damaged frame in the middle, after which
                    # the next frame is found by its magic (a false match fails its CRC and is skipped in turn)
                    nxt = _find_magic(f, pos + 1, size)
                    if nxt is None:
                        torn += size - pos
                        break
                    corrupt += nxt - pos
                    pos = nxt
                    continue
                ns, nc, nsamp, body = frame
                numbers = np.frombuffer(body[: 4 * ns], dtype="<i4")
                t0 = np.frombuffer(body[4 * ns : 12 * ns], dtype="<f8")
                data_at = pos + _HEAD.size + 12 * ns
                for k, (num, t) in enumerate(zip(numbers, t0, strict=True)):
                    info = by_number.get(int(num))
                    if info is None:
                        continue
                    ix = index[info.session]
                    ix.offsets.append(data_at + 4 * k * nc * nsamp)
                    ix.t0.append(float(t))
                    ix.n.append(int(nsamp))
                    files[info.session] = seg
                pos += _HEAD.size + len(body)
    if torn:
        logger.warning("Journal %s: %d bytes of a torn last frame ignored (crash during a write).", root, torn)
    if corrupt:
        logger.warning("Journal %s: %d bytes of damaged frames skipped (CRC or header mismatch).", root, corrupt)
    return RecoveredJournal(root, infos, _read_lines(root / "records.jsonl"), index, files, torn, corrupt)


def _read_frame(f: BinaryIO, head: bytes, pos: int, size: int) -> tuple[int, int, int, bytes] | None:
    """(n_sessions, n_channels, n_samples, body) of the frame whose header is ``head``, or None when damaged."""
    if len(head) < _HEAD.size:
        return None
    magic, ns, nc, nsamp, crc = _HEAD.unpack(head)
    blen = ns * 4 + ns * 8 + 4 * ns * nc * nsamp
    if magic != MAGIC or pos + _HEAD.size + blen > size:
        return None
    body = f.read(blen)
    if zlib.crc32(body) != crc:
        return None
    return ns, nc, nsamp, body


def _find_magic(f: BinaryIO, start: int, size: int, chunk: int = 1 << 20) -> int | None:
    """Offset of the next frame magic at or after ``start``, or None."""
    pos = start
    while pos < size:
        f.seek(pos)
        buf = f.read(chunk + len(MAGIC) - 1)
        k = buf.find(MAGIC)
        if k >= 0:
            return pos + k
        pos += chunk
    return None


#: event descriptions kept out of the EDF+ annotations (one per heartbeat: the events TSV holds them)
TSV_ONLY_EVENTS = frozenset({"r_peak"})


def _annotations(records: list[dict[str, Any]]) -> list[Annotation]:
    anns = []
    for r in records:
        kind = r.get("kind", "")
        if kind == "event" and r.get("description") in TSV_ONLY_EVENTS:
            continue
        if kind == "stage":
            text = STAGE_TEXT.get(int(r.get("stage", -2)), "Sleep stage ?")
        else:
            label = r.get("description") or r.get("what") or ""
            text = f"{kind}: {label}".strip(": ") if label else kind
        anns.append(Annotation(float(r["onset"]), float(r.get("duration", 0.0)), text))
    return sorted(anns, key=lambda a: a.onset)


def merge_journal(
    folder: str | Path,
    out_dir: str | Path | None = None,
    *,
    sessions: Sequence[str] | None = None,
    store: Any = None,
    start: dt.datetime | None = None,
    clients: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Write one EDF+ per session of a journal (after a clean end or a crash), and its events TSV.

    Parameters
    ----------
    folder : path-like
        The journal folder.
    out_dir : path-like, optional
        Where the EDF+ files go (default: the journal folder); one ``<session>.edf`` each.
    sessions : sequence of str, optional
        Only these sessions (default: all).
    store : nexus.store.db.Store, optional
        When given, each session's database row (``NightSession`` with the same id) gets the
        ``recording_path``; a missing row is reported in the log, not created.
    start : datetime, optional
        The night's start for every session's EDF+ header (a simulated night: its lights-out, e.g. 23:00 of
        the run's date); default: the start each session was registered with.
    clients : dict, optional
        Session id → client code for the EDF+ patient field; default: the code registered with the session,
        else the one in the database (``store``), else the session id (never a name).

    Returns
    -------
    dict
        Session id → EDF+ path. Gaps in the signal are written as 0 µV and listed as
        ``gap`` annotations; a session with no samples gets no file. Each session's events (R-peaks
        included, which the EDF+ leaves out) go to ``<session>.events.tsv`` beside its EDF+.
    """
    rec = recover_journal(folder)
    out = Path(out_dir) if out_dir is not None else rec.folder
    out.mkdir(parents=True, exist_ok=True)
    by_session: dict[str, list[dict[str, Any]]] = {}
    for r in rec.records:
        by_session.setdefault(str(r.get("session")), []).append(r)
    paths: dict[str, Path] = {}
    for name in sessions or list(rec.sessions):
        info = rec.sessions[name]
        x = rec.samples(name)
        if x.shape[1] == 0:
            continue
        x[~np.isfinite(x)] = np.nan  # infinities recorded from a faulty device are gaps too
        gaps = _gap_annotations(np.isnan(x).any(axis=0), info.fs)
        whole = int(np.ceil(x.shape[1] / info.fs) * info.fs)  # whole 1-s data records
        x = np.nan_to_num(np.pad(x, ((0, 0), (0, whole - x.shape[1])), constant_values=np.nan), nan=0.0)
        signals = [Signal(c, x[k], info.fs, u) for k, (c, u) in enumerate(zip(info.channels, info.units, strict=True))]
        begin = start or (dt.datetime.fromisoformat(info.start) if info.start else None)
        begin = begin.replace(tzinfo=None, microsecond=0) if begin else None
        code = (clients or {}).get(name) or info.client or _client_code(store, name) or name
        records = by_session.get(name, [])
        path = write_edf(out / f"{_safe(name)}.edf", signals, _annotations(records) + gaps, start=begin,
                         patient_code=_safe(code))
        _write_session_events(out / f"{_safe(name)}.events.tsv", [r for r in records if r.get("kind") == "event"])
        paths[name] = path
    if store is not None:
        _update_rows(store, paths)
    return paths


def _client_code(store: Any, session: str) -> str | None:
    if store is None:
        return None
    from nexus.store.models import Client, NightSession

    with store.session() as s:
        client_id = getattr(s.get(NightSession, session), "client_id", None)
        client = s.get(Client, client_id) if client_id is not None else None
        return None if client is None else str(client.code)


def _write_session_events(path: Path, events: list[dict[str, Any]]) -> None:
    if not events:
        return
    import pandas as pd

    from nexus.formats.events import write_events

    df = pd.DataFrame([{k: v for k, v in r.items() if k not in ("session", "kind")} for r in events])
    for col in ("description", "channel"):
        if col not in df.columns:
            df[col] = "n/a"
    write_events(path, df)


def _gap_annotations(missing: npt.NDArray[np.bool_], fs: float) -> list[Annotation]:
    if not missing.any():
        return []
    d = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
    on, off = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [Annotation(a / fs, (b - a) / fs, "gap: no signal recorded") for a, b in zip(on, off, strict=True)]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _update_rows(store: Any, paths: dict[str, Path]) -> None:
    from nexus.store.models import NightSession

    with store.session() as s:
        for name, path in paths.items():
            row = s.get(NightSession, name)
            if row is None:
                logger.warning("No database row for session %s; its recording is at %s.", name, path)
                continue
            row.recording_path = str(path)


def merge_session_parts(
    journals: Sequence[str | Path], session: str, out_dir: str | Path, *, start: dt.datetime | None = None,
    client: str | None = None,
) -> Path | None:
    """One EDF+ of a session recorded in parts by several journals (a bed that changed workers).

    Samples are placed by their recorded session times; where parts overlap the earlier part's
    samples stay, and time that no part recorded is a ``gap`` annotation (0 µV). The annotations are
    the records of every part. Returns the path, or None when no part holds samples of ``session``.
    """
    parts = []
    for j in journals:
        if not (Path(j) / "sessions.jsonl").exists():  # a part on another host's disk: a gap here
            logger.warning("Session %s: journal part '%s' is not reachable from this host; it stays a gap.",
                           session, j)
            continue
        rec = recover_journal(j)
        if session in rec.sessions:
            parts.append(rec)
    arrays = [(p, p.samples(session)) for p in parts]
    arrays = [(p, x) for p, x in arrays if x.shape[1]]
    if not arrays:
        return None
    info = arrays[0][0].sessions[session]
    n = max(x.shape[1] for _, x in arrays)
    x = np.full((len(info.channels), n), np.nan)
    for _, part in arrays:  # each part starts at time 0 (NaN before its first sample)
        fill = np.isnan(x[:, : part.shape[1]])
        x[:, : part.shape[1]][fill] = part[fill]
    x[~np.isfinite(x)] = np.nan
    gaps = _gap_annotations(np.isnan(x).any(axis=0), info.fs)
    whole = int(np.ceil(x.shape[1] / info.fs) * info.fs)
    x = np.nan_to_num(np.pad(x, ((0, 0), (0, whole - x.shape[1])), constant_values=np.nan), nan=0.0)
    signals = [Signal(c, x[k], info.fs, u) for k, (c, u) in enumerate(zip(info.channels, info.units, strict=True))]
    records = [r for p in parts for r in p.records if r.get("session") == session
               and r.get("kind") in ("stage", "event", "glitch", "decision")]
    begin = start or (dt.datetime.fromisoformat(info.start) if info.start else None)
    begin = begin.replace(tzinfo=None, microsecond=0) if begin else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = write_edf(out / f"{_safe(session)}.edf", signals, _annotations(records) + gaps, start=begin,
                     patient_code=_safe(client or info.client or session))
    _write_session_events(out / f"{_safe(session)}.events.tsv", [r for r in records if r.get("kind") == "event"])
    return path
