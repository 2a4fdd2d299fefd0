"""Night reports: one night's hypnogram, spectrogram, events, dreamscape, statistics and signal quality.

Two ways in: a recording plus a hypnogram (:func:`night_from_recording`, researchers' standalone use)
or a stored session of the facility database (:func:`night_from_session`). Both give a
:class:`NightData`, which :func:`build_night_report` turns into a :class:`~nexus.reports.document.Report`.
Problems with the input (a hypnogram shorter or longer than the recording, no EEG channel, an empty
night, a night without sleep) are said plainly on the page instead of failing.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from nexus.core.checks import plural
from nexus.core.errors import InvalidInputError, NotFoundError
from nexus.core.montage import channel_role, channel_roles
from nexus.core.stages import EPOCH_S, STAGE_LABELS
from nexus.formats.edf import unit_to_uv
from nexus.formats.hypnogram import Hypnogram
from nexus.reports.document import Image, Note, Report, Section, Table
from nexus.staging.stats import sleep_statistics

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from nexus.formats.edf import Recording, Signal

__all__ = ["LiveBed", "NightData", "build_night_report", "night_from_recording", "night_from_session"]

#: physical dimension (lower case, µ as u) → factor to µV
#: event kinds shown, in order: (description in event files, label on the page)
EVENT_KINDS: tuple[tuple[str, str], ...] = (
    ("slow_oscillation", "slow oscillations"), ("spindle", "spindles"), ("arousal", "arousals"),
    ("rem", "rapid eye movements"), ("hr_surge", "heart-rate surges"), ("movement", "movements"),
)
#: units of the statistics of nexus.staging.stats
_UNITS = {"SE": "%", "SME": "%", "SFI": "per h TST", "%N1": "% TST", "%N2": "% TST", "%N3": "% TST",
          "%REM": "% TST"}
_FLAT_UV = 1.0  # an epoch with a standard deviation below this is flat
_LARGE_UV = 500.0  # ... and one with a sample beyond this is saturated or moving


@dataclass
class NightData:
    """Everything a night report shows; any part may be missing (then the report says so).

    Attributes
    ----------
    title, subtitle : str
        Heading of the report.
    start : datetime or None
        Clock time of the first sample / epoch (axes show clock times when known).
    hypnogram : Hypnogram or None
        The scored night (stages, epoch length, optional probabilities).
    duration_s : float or None
        Length of the recording in seconds (None when there is no recording).
    eeg : (label, samples in µV, fs in Hz) or None
        The main EEG channel (spectrogram).
    signals : list of Signal
        Channels for the signal-quality table (electrophysiology in µV).
    events : DataFrame or None
        ``onset, duration, description, channel`` (+ detector columns), onsets in seconds from the start.
    glitches : list of dict
        ``onset_s, duration_s, category, kind, priority, message``.
    decisions : list of dict
        Dreamscape decisions: ``t_s, kind, command, inputs, reason``.
    reference : Hypnogram or None
        A reference hypnogram (truth, expert) to compare the scored one with.
    mode : str or None
        ``"stimulation"`` or ``"record_only"`` (natural night) for a stored session.
    event_counts : dict of str to int or None
        Events per kind from a session's summary, used when the events themselves are not available.
    confidence : ndarray or None
        Per-epoch probability of the chosen stage (live stager), drawn when there are no probabilities.
    events_span_s : float or None
        Seconds from the start that ``events`` cover (the recording they were detected in); None when
        they cover the whole hypnogram. The arousal index counts only the sleep within this span.
    command_counts : dict of str to int or None
        Commands issued per kind over the whole night (a running bed's live counts), used when
        ``decisions`` holds only the latest ones.
    decisions_latest : bool
        ``decisions`` holds only the running bed's latest decisions (older ones are not in it).
    notes : list of str
        Problems found while gathering the data, shown at the top of the report.
    pending_events : Future or None
        Events (and notes) still being detected in the background; see :meth:`wait_for_events`.
    """

    title: str
    subtitle: str = ""
    start: dt.datetime | None = None
    hypnogram: Hypnogram | None = None
    hypnogram_label: str = "hypnogram"
    duration_s: float | None = None
    eeg: tuple[str, npt.NDArray[np.float64], float] | None = None
    signals: list[Signal] = field(default_factory=list)
    events: pd.DataFrame | None = None
    glitches: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    reference: Hypnogram | None = None
    reference_label: str = "reference"
    mode: str | None = None
    event_counts: dict[str, int] | None = None
    events_span_s: float | None = None
    confidence: npt.NDArray[np.float64] | None = None
    command_counts: dict[str, int] | None = None
    decisions_latest: bool = False
    notes: list[str] = field(default_factory=list)
    pending_events: Future[tuple[pd.DataFrame, list[str]]] | None = field(default=None, repr=False, compare=False)

    def wait_for_events(self) -> None:
        """Take the events (and notes) of a detection still running in the background, once it ends.

        Nothing to do when none runs (``night_from_recording(background=True)`` starts one); an
        error of the detectors is raised here.
        """
        if self.pending_events is not None:
            fut, self.pending_events = self.pending_events, None
            self.events, more = fut.result()
            self.notes += more

    @property
    def hours(self) -> float:
        """Length of the time axis in hours: the longer of recording and hypnogram."""
        h = self.hypnogram.duration if self.hypnogram is not None else 0.0
        return max(h, self.duration_s or 0.0) / 3600


@dataclass
class LiveBed:
    """What a facility service holds of a bed whose night still runs (nothing of it is stored yet).

    Attributes
    ----------
    hypnogram : dict
        :meth:`~nexus.facility.service.FacilityService.hypnogram`: ``epoch_s``, ``stages`` (one code
        per epoch, -2 unscored), ``confidence`` (per epoch, or None) and ``hypnodensity`` (per epoch
        five probabilities W N1 N2 N3 R, or None).
    decisions : list of dict
        The bed's latest dreamscape decisions (``t_s`` in s, ``kind``, ``command``, ``reason``).
    event_counts : dict of str to int
        Events per kind detected live so far.
    decisions_kept : int
        How many decisions the service keeps (an older decision is not in ``decisions``).
    command_counts : dict of str to int
        Commands the bed's dreamscape issued so far, per kind (clicks, cues, …), all night.
    """

    hypnogram: dict[str, Any]
    decisions: list[dict[str, Any]] = field(default_factory=list)
    event_counts: dict[str, int] = field(default_factory=dict)
    decisions_kept: int = 200
    command_counts: dict[str, int] = field(default_factory=dict)


def _live_hypnogram(h: dict[str, Any]) -> tuple[Hypnogram | None, npt.NDArray[np.float64] | None]:
    """The live hypnogram so far and its per-epoch confidence (None without a scored epoch)."""
    stages = np.asarray(h.get("stages") or [], dtype=np.int8)
    if not stages.size:
        return None, None
    dens = h.get("hypnodensity") or []
    probs = None
    if len(dens) == stages.size and all(isinstance(p, list | tuple) and len(p) == 5 for p in dens):
        probs = np.asarray(dens, dtype=float)
    conf = h.get("confidence") or []
    confidence = None
    if probs is None and len(conf) == stages.size:
        confidence = np.array([np.nan if c is None else float(c) for c in conf])
    return Hypnogram(stages, float(h.get("epoch_s") or EPOCH_S), probs), confidence


# --------------------------------------------------------------------------- gathering


def _is_ephys(sig: Signal) -> bool:
    return sig.unit.strip().replace("µ", "u").lower() == "uv" or channel_role(sig.label) in ("eeg", "eog", "emg")


def _ephys_channel(label: str, unit: str) -> bool:
    """Whether a channel is EEG/EOG/EMG (by name, or a potential unit that ``read_edf`` returns in µV).

    The only channels a night report reads from the file.
    """
    return unit_to_uv(unit) is not None or channel_role(label) in ("eeg", "eog", "emg")


def _pick_eeg(rec: Recording, channel: str | None,
              notes: list[str]) -> tuple[str, npt.NDArray[np.float64], float] | None:
    if channel is not None:
        s = rec.channel(channel)  # raises with the channels found and the closest name
        return s.label, s.data, s.fs
    for s in rec.signals:
        if channel_role(s.label) == "eeg":
            return s.label, s.data, s.fs
    notes.append(f"No EEG channel found (channels: {', '.join(rec.labels)}): no spectrogram, spindles, slow "
                 "oscillations or arousals. Name the EEG channel with --channel.")
    return None


def _fit_stages(stages: npt.NDArray[np.int8], n_samples: int, fs: float, epoch_s: float) -> npt.NDArray[np.int8]:
    """The hypnogram cut or padded (unscored) to the recording's epochs, for the detectors."""
    n = max(1, math.ceil(n_samples / (epoch_s * fs)))
    if stages.size >= n:
        return stages[:n]
    return np.concatenate([stages, np.full(n - stages.size, -2, dtype=np.int8)])


def _length_notes(h: Hypnogram, duration_s: float) -> list[str]:
    diff = h.duration - duration_s
    if diff > h.epoch_s:
        return [f"The hypnogram ({_hm(h.duration)}, {len(h)} epochs) is longer than the recording "
                f"({_hm(duration_s)}): its last {int(diff // h.epoch_s)} epochs have no signal. The statistics use "
                "the whole hypnogram; events and spectrogram cover the recording only. Check that both belong to "
                "the same night."]
    if -diff > h.epoch_s:
        return [f"The hypnogram covers {_hm(h.duration)} of the {_hm(duration_s)} recording; the remaining "
                f"{_hm(-diff)} are not scored (shaded on the hypnogram) and not in the statistics."]
    return []


def _detect_events(eeg: tuple[str, npt.NDArray[np.float64], float] | None, rec: Recording,
                   stages: npt.NDArray[np.int8] | None, epoch_s: float) -> tuple[pd.DataFrame, list[str]]:
    """The report's events detected in ``rec`` and the notes about detectors skipped."""
    from nexus.events.run_all import Channels, detect_all

    ch = Channels()
    if eeg is not None:
        ch.eeg[eeg[0]] = (eeg[1], eeg[2])
    roles = channel_roles(rec.labels)
    eog = roles["eog"]
    if len(eog) >= 2:
        a, b = rec.signals[eog[0]], rec.signals[eog[1]]
        if a.fs == b.fs and a.data.size == b.data.size:
            ch.loc, ch.roc = (a.label, a.data, a.fs), (b.label, b.data, b.fs)
    emg = roles["emg"]
    if emg:
        s = rec.signals[emg[0]]
        ch.emg = (s.label, s.data, s.fs)
    fitted = None
    if stages is not None and eeg is not None:
        fitted = _fit_stages(stages, eeg[1].size, eeg[2], epoch_s)
    elif stages is not None and ch.loc is not None:
        fitted = _fit_stages(stages, ch.loc[1].size, ch.loc[2], epoch_s)
    # the two heaviest detectors one after the other: the report's figures use the core this leaves idle
    df, skipped = detect_all(ch, fitted, ("spindle", "slow_oscillation", "arousal", "rem"), heavy_alone=True)
    return df, [f"Events: {s}." for s in skipped if "EEG" not in s]  # no EEG is already said once


def night_from_recording(recording: str | Path, hypnogram: str | Path | None = None, *,
                         hypno_fmt: str | None = None, events: str | Path | None = None,
                         reference: str | Path | None = None, channel: str | None = None,
                         detect: bool = True, background: bool = False) -> NightData:
    """Gather a night from an EDF/EDF+/BDF recording and a hypnogram file (any format).

    Parameters
    ----------
    recording : path
        The recording.
    hypnogram : path, optional
        Its hypnogram (TSV with probabilities gives the hypnodensity).
    hypno_fmt : str, optional
        Format of ``hypnogram`` (guessed when omitted).
    events : path, optional
        An events TSV (``nexus events``); detected from the recording when omitted and ``detect``.
    reference : path, optional
        A reference hypnogram to compare with (agreement section).
    channel : str, optional
        The main EEG channel (default: the first channel whose name starts with ``EEG``).
    detect : bool
        Detect events in the recording when no events file is given.
    background : bool
        Detect them on a thread of their own and return at once: :func:`build_night_report` draws
        the figures that do not need the events (hypnogram, spectrogram, signal quality) while the
        detectors run (their compiled kernels leave the interpreter free), then waits for them
        (:meth:`NightData.wait_for_events`). The report is the same either way.
    """
    from nexus.formats.edf import read_edf
    from nexus.formats.events import read_events
    from nexus.formats.hypnogram import read_hypnogram

    # only the channels the report uses (any, when one is named), without the annotations it never shows
    rec = read_edf(recording, keep=_ephys_channel if channel is None else None, annotations=False)
    hyp = read_hypnogram(hypnogram, hypno_fmt) if hypnogram is not None else None
    ref = read_hypnogram(reference) if reference is not None else None
    ev = read_events(events) if events is not None else None
    notes: list[str] = []
    eeg = _pick_eeg(rec, channel, notes)
    if hyp is None:
        notes.append("No hypnogram given: no sleep statistics or stage-wise events. Stage the night with "
                     "'nexus stage' and pass the result with --hypno.")
    elif len(hyp):
        notes += _length_notes(hyp, rec.duration)
    if rec.duration == 0:
        notes.append("The recording holds no samples: nothing to show from the signals.")
    epoch_s = hyp.epoch_s if hyp is not None else EPOCH_S
    pending: Future[tuple[pd.DataFrame, list[str]]] | None = None
    if ev is None and detect and rec.duration > 0:
        stages = hyp.stages if hyp is not None else None
        if background:
            pending = Future()
            threading.Thread(target=_run_into, args=(pending, _detect_events, eeg, rec, stages, epoch_s),
                             name="report-events", daemon=True).start()
        else:
            ev, more = _detect_events(eeg, rec, stages, epoch_s)
            notes += more
    name = Path(recording).name
    start = rec.start
    sub = f"Recording {name}" + (f", started {start:%Y-%m-%d %H:%M}" if start else ", start time unknown")
    if hypnogram is not None:
        sub += f"; hypnogram {Path(hypnogram).name}"
    return NightData(
        title=f"Night report: {name}", subtitle=sub, start=start, hypnogram=hyp,
        hypnogram_label=Path(hypnogram).name if hypnogram else "hypnogram", duration_s=rec.duration, eeg=eeg,
        signals=[s for s in rec.signals if _is_ephys(s)], events=ev, events_span_s=rec.duration, reference=ref,
        reference_label=Path(reference).name if reference else "reference", notes=notes, pending_events=pending,
    )


def _run_into(fut: Future[Any], fn: Any, *args: Any) -> None:
    """Run ``fn(*args)`` and settle ``fut`` with its result or its exception."""
    try:
        fut.set_result(fn(*args))
    except BaseException as exc:  # handed to whoever waits (build_night_report raises it there)
        fut.set_exception(exc)


#: preference when a session has several hypnograms: the one shown, then the reference
_SHOWN_KINDS = ("live", "offline", "expert", "truth")
_REFERENCE_KINDS = ("expert", "truth")


def night_from_session(store: Any, session_id: str, *, detect: bool = True,
                       live: LiveBed | None = None) -> NightData:
    """Gather a stored session: its hypnogram (live first), events, glitches, decisions and recording.

    ``live`` is the bed of a night still running (from the facility service that runs it): its live
    hypnogram, latest decisions and event counts so far stand in for the rows written when the night ends.

    Raises
    ------
    NotFoundError
        No session ``session_id`` in the database.
    """
    import pandas as pd
    from sqlalchemy import select

    from nexus.store.models import NightSession

    with store.session() as s:
        row = s.get(NightSession, session_id)
        if row is None:
            ids = list(s.scalars(select(NightSession.id).order_by(NightSession.created_at.desc()).limit(3)))
            hint = f" Recent sessions: {', '.join(ids)}." if ids else " The database has no sessions yet."
            raise NotFoundError(f"No session '{session_id}' in the database.{hint} Check the id, or point "
                                "NEXUS_DATABASE_URL at the right database.")
        client = row.client
        hyps = {h.kind: h for h in sorted(row.hypnograms, key=lambda h: h.id)}  # latest of each kind wins
        shown_kind = next((k for k in _SHOWN_KINDS if k in hyps), next(iter(hyps), None))
        ref_kind = next((k for k in _REFERENCE_KINDS if k in hyps and k != shown_kind), None)
        hyp = _hypnogram_of(hyps[shown_kind]) if shown_kind else None
        conf = None
        if shown_kind and hyp is not None and hyp.probabilities is None:
            conf = _confidence_of(hyps[shown_kind])
        ref = _hypnogram_of(hyps[ref_kind]) if ref_kind else None
        ev_rows = [{"onset": e.onset_s, "duration": e.duration_s, "description": e.description,
                    "channel": e.channel, **(e.extra or {})} for e in row.events]
        glitches = [{"onset_s": g.onset_s, "duration_s": g.duration_s, "category": str(g.category.value),
                     "kind": g.kind, "priority": str(g.priority.value), "message": g.message}
                    for g in sorted(row.glitches, key=lambda g: g.onset_s)]
        decisions = [{"t_s": d.t_s, "kind": d.kind, "command": dict(d.command or {}), "inputs": dict(d.inputs or {}),
                      "reason": d.reason} for d in sorted(row.decisions, key=lambda d: d.t_s)]
        mode = str(row.mode.value)
        counts = {str(k): int(v) for k, v in ((row.summary or {}).get("events") or {}).items()}
        info = {"id": row.id, "bed": row.bed, "client": client.code if client else "?", "state": str(row.state.value),
                "started": row.started_at, "ended": row.ended_at, "end_reason": row.end_reason,
                "recording": row.recording_path}
    notes: list[str] = []
    latest = False  # decisions holds only a running bed's latest ones
    if live is not None:
        live_hyp, live_conf = _live_hypnogram(live.hypnogram)
        if live_hyp is not None:
            hyp, conf, shown_kind = live_hyp, live_conf, "live"
        if not decisions and live.decisions:
            decisions = [{"t_s": float(d["t_s"]), "kind": d["kind"], "command": dict(d.get("command") or {}),
                          "inputs": dict(d.get("inputs") or {}), "reason": d.get("reason", "")}
                         for d in sorted(live.decisions, key=lambda d: d["t_s"])]
            latest = len(decisions) >= live.decisions_kept
            if latest:
                notes.append(f"The dreamscape section shows the bed's latest {len(decisions)} decisions (from "
                             f"{_hm(decisions[0]['t_s'])} into the night); every decision is in the report once "
                             "the night has ended.")
        counts = counts or {str(k): int(v) for k, v in live.event_counts.items()}
    events = pd.DataFrame(ev_rows) if ev_rows else None
    start = info["started"]
    duration = None
    span = None  # stored events cover the session; detected ones, the recording
    eeg = None
    signals: list[Signal] = []
    if info["recording"]:
        path = Path(info["recording"])
        if path.is_file():
            from nexus.formats.edf import read_edf

            rec = read_edf(path, keep=_ephys_channel, annotations=False)
            duration = rec.duration
            start = rec.start or start
            eeg = _pick_eeg(rec, None, notes)
            signals = [sg for sg in rec.signals if _is_ephys(sg)]
            if hyp is not None and len(hyp):
                notes += _length_notes(hyp, duration)
            if events is None and detect and duration > 0:
                events, more = _detect_events(eeg, rec, hyp.stages if hyp is not None else None,
                                              hyp.epoch_s if hyp else EPOCH_S)
                notes += more
                span = duration
        else:
            notes.append(f"The session's recording '{path}' is missing: no spectrogram, signal quality or events "
                         "from the signals.")
    elif live is not None:
        notes.append("The recording is stored when the night ends: no spectrogram or signal quality yet.")
    else:
        notes.append("No recording is stored for this session: no spectrogram or signal quality.")
    if hyp is None:
        notes.append("No epoch has been staged yet: no sleep statistics." if live is not None else
                     "No hypnogram is stored for this session: no sleep statistics.")
    if info["state"] not in ("ended", "aborted"):
        notes.append(f"The session is still '{info['state']}': this report shows the night so far.")
    if info["end_reason"] and info["state"] == "aborted":
        notes.append(f"The session was aborted: {info['end_reason']}.")
    when = f"{start:%Y-%m-%d %H:%M}" if start else "start unknown"
    natural = "natural night (record only)" if mode == "record_only" else "stimulation night"
    return NightData(
        title=f"Night report: session {info['id']}",
        subtitle=f"Client {info['client']}, bed {info['bed'] or '?'}, {when}, {natural}, state {info['state']}.",
        start=start, hypnogram=hyp, hypnogram_label=f"{shown_kind} hypnogram", duration_s=duration, eeg=eeg,
        signals=signals, events=events, events_span_s=span, glitches=glitches, decisions=decisions, reference=ref,
        reference_label=f"{ref_kind} hypnogram", mode=mode, event_counts=counts or None, confidence=conf,
        command_counts=dict(live.command_counts) if live is not None and live.command_counts else None, notes=notes,
        decisions_latest=latest,
    )


def _hypnogram_of(row: Any) -> Hypnogram:
    stages = np.asarray(row.stages if row.stages is not None else [], dtype=np.int8)
    probs = None
    conf = row.confidence
    if conf and len(conf) == stages.size and all(isinstance(c, list | tuple) and len(c) == 5 for c in conf):
        probs = np.asarray(conf, dtype=float)
    return Hypnogram(stages, float(row.epoch_s or EPOCH_S), probs)


def _confidence_of(row: Any) -> npt.NDArray[np.float64] | None:
    conf = row.confidence
    n = len(row.stages or [])
    if not conf or len(conf) != n or not all(isinstance(c, int | float) or c is None for c in conf):
        return None
    return np.array([np.nan if c is None else float(c) for c in conf])


# --------------------------------------------------------------------------- building


def _hm(seconds: float) -> str:
    """``seconds`` in words: to the second under 10 min ('1 min 30 s', as the table's 1.50 min), else whole minutes.

    Minutes are rounded half up (Python's ``round`` rounds 1.5 and 2.5 min both to 2).
    """
    if seconds < 600:
        m, s = divmod(math.floor(seconds + 0.5), 60)
        return f"{m} min {s} s" if m and s else f"{m} min" if m or not s else f"{s} s"  # nothing: '0 min'
    m = math.floor(seconds / 60 + 0.5)
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def _num(v: float, digits: int = 1) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _stage_of(onsets: npt.NDArray[np.float64], h: Hypnogram | None) -> npt.NDArray[np.int64]:
    if h is None or not len(h):
        return np.full(onsets.size, -2, dtype=np.int64)
    idx = np.floor(onsets / h.epoch_s).astype(np.int64)
    ok = (idx >= 0) & (idx < len(h))
    out = np.full(onsets.size, -2, dtype=np.int64)
    out[ok] = h.stages[idx[ok]]
    return out


def _event_onsets(events: pd.DataFrame | None, kind: str) -> npt.NDArray[np.float64]:
    if events is None or not len(events) or "description" not in events:
        return np.zeros(0)
    return np.asarray(events.loc[events["description"] == kind, "onset"], dtype=float)


def arousal_index(events: pd.DataFrame | None, tst_min: float, counts: dict[str, int] | None = None) -> float:
    """Arousals per hour of total sleep time (NaN without sleep, or without events or their ``counts``)."""
    if not tst_min or math.isnan(tst_min):
        return math.nan
    if events is not None:
        return float(_event_onsets(events, "arousal").size / (tst_min / 60))
    if counts is not None and "arousal" in counts:
        return float(counts["arousal"] / (tst_min / 60))
    return math.nan


def _sleep_with_events(d: NightData, tst_min: float) -> float:
    """Minutes of sleep the events could come from: the hypnogram's sleep within the events' span.

    Events detected in a recording shorter than its hypnogram cover only the recording; an arousal
    index over the whole hypnogram's sleep would understate it (0 per hour for an excerpt).
    """
    h, span = d.hypnogram, d.events_span_s
    if h is None or span is None or d.events is None or h.duration - span <= h.epoch_s:
        return tst_min
    covered = h.stages[: math.ceil(span / h.epoch_s)]
    return float(np.isin(covered, (1, 2, 3, 4)).sum() * h.epoch_s / 60)


def distress_episodes(glitches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Glitches that are distress or nightmare episodes (psyche category)."""
    return [g for g in glitches if g.get("category") == "psyche" or g.get("kind") in ("distress", "nightmare")]


def _summary(d: NightData, stats: dict[str, float] | None, ai: float) -> list[str]:
    """Plain-language sentences for the client."""
    if d.hypnogram is None or stats is None:
        return ["There is no hypnogram for this night, so we cannot say how you slept."]
    if stats["TST"] == 0:
        return [f"No sleep was scored during the {_hm(60 * stats['TIB'])} in bed. If you did sleep, the recording "
                "may not have picked it up; please tell the staff."]
    out = [f"You slept {_hm(60 * stats['TST'])} of the {_hm(60 * stats['TIB'])} in bed "
           f"(sleep efficiency {stats['SE']:.0f}%; above 85% is usual for good sleepers)."]
    out.append(f"You fell asleep after {_hm(60 * stats['SOL'])} and were awake for {_hm(60 * stats['WASO'])} in "
               "total after first falling asleep.")
    out.append(f"Deep sleep (N3) lasted {_hm(60 * stats['N3'])} ({_num(stats['%N3'], 0)}% of your sleep) and dream "
               f"sleep (REM) {_hm(60 * stats['REM'])} ({_num(stats['%REM'], 0)}%).")
    if not math.isnan(ai):
        out.append(f"Your sleep was briefly interrupted about {ai:.0f} times per hour (arousal index); "
                   "fewer than 10 to 15 per hour is common.")
    distress = distress_episodes(d.glitches)
    if distress:
        out.append(f"{plural(len(distress), 'unsettled moment')} (possible bad dreams) "
                   f"{'was' if len(distress) == 1 else 'were'} noticed and handled by the program or the staff.")
    clicks = sum(1 for x in d.decisions if _action(x) == "click")
    if d.command_counts is not None:  # all night's, where the decisions are only the latest
        clicks = int(d.command_counts.get("click", 0))
    if d.mode == "record_only":
        out.append("This was a natural night: no sound stimulation was given.")
    elif clicks:
        out.append(f"The program played {clicks} soft clicks during deep sleep to support slow waves.")
    return out


def _stats_table(stats: dict[str, float]) -> Table:
    minutes = {"TIB", "SPT", "WASO", "TST", "SOL", "SOL_5min", "Lat_REM", "WAKE", "N1", "N2", "N3", "REM", "ART",
               "UNS"}
    rows = [[k, f"{v:.2f}" if not math.isnan(v) else "n/a", "min" if k in minutes else _UNITS.get(k, "")]
            for k, v in stats.items()]
    return Table(["statistic", "value", "unit"], rows, "Same definitions and numbers as 'nexus stats' (YASA).")


def _events_section(d: NightData, stats: dict[str, float] | None, ai: float) -> Section:
    from nexus.reports.plots import plot_events

    sec = Section("Events")
    if d.events is None and d.event_counts:
        sec.blocks.append(f"Arousal index: {_num(ai)} per hour of sleep. Distress episodes: "
                          f"{len(distress_episodes(d.glitches))}.")
        labels = dict(EVENT_KINDS)
        sec.blocks.append(Table(["event", "total"], [[labels.get(k, k), str(v)] for k, v in d.event_counts.items()
                                                     if k != "r_peak"],
                                "Counts from the session's summary (of the night so far while it runs). The events "
                                "themselves were not detected for this report (no recording, or written without event "
                                "detection), so there are no per-stage counts or raster."))
        return sec
    if d.events is None:
        sec.blocks.append(Note("No event table for this night: none was given or stored, and none was detected "
                                "(no recording, or detection switched off with --no-events)."))
        return sec
    h = d.hypnogram
    minutes = {lab: (stats[name] if stats else math.nan) for lab, name in zip(
        STAGE_LABELS, ("WAKE", "N1", "N2", "N3", "REM"), strict=True)}
    rows: list[list[str]] = []
    raster: list[tuple[str, npt.NDArray[np.float64]]] = []
    for kind, label in EVENT_KINDS:
        on = _event_onsets(d.events, kind)
        if kind in ("rem", "hr_surge", "movement") and not on.size:
            continue
        raster.append((label, on))
        st = _stage_of(on, h)
        cells = [label, str(on.size)]
        for code, lab in enumerate(STAGE_LABELS):
            n = int(np.count_nonzero(st == code))
            dens = n / minutes[lab] if minutes[lab] and not math.isnan(minutes[lab]) else math.nan
            cells.append(f"{n} ({_num(dens, 2)}/min)" if n else "0")
        rows.append(cells)
    distress = distress_episodes(d.glitches)
    if distress:
        raster.append(("distress episodes", np.asarray([g["onset_s"] for g in distress], dtype=float)))
    within = ""
    if stats is not None and _sleep_with_events(d, stats["TST"]) != stats["TST"]:
        within = f" (over the {_hm(60 * _sleep_with_events(d, stats['TST']))} of sleep that the recording covers)"
    sec.blocks.append(f"Arousal index: {_num(ai)} per hour of sleep{within}. Distress episodes: {len(distress)}.")
    sec.blocks.append(Table(["event", "total", *[f"in {lab}" for lab in STAGE_LABELS]], rows,
                            "Counts per stage of the hypnogram, with density per minute of that stage."))
    sec.blocks.append(Image.from_figure(plot_events(raster, d.hours, start=d.start), "event raster"))
    return sec


def _action(decision: dict[str, Any]) -> str:
    """What a decision did: its command's kind (a "scene" decision may issue a silence), else its own kind."""
    return str((decision.get("command") or {}).get("kind") or decision["kind"])


def _dreamscape_section(d: NightData) -> Section:
    from nexus.reports.plots import plot_dreamscape

    sec = Section("Dreamscape")
    kinds: dict[tuple[str, str], int] = {}
    for x in d.decisions:
        key = (x["kind"], _action(x) if (x.get("command") or {}).get("kind") else "(none)")
        kinds[key] = kinds.get(key, 0) + 1
    caption = (f"The latest {len(d.decisions)} decisions of the dreamscape controller (from "
               f"{_hm(d.decisions[0]['t_s'])} into the night); the older ones are in the report once the night has "
               "ended." if d.decisions_latest and d.decisions else
               "Every decision of the dreamscape controller this night.")
    sec.blocks.append(Table(["decision", "command issued", "count"],
                            [[k, c, str(v)] for (k, c), v in sorted(kinds.items())], caption))
    ph = np.array([float(x["inputs"].get("phase_deg", np.nan)) for x in d.decisions if _action(x) == "click"])
    ph = ph[np.isfinite(ph)]
    if ph.size:
        z = np.mean(np.exp(1j * np.radians(ph)))
        sec.blocks.append(f"CLAS: {ph.size} clicks; mean phase at the click {math.degrees(float(np.angle(z))):.0f}° "
                          f"(resultant length {abs(z):.2f}; 1 = every click at the same phase).")
    stages = d.hypnogram.stages.astype(np.int64) if d.hypnogram is not None and len(d.hypnogram) else None
    ep = d.hypnogram.epoch_s if d.hypnogram is not None else EPOCH_S
    sec.blocks.append(Image.from_figure(plot_dreamscape(d.decisions, d.hours, start=d.start, stages=stages,
                                                        epoch_s=ep), "dreamscape timeline"))
    return sec


def _epoch_sd_peak(x: npt.NDArray[np.float64], peaks: bool,
                   block: int = 64) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per epoch (row of ``x``, µV): standard deviation and, when ``peaks``, largest absolute value.

    ``x.std(axis=1)`` and ``np.abs(x).max(axis=1)`` (bit for bit: the same reduction of each row),
    ``block`` epochs at a time, so that their scratch stays in the cache instead of night-long copies.
    """
    sd = np.empty(x.shape[0])
    peak = np.empty(x.shape[0] if peaks else 0)
    for a in range(0, x.shape[0], block):
        part = x[a : a + block]
        sd[a : a + block] = part.std(axis=1)
        if peaks:
            peak[a : a + block] = np.abs(part).max(axis=1)
    return sd, peak


def signal_quality(signals: list[Signal], epoch_s: float = EPOCH_S) -> list[list[str]]:
    """Per channel: rate, % flat epochs (SD < 1 µV), % epochs beyond ±500 µV, line-noise share, verdict."""
    from nexus.reports.plots import epoch_spectra

    rows = []
    for s in signals:
        n = round(epoch_s * s.fs)
        n_ep = s.data.size // n
        if n_ep == 0:
            rows.append([s.label, f"{s.fs:g}", "n/a", "n/a", "n/a", "too short"])
            continue
        x = s.data[: n_ep * n].reshape(n_ep, n)
        # ECG and EMG are large by nature: the amplitude check is for EEG and EOG only
        brain = s.label.upper().startswith(("EEG", "EOG"))
        sd, peak = _epoch_sd_peak(x, brain)
        clean = np.isfinite(sd)  # NaN only where an epoch has missing samples: those take the slower nan-forms
        if not clean.all():
            sd[~clean] = np.nanstd(x[~clean], axis=1)
        flat = 100 * np.mean(sd < _FLAT_UV)
        large = math.nan
        if brain:
            if not clean.all():
                peak[~clean] = np.nanmax(np.abs(x[~clean]), axis=1)
            large = float(100 * np.mean(peak > _LARGE_UV))
        line = math.nan
        if s.fs >= 130:
            pick = x[:: max(1, n_ep // 60)]  # up to ~60 epochs spread over the night
            f, p2 = epoch_spectra(np.nan_to_num(pick).ravel(), s.fs, epoch_s, fmax=65.0)
            p = p2.mean(axis=0)
            band = (f >= 0.5) & (f <= 65)
            mains = ((f >= 48) & (f <= 52)) | ((f >= 58) & (f <= 62))
            total = p[band].sum()
            line = 100 * p[mains].sum() / total if total > 0 else math.nan
        bad = flat > 10 or (brain and large > 10) or (not math.isnan(line) and line > 25)
        rows.append([s.label, f"{s.fs:g}", f"{flat:.1f}", _num(large), _num(line), "check" if bad else "good"])
    return rows


def _quality_section(d: NightData) -> Section:
    sec = Section("Signal quality and glitches")
    if d.signals:
        sec.blocks.append(Table(["channel", "Hz", "% flat epochs", "% epochs > 500 µV", "% line noise", "verdict"],
                                signal_quality(d.signals, d.hypnogram.epoch_s if d.hypnogram else EPOCH_S),
                                "Flat: SD below 1 µV in a 30-s epoch; > 500 µV checked on EEG and EOG only; "
                                "line noise: share of 0.5–65 Hz power at 50/60 Hz (n/a below 130 Hz sampling). 'check' "
                                "when any exceeds 10%, 10% or 25%."))
    else:
        sec.blocks.append("No signals to assess.")
    if d.hypnogram is not None and len(d.hypnogram):
        art = int(np.count_nonzero(d.hypnogram.stages == -1))
        uns = int(np.count_nonzero(d.hypnogram.stages == -2))
        sec.blocks.append(f"Epochs scored artefact: {art}; unscored: {uns} (of {len(d.hypnogram)}).")
    if d.glitches:
        groups: dict[tuple[str, str, str], list[float]] = {}
        for g in d.glitches:
            groups.setdefault((g["category"], g["kind"], g["priority"]), []).append(float(g["duration_s"] or 0.0))
        rows = [[c, k, p, str(len(v)), _num(sum(v) / 60)] for (c, k, p), v in sorted(groups.items())]
        sec.blocks.append(Table(["category", "glitch", "priority", "count", "total min"], rows,
                                "Glitches raised by the monitor during the night."))
    elif d.mode is not None:
        sec.blocks.append("No glitch was raised during the night.")
    return sec


def build_night_report(d: NightData) -> Report:
    """Lay out a night report: summary, statistics, hypnogram, spectrogram, events, dreamscape, agreement, quality."""
    from nexus.reports.plots import plot_hypnogram, plot_spectrogram

    rep = Report(d.title, d.subtitle)
    h = d.hypnogram
    # first what does not need the events, while a background detection may still run
    hypno_img = None
    if h is not None and len(h):
        hypno_img = Image.from_figure(plot_hypnogram(
            h.stages, h.epoch_s, start=d.start, probabilities=h.probabilities, title=d.hypnogram_label,
            duration_s=d.duration_s, confidence=d.confidence), "hypnogram")
    spectrogram = Section("Spectrogram")
    if d.eeg is not None and d.eeg[1].size >= d.eeg[2] * EPOCH_S:
        label, x, fs = d.eeg
        spectrogram.blocks.append(Image.from_figure(plot_spectrogram(x, fs, start=d.start, channel=label),
                                                    "spectrogram"))
    else:
        spectrogram.blocks.append(Note("No EEG of at least 30 s: no spectrogram."))
    quality = _quality_section(d)
    d.wait_for_events()
    stats = None
    notes = list(d.notes)
    if h is not None and len(h) == 0:
        notes.append("The hypnogram is empty: no epoch was scored.")
    if h is not None and len(h):
        stats = sleep_statistics(h.stages, h.epoch_s)
        if stats["TST"] == 0:
            notes.append("No sleep was scored in this night: the statistics that need sleep are n/a.")
    ai = arousal_index(d.events, _sleep_with_events(d, stats["TST"]), d.event_counts) if stats else math.nan
    summary = rep.section("Summary")
    summary.blocks += [Note(n) for n in notes]
    summary.blocks += _summary(d, stats, ai)
    if stats is not None and h is not None:
        sec = rep.section("Sleep statistics (AASM)")
        sec.blocks.append(_stats_table(stats))
        sec = rep.section("Hypnogram")
        assert hypno_img is not None
        sec.blocks.append(hypno_img)
        if h.probabilities is None and d.confidence is None:
            sec.blocks.append("No stage probabilities with this hypnogram, so no hypnodensity.")
    rep.sections.append(spectrogram)
    rep.sections.append(_events_section(d, stats, ai))
    if d.decisions:
        rep.sections.append(_dreamscape_section(d))
    if d.reference is not None and h is not None and len(h) and len(d.reference):
        from nexus.reports.agreement import agreement
        from nexus.reports.compare import agreement_section

        try:
            res = agreement(h.stages, d.reference.stages, h.epoch_s)
        except InvalidInputError as exc:
            rep.section(f"Agreement with {d.reference_label}").blocks.append(Note(str(exc)))
        else:
            rep.sections.append(agreement_section(res, h.stages, d.reference.stages,
                                                  (d.hypnogram_label, d.reference_label), start=d.start))
    rep.sections.append(quality)
    return rep
