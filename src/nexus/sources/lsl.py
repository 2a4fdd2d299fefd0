"""Lab Streaming Layer inlets as live sources.

Importing this module points liblsl at the ``lsl_api.cfg`` shipped next to it (through the
``LSLAPICFG`` environment variable, unless the user set one), whose wider ``PortRange`` lets a
resolver find all of the > 30 outlets a facility runs on one host. liblsl reads that file once,
on its first use, so import :mod:`nexus.sources.lsl` before creating any pylsl object.

Samples are placed on the session's grid by count: LSL delivers every pushed sample once, so a
sample received is a sample recorded, whatever its timestamp. Timestamps (LSL times of the sender
plus the inlet's clock offset, :meth:`pylsl.StreamInlet.time_correction`) only tell where samples
are missing: an outlet that lets LSL stamp its chunks stamps the last sample of each with the push
time and back-computes the others from the nominal rate, so a push delayed under load looks like a
pause followed by samples going backwards; those samples are all kept, in order, and a gap is
marked only where the stream's timing stays ahead of the count (see :class:`LslSource`). A stream
that goes silent is reported by :attr:`LslSource.silent_s` and recovers by itself when it returns
(the inlet is opened with ``recover=True``).

Once opened, an inlet belongs to its :class:`~nexus.sources.lsl_reader.InletReader` thread, which
makes every liblsl call on it (pulls, clock offsets, closing): :meth:`LslSource.read` only takes what
the reader queued, so the facility's loop never waits in liblsl and Ctrl-C is always handled.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.clock import Clock, RealClock
from nexus.core.errors import InvalidInputError, NotFoundError
from nexus.core.log import logger
from nexus.core.types import Chunk
from nexus.sources.base import Source
from nexus.sources.channels import ChannelMap, check_rate, map_channels
from nexus.sources.lsl_reader import InletReader

#: The liblsl configuration shipped with Nexus (wider PortRange for many outlets on one host).
LSL_CONFIG = Path(__file__).with_name("lsl_api.cfg")


def configure_lsl() -> Path:
    """Point liblsl at Nexus' ``lsl_api.cfg`` unless ``LSLAPICFG`` is already set; return the file used."""
    os.environ.setdefault("LSLAPICFG", str(LSL_CONFIG))
    return Path(os.environ["LSLAPICFG"])


configure_lsl()


def resolve_streams(
    name: str | None = None, type: str | None = None, *, timeout: float = 2.0, minimum: int = 1
) -> list[Any]:
    """Find LSL streams by name and/or type.

    Parameters
    ----------
    name, type : str, optional
        Stream name and content type (e.g. ``"EEG"``); at least one of them.
    timeout : float
        Longest wait, in seconds.
    minimum : int
        Return as soon as this many streams are found.

    Returns
    -------
    list of pylsl.StreamInfo
        Possibly empty.
    """
    import pylsl

    if name is None and type is None:
        raise InvalidInputError("Give the LSL stream's name or type (or both) to resolve it.")
    for what, val in (("name", name), ("type", type)):
        if val is not None and "'" in val:
            raise InvalidInputError(f"Invalid LSL stream {what} {val!r}: it must not contain quotes.")
    parts = [f"{k}='{v}'" for k, v in (("name", name), ("type", type)) if v is not None]
    return list(pylsl.resolve_bypred(" and ".join(parts), minimum=minimum, timeout=timeout))


