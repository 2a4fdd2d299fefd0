"""The glitch monitor of a lane of live sessions: technical faults and psyche episodes from the signals.

:class:`GlitchMonitor` watches ``capacity`` beds (slots) that share channel names and a sampling
rate. The facility hands it every block it hands the stager; the monitor folds blocks into 1-s
windows per session, judges each window (:mod:`nexus.monitor.technical`,
:mod:`nexus.monitor.psyche`) and turns the verdicts into **episodes** with an onset and a duration
(:mod:`nexus.monitor.episodes`), so a fault that lasts ten minutes is one glitch, not six thousand.
Everything is vectorised over sessions and channels; no Python loop runs per sample or per bed
(only per kind, and per glitch raised).

Interface (units!)
------------------
``GlitchMonitor(capacity, channels, fs, *, sessions=None, params=MonitorParams())``
    ``channels``: labels of the rows of a block; their prefixes give their role: ``EEG``/``EOG``/
    ``EMG`` (electrode faults), ``ECG`` (heart rate), ``Resp`` (breathing), ``Acc X/Y/Z``
    (movement, milli-g); others are only checked for non-finite samples. ``fs`` in Hz.
    ``sessions``: one session id per slot (default ``"slot-<i>"``).
``step(block, active, t_end_s, *, stages=None, arousals=None) -> list[Glitch]``
    ``block``: float, shape (capacity, channels, samples), in µV (Resp in arbitrary units, Acc in
    milli-g); NaN and ±inf allowed (they are reported, never raised). ``active``: bool (capacity,),
    the slots that carry a session this tick (others are ignored). ``t_end_s``: float or float
    array (capacity,), the session time in s of the end of the block. ``stages``: optional int
    (capacity,), the current stage per slot (YASA codes, -2 unknown). ``arousals``: optional
    (capacity,), arousals detected in this block per slot (the arousal-storm detector counts them).
    Returns the glitches opened or closed in this step: an episode is raised when it opens
    (``duration_s`` None) and again when it closes (same ``onset_s``, ``duration_s`` set).
    ``onset_s`` is session time in s (back-dated to the start of the evidence);
    ``evidence["raised_s"]`` is the session time when the monitor raised it.
``reset(slots, sessions=None)``
    A new session starts in ``slots``: their state is forgotten (open episodes are dropped without
    a closing glitch); ``sessions`` gives the new ids. Blocks of exact zeros before a session's
    first other sample are not judged (what a lane holds for a bed before its first chunk, e.g. a
    bed joining a running lane or taken over), for at most ``start_wait_s``: a device sending
    zeros from its start is reported after that.
``active_flags() -> bool (capacity,)``
    Slots with an open **technical** episode: the dreamscape pauses stimulation while it is set.
``psyche_flags() -> bool (capacity,)``
    Slots with an open **distress** episode: the dreamscape goes quiet or soothing.
``open_glitches() -> list[Glitch]``
    The episodes open now, as raised.
``finish(t_end_s) -> list[Glitch]``
    Close every open episode at ``t_end_s`` (end of a recording).

Triage: one channel flat, clipped or popping among healthy ones is technical (per channel); the
same burst (steps, rails, huge values) on most EEG/EOG/EMG channels at once while the
accelerometer shows movement is an arousal, not a fault, and raises no technical glitch; a
heart-rate surge in N1/N2/R with faster breathing is distress (chin EMG and movement are kept as
evidence; read from ECG, Resp, Acc and EMG only, so it is found during an EEG fault).

Cost: a step costs a fixed number of NumPy passes over the block; a slot's window closes once per
second, so the per-window work spreads over the ticks when sessions started at different times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError
from nexus.core.montage import channel_role
from nexus.monitor.episodes import Hysteresis
from nexus.monitor.features import (
    LINE_HZ,
    BoolArray,
    FloatArray,
    IntArray,
    WindowAccumulator,
    WindowFeatures,
    channel_type,
)
from nexus.monitor.glitch import GLITCH_KINDS, Glitch
from nexus.monitor.psyche import PsycheParams, PsycheState, distress_evidence, storm_evidence
from nexus.monitor.technical import CHANNEL_KINDS, SESSION_KINDS, TechnicalParams, classify, evidence

#: (bad windows in a row to open, good windows in a row to close) per kind; windows of 1 s.
HYSTERESIS: dict[str, tuple[int, int]] = {
    "bad_samples": (1, 5),
    "dropped_samples": (1, 3),
    "flat_line": (2, 5),
    "electrode_off": (2, 5),
    "implausible_amplitude": (1, 5),
    "clipping": (1, 30),
    "electrode_pop": (1, 12),
    "line_noise": (3, 5),
    "clock_jitter": (2, 10),
    "distress": (1, 20),  # confirmed by the psyche rules themselves (runs of windows)
    "arousal_storm": (1, 60),
}


@dataclass(frozen=True)
class MonitorParams:
    """Settings of the glitch monitor: window length (s), thresholds, episode hysteresis."""

    window_s: float = 1.0
    technical: TechnicalParams = field(default_factory=TechnicalParams)
    psyche: PsycheParams = field(default_factory=PsycheParams)
    hysteresis: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(HYSTERESIS))
    arousal_share: float = 0.75  # share of EEG/EOG/EMG channels in one burst (with movement) that makes it an arousal
    start_wait_s: float = 5.0  # exact zeros before a session's first other sample are not judged, for this long


class GlitchMonitor:
    """Batched streaming glitch monitor of one lane; see the module docstring for the interface."""

    def __init__(
        self,
        capacity: int,
        channels: Sequence[str],
        fs: float,
        *,
        sessions: Sequence[str] | None = None,
        params: MonitorParams | None = None,
    ) -> None:
        if capacity < 1:
            raise InvalidInputError(f"Invalid value for 'capacity': expected >= 1, got {capacity}.")
        if not channels:
            raise InvalidInputError("Invalid value for 'channels': give at least one channel name.")
        if not np.isfinite(fs) or fs <= 0:
            raise InvalidInputError(f"Invalid value for 'fs': expected > 0 Hz, got {fs}.")
        self.capacity, self.channels, self.fs = int(capacity), tuple(channels), float(fs)
        self.params = p = params or MonitorParams()
        self.sessions = list(sessions) if sessions is not None else [f"slot-{i}" for i in range(capacity)]
        if len(self.sessions) != capacity:
            raise InvalidInputError(f"Got {len(self.sessions)} session ids for a lane of {capacity}.")
        types = [channel_type(c) for c in self.channels]
        self.exg = np.array([t == "exg" for t in types])
        self.ecg = np.array([t == "ecg" for t in types])
        mon = np.flatnonzero(self.exg | self.ecg)
        self.window = max(round(p.window_s * self.fs), 1)
        line = tuple(f for f in LINE_HZ if self.fs > 2.2 * f)
        self._acc = WindowAccumulator(capacity, len(self.channels), self.fs, self.window, line, mon)

        def first(kind: str, prefix: str = "") -> int:
            return next(
                (
                    i
                    for i, (t, c) in enumerate(zip(types, self.channels, strict=True))
                    if t == kind and c.upper().startswith(prefix)
                ),
                -1,
            )

        acc_axes = np.array([i for i, t in enumerate(types) if t == "acc"], dtype=np.int64)
        eeg = np.array([i for i, c in enumerate(self.channels) if channel_role(c) == "eeg"], dtype=np.int64)
        self._psy = PsycheState(
            capacity, self.fs, first("ecg"), first("resp"), first("exg", "EMG"), acc_axes, p.psyche, eeg
        )
        C = len(self.channels)
        hy = p.hysteresis
        self._chan = {k: Hysteresis(capacity, C, *hy[k]) for k in CHANNEL_KINDS}
        self._sess = {k: Hysteresis(capacity, 1, *hy[k]) for k in (*SESSION_KINDS, "distress", "arousal_storm")}
        self._last_pop = np.full((capacity, C), -np.inf)
        self._rail_hi = np.full((capacity, C), np.nan)
        self._rail_lo = np.full((capacity, C), np.nan)
        self._prev_flatish = np.zeros((capacity, C), dtype=bool)
        self._last_clip = np.full((capacity, C), -np.inf)
        self._plateau = np.zeros((capacity, C), dtype=bool)  # a long plateau on a high extreme in the last window
        self._open: dict[tuple[int, str, int], Glitch] = {}
        # a session begins at its first sample that is not exactly 0: a lane fills what it holds for a bed before
        # its first chunk with zeros (a bed joining a running lane, a bed taken over); no device lost those
        self._begun = np.zeros(capacity, dtype=bool)
        self._waited = np.zeros(capacity, dtype=np.int64)  # samples of zeros skipped since the reset
        self._wait_max = round(p.start_wait_s * self.fs)

    # ------------------------------------------------------------------ lane management
    def reset(self, slots: npt.ArrayLike, sessions: Sequence[str] | None = None) -> None:
        """A new session starts in ``slots`` (ids from ``sessions``); their state is forgotten."""
        s = np.atleast_1d(np.asarray(slots, dtype=np.int64))
        self._acc.reset(s)
        self._psy.reset(s)
        for h in (*self._chan.values(), *self._sess.values()):
            h.reset(s)
        self._last_pop[s] = -np.inf
        self._rail_hi[s] = np.nan
        self._rail_lo[s] = np.nan
        self._prev_flatish[s] = False
        self._last_clip[s] = -np.inf
        self._plateau[s] = False
        self._begun[s] = False
        self._waited[s] = 0
        drop = set(int(i) for i in s)
        self._open = {k: g for k, g in self._open.items() if k[0] not in drop}
        if sessions is not None:
            if len(sessions) != s.size:
                raise InvalidInputError(f"Got {len(sessions)} session ids for {s.size} slots.")
            for i, sid in zip(s, sessions, strict=True):
                self.sessions[int(i)] = str(sid)

    def active_flags(self) -> BoolArray:
        """Slots with an open technical episode (stimulation pauses), shape (capacity,)."""
        out = np.zeros(self.capacity, dtype=bool)
        for h in self._chan.values():
            out |= h.open.any(axis=1)
        for k in SESSION_KINDS:
            out |= self._sess[k].open[:, 0]
        return out

    def psyche_flags(self) -> BoolArray:
        """Slots with an open distress episode, shape (capacity,)."""
        return self._sess["distress"].open[:, 0].copy()

    def open_glitches(self) -> list[Glitch]:
        """The episodes open now (as raised)."""
        return list(self._open.values())

    # ------------------------------------------------------------------ the step
    def step(
        self,
        block: npt.ArrayLike,
        active: npt.ArrayLike,
        t_end_s: npt.ArrayLike,
        *,
        stages: npt.ArrayLike | None = None,
        arousals: npt.ArrayLike | None = None,
    ) -> list[Glitch]:
        """Take one block of every slot; return the glitches opened or closed (see the module docstring)."""
        x = np.asarray(block, dtype=np.float64)
        S, C = self.capacity, len(self.channels)
        if x.ndim != 3 or x.shape[:2] != (S, C):
            raise InvalidInputError(f"Invalid block: expected shape ({S}, {C}, samples), got {x.shape}.")
        act = np.broadcast_to(np.asarray(active, dtype=bool), (S,))
        rows = np.flatnonzero(act)
        t_end = np.broadcast_to(np.asarray(t_end_s, dtype=np.float64), (S,))
        if stages is not None:
            st = np.broadcast_to(np.asarray(stages, dtype=np.int64), (S,))
            self._psy.set_stage(rows, st[rows], t_end[rows])
        if arousals is not None:
            ar = np.nan_to_num(np.broadcast_to(np.asarray(arousals, dtype=np.float64), (S,)))
            self._psy.add_arousals(rows, ar[rows])
        if rows.size == 0 or x.shape[-1] == 0:
            return []
        if not self._begun[rows].all():  # only right after a reset: a block of exact zeros before the first sample
            rows = self._skip_leading_zeros(x, rows)
            if rows.size == 0:
                return []
        xr = x if rows.size == S else x[rows]
        bad = self._acc.add(xr, rows)
        if bad.any():
            xr = np.nan_to_num(xr, nan=0.0, posinf=0.0, neginf=0.0)
        self._psy.add_block(xr, rows)
        ready = self._acc.ready(rows)
        if ready.size == 0:
            return []
        return self._windows(ready, t_end[ready])

    def _skip_leading_zeros(self, x: FloatArray, rows: IntArray) -> IntArray:
        """``rows`` without the sessions whose block is all exact zeros and who have had no other sample yet.

        A session that sends nothing but zeros for ``start_wait_s`` begins anyway (its zeros are then judged).
        """
        wait = rows[~self._begun[rows]]
        with np.errstate(invalid="ignore"):
            some = (x[wait] != 0).any(axis=(1, 2))  # NaN counts as a sample (bad_samples judges it)
        over = self._waited[wait] >= self._wait_max
        self._begun[wait] = some | over
        skip = wait[~self._begun[wait]]
        self._waited[skip] += x.shape[-1]
        return rows[self._begun[rows]]

    def finish(self, t_end_s: npt.ArrayLike) -> list[Glitch]:
        """Close every open episode at ``t_end_s`` (session time in s, scalar or per slot)."""
        t_end = np.broadcast_to(np.asarray(t_end_s, dtype=np.float64), (self.capacity,))
        out = []
        for (slot, kind, col), g in sorted(self._open.items(), key=lambda kv: (kv[1].onset_s, kv[0])):
            out.append(self._closed(g, float(t_end[slot])))
            h = self._chan[kind] if col >= 0 else self._sess[kind]
            h.open[slot, max(col, 0)] = False
        self._open.clear()
        return out

    # ------------------------------------------------------------------ windows → episodes
    def _windows(self, rows: IntArray, t1: FloatArray) -> list[Glitch]:
        p = self.params
        f = self._acc.take(rows, t1)
        v = self._psy.window(f)
        hi, lo = self._rail_hi[rows], self._rail_lo[rows]
        masks, sess = classify(f, self.exg, self.ecg, p.technical, (hi, lo))
        # a channel held at the rail it is clipping on (its clipping episode open) is saturated, not stuck
        pinned = masks["flat_line"] & self._chan["clipping"].open[rows] & ((f.mx == hi) | (f.mn == lo))
        masks["flat_line"] &= ~pinned
        # a channel going flat, lost or off (or coming back) makes a step and a plateau in that
        # window and the next: neither is a pop nor a rail
        flatish = masks["dropped_samples"] | masks["flat_line"] | masks["electrode_off"] | masks["bad_samples"]
        flatish |= sess["dropped_samples"][:, None]
        near = flatish | self._prev_flatish[rows]
        self._prev_flatish[rows] = flatish
        masks["clipping"] &= ~near
        masks["electrode_pop"] &= ~near
        # a rail seen twice within clip_pair_s (the first time as a candidate: clip_samples on an
        # extreme), or both rails of a symmetric range in one window: one window of plateau is also
        # what a channel going flat at a value looks like in the window before it is flat
        ties = p.technical.clip_samples
        clips = masks["clipping"]
        moving = self.exg[None, :] & (f.mx > f.mn) & ~near
        candidate = moving & ((f.at_mx >= ties) | (f.at_mn >= ties))
        both = moving & (f.at_mx >= ties) & (f.at_mn >= ties) & (f.mx > 0) & (f.mx == -f.mn)
        # a long plateau on a high extreme is a rail touched once, if the channel moves on in the next window
        # (a channel going flat at a value makes the same plateau in the window before it is flat)
        pt = p.technical
        plateau = moving & (((f.at_mx >= pt.clip_plateau) & (f.mx >= pt.clip_rail_uv))
                            | ((f.at_mn >= pt.clip_plateau) & (f.mn <= -pt.clip_rail_uv)))
        touched = self._plateau[rows] & ~flatish
        self._plateau[rows] = plateau
        both = (both | touched) & ~masks["implausible_amplitude"]
        last_clip = self._last_clip[rows]
        masks["clipping"] = (clips & (f.t0[:, None] - last_clip <= p.technical.clip_pair_s)) | both | pinned
        self._last_clip[rows] = np.where(clips | candidate, f.t0[:, None], last_clip)
        self._rail_hi[rows] = np.where((f.at_mx >= ties) & (f.mx > f.mn) & ~near, f.mx, hi)
        self._rail_lo[rows] = np.where((f.at_mn >= ties) & (f.mx > f.mn) & ~near, f.mn, lo)
        # triage: one burst on most EEG/EOG/EMG channels with movement is an arousal, not electrodes
        n_exg = int(self.exg.sum())
        if n_exg >= 2:
            burst = masks["implausible_amplitude"] | masks["clipping"] | masks["electrode_pop"]
            wide = burst[:, self.exg].sum(axis=1) >= max(2.0, p.arousal_share * n_exg)
            arousal = wide & v["movement"]
            if arousal.any():
                for k in ("implausible_amplitude", "clipping", "electrode_pop"):
                    masks[k][arousal] = False
        # a pop is an episode when a second one follows within pop_pair_s
        pops = masks["electrode_pop"]
        last = self._last_pop[rows]
        paired = pops & (f.t0[:, None] - last <= p.technical.pop_pair_s)
        self._last_pop[rows] = np.where(pops, f.t0[:, None], last)
        masks["electrode_pop"] = paired
        out: list[Glitch] = []
        # an episode is back-dated to the rail seen first only when that sighting is within clip_pair_s
        # (symmetric rails in the first window have no earlier sighting: -inf before)
        clip_hint = np.where(f.t0[:, None] - last_clip <= p.technical.clip_pair_s, last_clip, np.inf)
        for kind in CHANNEL_KINDS:
            hint = last if kind == "electrode_pop" else clip_hint if kind == "clipping" else None
            opened, closed, onset, end = self._chan[kind].update(rows, masks[kind], f.t0, hint)
            out += self._emit(kind, True, rows, f, opened, closed, onset, end, v)
        for kind in SESSION_KINDS:
            opened, closed, onset, end = self._sess[kind].update(rows, sess[kind][:, None], f.t0)
            out += self._emit(kind, False, rows, f, opened, closed, onset, end, v)
        for kind, key in (("distress", "distress"), ("arousal_storm", "storm")):
            # a distress episode starts where the run of windows that confirmed it began
            hint = (f.t0 - (np.maximum(v["run"], 1) - 1) * p.window_s)[:, None] if kind == "distress" else None
            opened, closed, onset, end = self._sess[kind].update(rows, v[key][:, None], f.t0, hint)
            out += self._emit(kind, False, rows, f, opened, closed, onset, end, v)
        return out

    def _emit(
        self,
        kind: str,
        per_channel: bool,
        rows: IntArray,
        f: WindowFeatures,
        opened: BoolArray,
        closed: BoolArray,
        onset: FloatArray,
        end: FloatArray,
        v: dict[str, Any],
    ) -> list[Glitch]:
        if not (opened.any() or closed.any()):
            return []
        out = []
        for i, c in zip(*np.nonzero(closed), strict=True):
            key = (int(rows[i]), kind, int(c) if per_channel else -1)
            g = self._open.pop(key, None)
            if g is not None:
                out.append(self._closed(g, float(end[i, c])))
        for i, c in zip(*np.nonzero(opened), strict=True):
            slot = int(rows[i])
            ch = int(c) if per_channel else -1
            if kind in ("distress",):
                ev = distress_evidence(v, int(i), self.params.psyche)
            elif kind == "arousal_storm":
                ev = storm_evidence(v, int(i), self.params.psyche)
            else:
                ev = evidence(kind, f, int(i), ch if ch >= 0 else None, self.params.technical)
            ev["raised_s"] = round(float(f.t1[i]), 3)
            name = self.channels[ch] if ch >= 0 else None
            where = f" on {name}" if name else ""
            g = Glitch(
                self.sessions[slot],
                round(float(onset[i, c]), 3),
                kind,
                f"{kind}{where}: {GLITCH_KINDS[kind][2]}.",
                name,
                None,
                ev,
            )
            self._open[(slot, kind, ch)] = g
            out.append(g)
        return out

    @staticmethod
    def _closed(g: Glitch, end: float) -> Glitch:
        return Glitch(
            g.session, g.onset_s, g.kind, g.message, g.channel, round(max(end - g.onset_s, 0.0), 3), dict(g.evidence)
        )