class LslSource(Source):
    """A session fed by one LSL stream.

    Parameters
    ----------
    session : str
        The session this source feeds.
    name, type : str, optional
        Stream to resolve (by name and/or type); the first match is used.
    info : pylsl.StreamInfo, optional
        An already resolved stream (then ``name`` and ``type`` are not needed and nothing is resolved).
    channels : sequence of str, optional
        Channel names; default: mapped from the stream's description (:func:`~nexus.sources.channels.map_channels`:
        labels with their role prefix, units converted to µV).
    expected_channels : int, optional
        Refuse a stream with another channel count (catches the wrong device at the edge).
    require_eeg : bool
        Refuse a stream with no EEG channel, or sampled below 100 Hz (a facility bed must be stageable).
    timeout : float
        How long :meth:`open` waits for the stream, in seconds.
    clock : Clock, optional
        Used to measure silence (default: a :class:`RealClock`).
    max_samples : int
        Most samples pulled per :meth:`read`.
    jitter_s : float
        Samples stamped at most this many seconds after their place by count are contiguous at once
        (LSL stamps chunks, not samples; their jitter must not cut or duplicate samples), in seconds.
    settle_s : float
        Samples stamped further ahead of their place by count are held until the stream's timing is
        clear: they follow on without a gap as soon as a later sample is back on time (the push was
        late), and start after a gap when their lead has not shrunk for this long (samples are missing),
        in seconds of the source's clock.
    confirm_s, confirm_arrivals : float, int
        Held samples start after their gap sooner than ``settle_s`` when at least ``confirm_arrivals``
        later pulls brought samples without cutting their lead, over at least ``confirm_s`` seconds of
        the source's clock: a late push is followed within a push interval by a sample back on time,
        while after a real loss the stream goes on at the same lead. Silence alone waits ``settle_s``.
    envelope_s : float
        The line follows the earliest stamps of the samples placed over this long (a device whose
        clock drifts against the nominal rate is followed; a stamp can only be late), in seconds.
    jump_s : float
        A step forward of the timestamps that leaves them this many seconds ahead of the host's clock
        (corrected by the offset), or a chunk this far behind the last one, is a clock jump of the device
        (re-anchored, reported), not a gap, in seconds.

    Notes
    -----
    Samples are placed on the session's grid by count, against a *line*: the time the next sample
    is due at, from the earliest stamps of the samples placed over the last ``envelope_s`` (a
    timestamp is never earlier than its sample, so the lower envelope of the stamps is the device's
    timing; drift of the device against the nominal rate moves the line with it). A sample stamped
    at most ``jitter_s`` after the line follows on at once, and so does every sample before it
    (whatever their stamps: a push delayed under load, or a backlog pushed in a burst, stamps them
    late or out of order). Samples all stamped further ahead are held; when the earliest of them has
    stayed ahead for ``settle_s``, or over ``confirm_arrivals`` later pulls and ``confirm_s`` (the
    stream paused or was restarted, or the device lost samples), they start after that whole number
    of missing samples, which the journal records as a gap. The inlet's clock offset
    (:meth:`pylsl.StreamInlet.time_correction`, refreshed every ``offset_every_s``) is added to the
    sender's timestamps; every offset measured is kept in :attr:`offsets`, and :meth:`clock_stats`
    reports the offset drift and the drift of the sender's timestamps against the host's clock.
    """

    def __init__(
        self,
        session: str,
        *,
        name: str | None = None,
        type: str | None = None,
        info: Any = None,
        channels: tuple[str, ...] | None = None,
        expected_channels: int | None = None,
        require_eeg: bool = False,
        timeout: float = 5.0,
        clock: Clock | None = None,
        max_samples: int = 65536,
        jitter_s: float = 0.05,
        jump_s: float = 0.5,
        offset_every_s: float = 5.0,
        settle_s: float = 1.0,
        confirm_s: float = 0.25,
        confirm_arrivals: int = 2,
        envelope_s: float = 1.0,
    ) -> None:
        if name is None and type is None and info is None:
            raise InvalidInputError("Give the LSL stream's name or type (or both) for an LslSource.")
        self.session = session
        self.name, self.type = name, type
        self._info = info
        self.timeout = check_number("timeout", timeout, gt=0, unit="s")
        self.expected_channels = expected_channels
        self.require_eeg = require_eeg
        self.clock = clock or RealClock()
        self.max_samples = int(max_samples)
        self.jitter_s = check_number("jitter_s", jitter_s, ge=0, unit="s")
        self.jump_s = check_number("jump_s", jump_s, gt=0, unit="s")
        self.offset_every_s = check_number("offset_every_s", offset_every_s, gt=0, unit="s")
        self.settle_s = check_number("settle_s", settle_s, ge=0, unit="s")
        self.confirm_s = check_number("confirm_s", confirm_s, ge=0, unit="s")
        self.confirm_arrivals = int(confirm_arrivals)
        self.envelope_s = check_number("envelope_s", envelope_s, gt=0, unit="s")
        self._given_channels = tuple(channels) if channels else ()
        self.channels = self._given_channels
        self.mapping: ChannelMap | None = None
        self.fs = 0.0
        self.source_id = ""
        self._inlet: Any = None
        self._reader: InletReader | None = None
        self._t_first: float | None = None
        self._t_last = -np.inf  # last stamp received (after re-anchoring), s
        self._line = 0.0  # the line's offset: the sample at _pos is due at _t_first + _pos / fs + _line, s
        self._envelope: deque[tuple[int, float]] = deque()  # (end position, lowest offset) per placed batch
        self._held: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = []  # (block, stamps)
        self._held_n = 0
        self._lead: float | None = None  # earliest lead of the held samples over the line, s
        self._lead_at = 0.0  # clock time that lead was last cut by more than a sample
        self._lead_seen = 0  # pulls with samples since then that left the lead as it was
        self._pos = 0  # session sample index of the next sample placed
        self._seq = 0
        self._last_data_at: float | None = None
        self._pending: deque[Chunk] = deque()
        self._jump = 0.0  # total re-anchoring of the sender's clock (sum of the jumps), s
        self.backwards = 0
        """Samples stamped more than ``jitter_s`` before their place by count (kept, in order)."""
        self.offset_s = 0.0
        """Last clock offset of the sender, in seconds (added to its timestamps)."""
        self.offsets: list[tuple[float, float, float]] = []
        """Every clock offset measured: (host LSL time s, offset s, session time s)."""
        self.jumps: list[dict[str, float]] = []
        """Clock jumps of the sender: session time, size (s); not yet taken by the facility are in ``new_jumps``."""
        self.new_jumps: list[dict[str, float]] = []
        self.gaps = 0
        """Times the stream resumed after a pause (each a gap on the session's sample grid)."""
        self._lag_win: list[tuple[float, float]] = []  # (host window start, min lag) per window
        self._lag_cur: tuple[float, float] | None = None

    def _what(self) -> str:
        if self._info is not None:
            return f"LSL stream '{self._info.name()}'"
        return "LSL stream with " + " and ".join(f"{k} '{v}'" for k, v in (("name", self.name), ("type", self.type))
                                                  if v)

    def open(self) -> None:
        """Resolve the stream (unless given), open an inlet and map its channels.

        Raises :class:`NotFoundError` when there is no such stream, :class:`InvalidInputError` when its
        channel count, rate, units or channels are refused.
        """
        if self._inlet is not None:
            return
        import pylsl

        what = self._what()
        info = self._info
        if info is None:
            found = resolve_streams(self.name, self.type, timeout=self.timeout)
            if not found:
                raise NotFoundError(
                    f"No {what} found within {self.timeout:g} s. Check that the device or relay "
                    "is streaming and on this network."
                )
            info = found[0]
        n_ch, fs = info.channel_count(), info.nominal_srate()
        if self.require_eeg:
            check_rate(fs, what)
        elif fs <= 0:
            raise InvalidInputError(f"{what} has an irregular rate; Nexus needs a regular rate.")
        if self.expected_channels is not None and n_ch != self.expected_channels:
            raise InvalidInputError(
                f"{what} has {n_ch} channels, expected {self.expected_channels}. Check the device montage."
            )
        if self.fs and float(fs) != self.fs:  # reopened after a loss: it must be the same stream layout
            raise InvalidInputError(f"{what} came back at {fs:g} Hz instead of {self.fs:g} Hz.")
        inlet = pylsl.StreamInlet(info, max_buflen=360, recover=True)
        inlet.open_stream(timeout=self.timeout)
        try:
            full = inlet.info(timeout=self.timeout)
            labels, types, units = _describe(full, n_ch)
            mapping = map_channels(labels, types, units, n_channels=n_ch, what=what,
                                   default_type=str(info.type() or "EEG"), require_eeg=self.require_eeg)
        except Exception:
            inlet.close_stream()
            raise
        if self._given_channels:
            if len(self._given_channels) != n_ch:
                inlet.close_stream()
                raise InvalidInputError(f"{len(self._given_channels)} channel names given for an LSL stream of "
                                        f"{n_ch} channels.")
            mapping = ChannelMap(self._given_channels, mapping.scale, mapping.units)
        if self.channels and self.mapping is not None and mapping.names != self.channels:
            inlet.close_stream()
            raise InvalidInputError(f"{what} came back with other channels ({', '.join(mapping.names)}).")
        self.mapping, self.channels = mapping, mapping.names
        self.fs = float(fs)
        self.source_id = str(info.source_id())
        host = pylsl.local_clock()
        try:
            self._note_offset(host, float(inlet.time_correction(timeout=1.0)))
        except Exception as exc:  # the sender may be gone for a moment: measured again by the reader
            logger.debug("LSL time correction failed for %s: %s", self.session, exc)
            host = -np.inf
        self._inlet = inlet
        self._reader = InletReader(inlet, self.session, max_samples=self.max_samples,
                                   offset_every_s=self.offset_every_s, offset_at=host)

    def _note_offset(self, host: float, offset: float) -> None:
        self.offset_s = offset
        self.offsets.append((host, offset, self._pos / self.fs if self.fs else 0.0))

    @property
    def held(self) -> int:
        """Samples pulled and held until the stream's timing tells whether a gap comes before them."""
        return self._held_n

    @property
    def silent_s(self) -> float:
        """Seconds since the last sample arrived (0 before the first one)."""
        if self._last_data_at is None:
            return 0.0
        return max(0.0, self.clock.now() - self._last_data_at)

    def read(self) -> Chunk | None:
        """Pull what has arrived; ``None`` when nothing is ready.

        Samples are placed on the session's grid by count (see the class notes); none is dropped.
        A clock jump is re-anchored and listed in :attr:`new_jumps`. Values are in µV (converted from
        the stream's units).
        """
        if self._pending:
            return self._pending.popleft()
        if self._inlet is None:
            self.open()
        if not self._take() and self._held_n:  # nothing new: held samples may have waited long enough
            self._settle()
        return self._pending.popleft() if self._pending else None

    def _take(self) -> bool:
        """Place what the reader queued (samples, offsets; a failed pull is raised); True when samples came."""
        assert self._reader is not None
        got, error = False, None
        for item in self._reader.take():  # all of them first: samples queued after an error are kept
            if item[0] == "data":
                self._arrived(item[1], item[2], item[3])
                got = True
            elif item[0] == "offset":
                self._note_offset(item[1], item[2])
            elif error is None:
                error = item[1]
        if error is not None:
            raise error
        return got

    def _arrived(self, block: npt.NDArray[np.float64], stamps: npt.NDArray[np.float64], host: float) -> None:
        """Hold one pulled block (channels x samples, the stream's units) with its stamps; place what can be."""
        t = stamps + (self.offset_s + self._jump)
        fs = self.fs
        started = self._t_first is not None
        if started and t[-1] < self._t_last - self.jump_s:  # the whole chunk lies in the past: the clock went back
            self._note_jump(float(t[0]) - (self._t_last + 1.0 / fs), 0)
            t -= t[0] - (self._t_last + 1.0 / fs)
        if self.mapping is not None:
            self.mapping.apply(block)
        # steps beyond one sample period: from the last chunk to this one, and inside this one
        prev = np.concatenate([[self._t_last], t]) if started else t
        excess = np.diff(prev) - 1.0 / fs
        if not started:
            excess = np.concatenate([[0.0], excess])
            self._t_first = float(t[0])
        # a step forward that puts the (offset-corrected) stamps ahead of the host's clock: no sample can
        # be stamped after it arrived, so the sender's clock jumped forward (a pause leaves them behind)
        if (excess > self.jump_s).any():
            floor = max(0.0, self._lag_cur[1]) if self._lag_cur is not None else 0.0
            ahead = t - host + floor  # how far the stamps ran ahead of the host (arrival latency taken out)
            # the whole step is the jump unless the step is clearly longer (a pause as well: it stays a gap)
            size = np.where(excess - ahead <= self.jump_s, excess, ahead)
            jumps = (excess > self.jump_s) & (ahead > self.jump_s)
            if jumps.any():
                for i in np.flatnonzero(jumps):
                    self._note_jump(float(size[i]), int(i))
                t = t - np.cumsum(np.where(jumps, size, 0.0))
        self._held.append((block, t))
        self._held_n += t.size
        self._t_last = float(t[-1])
        self._last_data_at = self.clock.now()
        self._track_lag(host, host - float(t[-1]))
        self._settle(arrived=True)

    def flush(self) -> list[Chunk]:
        """Every sample pulled and not handed out yet, placed now (the source is about to close).

        What the reader has pulled is taken first. Held samples are all stamped ahead of their place by
        count; with no later sample to tell, they start after the gap their earliest stamp says. Nothing
        new is pulled from the stream.
        """
        if self._reader is not None:
            self._take()
        if self._held_n:
            self._settle(force=True)
        out = list(self._pending)
        self._pending.clear()
        return out

    def _settle(self, force: bool = False, arrived: bool = False) -> None:
        """Place the held samples that can be placed (see the class notes); vectorised over them.

        ``force``: place them all now (the source closes); ``arrived``: called for a pull that brought samples.
        """
        fs, t0 = self.fs, self._t_first
        assert t0 is not None  # samples are held only after the first one came
        while self._held_n:
            t = np.concatenate([h[1] for h in self._held]) if len(self._held) > 1 else self._held[0][1]
            due = t0 + self._line + (self._pos + np.arange(t.size)) / fs  # places by count, s
            r = t - due  # lead of each stamp over its place by count, s
            lead = np.minimum.accumulate(r[::-1])[::-1]  # earliest lead from each sample on (non-decreasing)
            k = int(np.searchsorted(lead, self.jitter_s, side="right"))
            if k:  # up to the last sample back on time, all follow on: none of them can be after a gap
                self._place(k, r[:k])
                self._lead = None  # samples still held after them are judged from now on
                continue
            # every held sample is ahead: samples are missing, or the push was late (its lead shrinks soon)
            now = self.clock.now()
            best = float(lead[0])
            if self._lead is None or best < self._lead - 1.0 / fs:
                self._lead, self._lead_at, self._lead_seen = best, now, 0
            elif arrived:  # more samples came and the lead held: the stream goes on after a loss
                self._lead_seen += 1
                arrived = False
            waited = now - self._lead_at
            clear = waited >= self.settle_s or (self._lead_seen >= self.confirm_arrivals and waited >= self.confirm_s)
            if not force and not clear and self._held_n < 60 * fs:
                return
            gap = round(best * fs)
            if gap:
                self._pos += gap
                self.gaps += 1
            self._line += best - gap / fs  # the line moves to the held samples' timing; they follow on next round
            self._envelope.clear()
            self._lead = None

    def _place(self, k: int, r: npt.NDArray[np.float64]) -> None:
        """Hand out the first ``k`` held samples contiguously; ``r``: their stamps' lead over the line, s."""
        fs, left = self.fs, k
        while left:
            block, t = self._held[0]
            n = t.size
            if n > left:
                self._held[0] = (np.ascontiguousarray(block[:, left:]), t[left:])
                block, n = np.ascontiguousarray(block[:, :left]), left
            else:
                self._held.pop(0)
            self._pending.append(Chunk(self.session, self._pos / fs, fs, block, self.channels, self._seq))
            self._seq += 1
            self._pos += n
            left -= n
        self._held_n -= k
        self.backwards += int((r < -self.jitter_s).sum())
        sane = r[r > -self.jump_s]  # a wild stamp far in the past does not move the line
        if sane.size:
            self._envelope.append((self._pos, self._line + float(sane.min())))
        while self._envelope and self._envelope[0][0] < self._pos - self.envelope_s * fs:
            self._envelope.popleft()
        if self._envelope:  # the lower envelope of the stamps placed over the last envelope_s
            self._line = min(e for _, e in self._envelope)

    def _note_jump(self, size: float, index: int) -> None:
        """Record a jump of the sender's clock by ``size`` s before sample ``index`` of this chunk."""
        self._jump -= size
        ev = {"t_s": (self._pos + self._held_n + index) / self.fs, "jump_s": size}
        self.jumps.append(ev)
        self.new_jumps.append(ev)
        self._lag_win.clear()  # the lag series restarts after a jump
        self._lag_cur = None

    def _track_lag(self, host: float, lag: float, window_s: float = 1.0) -> None:
        """Lower envelope of (host time - sender time) per window: its slope is the sender clock's drift."""
        cur = self._lag_cur
        if cur is None or host - cur[0] >= window_s:
            if cur is not None:
                self._lag_win.append(cur)
            self._lag_cur = (host, lag)
        elif lag < cur[1]:
            self._lag_cur = (cur[0], lag)

    def clock_stats(self) -> dict[str, Any]:
        """The sender's clock against the host's: offsets, drifts and jumps.

        Returns a dict with ``offset_s`` (last), ``offset_min_s``/``offset_max_s``, ``offsets`` (count),
        ``offset_drift_ppm`` (slope of the LSL offsets over host time; None with < 3 offsets over 10 s),
        ``arrival_drift_ppm`` (how much faster the sender's timestamps run than the host clock, from the
        lower envelope of arrival lags, 1-s windows; None before 5 s), ``jumps`` and ``jump_total_s``.
        """
        off = np.array([(h, o) for h, o, _ in self.offsets]) if self.offsets else np.zeros((0, 2))
        res: dict[str, Any] = {
            "offset_s": self.offset_s,
            "offset_min_s": float(off[:, 1].min()) if len(off) else None,
            "offset_max_s": float(off[:, 1].max()) if len(off) else None,
            "offsets": len(off),
            "offset_drift_ppm": _slope_ppm(off[:, 0], off[:, 1], 10.0) if len(off) >= 3 else None,
            "arrival_drift_ppm": None,
            "jumps": len(self.jumps),
            "jump_total_s": float(sum(j["jump_s"] for j in self.jumps)),
            "gaps": self.gaps,
            "backwards": self.backwards,
        }
        win = self._lag_win
        if len(win) >= 5:
            w = np.array(win)
            s = _robust_slope_ppm(w[:, 0], w[:, 1], 4.0)
            res["arrival_drift_ppm"] = None if s is None else -s  # lag shrinks when the sender runs fast
        return res

    def close(self) -> None:
        """Close the inlet (safe to call twice); never blocks.

        The reader thread closes and destroys the inlet (see :mod:`nexus.sources.lsl_reader`);
        samples it pulled and :meth:`flush` did not take are not recorded (the source is closed).
        """
        reader, self._reader, self._inlet = self._reader, None, None
        if reader is not None:
            reader.stop()


def _slope_ppm(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], min_span_s: float) -> float | None:
    """Least-squares slope of ``y`` over ``x`` in parts per million (None when ``x`` spans < ``min_span_s``)."""
    if x.size < 2 or float(x.max() - x.min()) < min_span_s:
        return None
    xc = x - x.mean()
    return float((xc @ (y - y.mean())) / (xc @ xc) * 1e6)


def _robust_slope_ppm(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], min_span_s: float,
                      most: int = 200) -> float | None:
    """Theil-Sen slope of ``y`` over ``x`` in ppm (median of pairwise slopes, on at most ``most`` points).

    Windows whose lag a stall of the host inflated are outliers here, not a tilt of the line.
    """
    if x.size < 2 or float(x.max() - x.min()) < min_span_s:
        return None
    if x.size > most:
        keep = np.linspace(0, x.size - 1, most).round().astype(int)
        x, y = x[keep], y[keep]
    i, j = np.triu_indices(x.size, 1)
    dx = x[j] - x[i]
    ok = dx > 0.5 * min_span_s / max(1, x.size)  # pairs too close in time say little
    if not ok.any():
        return None
    return float(np.median((y[j] - y[i])[ok] / dx[ok]) * 1e6)


def _describe(info: Any, n: int) -> tuple[list[str], list[str], list[str]]:
    """Channel labels, types and units from a stream's XML description (empty lists when it has none)."""
    labels, types, units = [], [], []
    try:
        ch = info.desc().child("channels").child("channel")
        while not ch.empty():
            labels.append(ch.child_value("label"))
            types.append(ch.child_value("type"))
            units.append(ch.child_value("unit"))
            ch = ch.next_sibling()
    except Exception as exc:  # a description is optional in LSL
        logger.debug("No channel description in LSL stream: %s", exc)
        return [], [], []
    if not labels:
        return [], [], []
    return labels, (types if any(types) else []), (units if any(units) else [])


__all__ = ["LSL_CONFIG", "LslSource", "configure_lsl", "resolve_streams"]
