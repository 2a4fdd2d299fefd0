"""Replay an EDF / EDF+ / BDF recording as a live source, in real time or fast-forward.

The file is read once (through :func:`nexus.formats.edf.read_edf`), every chosen channel is
resampled to one sampling rate and cut to the shortest channel, and :meth:`EdfReplaySource.read`
hands out the samples whose time has come on the source's :class:`~nexus.core.clock.Clock`:
a :class:`~nexus.core.clock.RealClock` replays in real time, a
:class:`~nexus.core.clock.ManualClock` advanced by the supervisor replays in fast-forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.clock import Clock
from nexus.core.errors import DataFormatError, InvalidInputError
from nexus.core.types import Chunk
from nexus.formats.edf import Recording, read_edf
from nexus.sources.base import Source


def resample(x: npt.NDArray[np.float64], fs_in: float, fs_out: float) -> npt.NDArray[np.float64]:
    """Resample a 1-D signal from ``fs_in`` to ``fs_out`` Hz (polyphase, anti-aliased).

    Returns ``x`` unchanged when the rates are equal.
    """
    if fs_in == fs_out:
        return np.asarray(x, dtype=np.float64)
    from scipy.signal import resample_poly

    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    return np.asarray(resample_poly(x, ratio.numerator, ratio.denominator), dtype=np.float64)


def align_channels(
    recording: Recording, channels: Sequence[str] | None = None, fs: float | None = None
) -> tuple[npt.NDArray[np.float64], tuple[str, ...], float]:
    """Pick channels of a recording and resample them to one rate, cut to the shortest.

    Parameters
    ----------
    recording : Recording
        The recording read from file.
    channels : sequence of str, optional
        Channels to keep (matched as :meth:`Recording.index` does); default: all.
    fs : float, optional
        Target sampling rate in Hz; default: the highest rate among the chosen channels.

    Returns
    -------
    data : ndarray, shape (n_channels, n_samples)
        Signals in their physical units (µV for electrophysiology).
    labels : tuple of str
        Channel labels, in row order.
    fs : float
        The common sampling rate in Hz.
    """
    idx = [recording.index(c) for c in channels] if channels else list(range(len(recording.signals)))
    if not idx:
        raise InvalidInputError("The recording has no signals to replay. Choose another file.")
    sigs = [recording.signals[i] for i in idx]
    target = float(fs) if fs is not None else max(s.fs for s in sigs)
    check_number("fs", target, gt=0, unit="Hz")
    rows = [resample(s.data, s.fs, target) for s in sigs]
    n = min(len(r) for r in rows)
    data = np.empty((len(rows), n), dtype=np.float64)
    for k, r in enumerate(rows):
        data[k] = r[:n]
    return data, tuple(s.label for s in sigs), target


def _read_checked(path: str | Path) -> Recording:
    """Read a recording, refusing one whose data records are not all there (a truncated copy)."""
    missing = _missing_records(Path(path))
    if missing:
        raise DataFormatError(
            f"Cannot replay '{path}': {missing[1]} of its {missing[0]} data records are present. The file is "
            "incomplete; copy it again from the recorder."
        )
    return read_edf(path)


def _missing_records(path: Path) -> tuple[int, int] | None:
    """(records declared, records present) when the file is shorter than its header says, else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
            if len(head) < 256:
                return None  # read_edf says what is wrong with such a file
            n_header, n_records, n_signals = int(head[184:192]), int(head[236:244]), int(head[252:256])
            f.seek(256 + n_signals * 216)
            spr = [int(f.read(8)) for _ in range(n_signals)]
    except (OSError, ValueError):
        return None
    width = 3 if head[:1] == b"\xff" else 2  # BDF: 24-bit samples
    rec_bytes = width * sum(spr)
    size = path.stat().st_size
    if n_records <= 0 or rec_bytes <= 0 or size >= n_header + n_records * rec_bytes:
        return None
    return n_records, max(0, (size - n_header) // rec_bytes)


class EdfReplaySource(Source):
    """A recording replayed as a live stream.

    Parameters
    ----------
    path : path-like or Recording
        An EDF/EDF+/BDF file, or an already read :class:`Recording`.
    clock : Clock
        Decides how fast the replay goes (real time or fast-forward).
    session : str
        The session this source feeds.
    channels : sequence of str, optional
        Channels to replay (default: all).
    fs : float, optional
        Common sampling rate in Hz (default: the highest rate among the channels).
    speed : float
        Replay speed relative to the clock (1 = real time on a real clock; 10 = ten times faster).
    max_chunk_s : float
        Longest chunk returned by one :meth:`read`, in seconds (bounds memory when the caller is late).
    loop : bool
        Start again at the beginning when the recording ends (times keep increasing).

    Raises
    ------
    NotFoundError, DataFormatError
        When the file is missing, has a corrupt header or truncated data.
    """

    def __init__(
        self,
        path: str | Path | Recording,
        clock: Clock,
        session: str = "replay",
        *,
        channels: Sequence[str] | None = None,
        fs: float | None = None,
        speed: float = 1.0,
        max_chunk_s: float = 30.0,
        loop: bool = False,
    ) -> None:
        self.session = session
        self.clock = clock
        self.speed = check_number("speed", speed, gt=0)
        self.max_chunk_s = check_number("max_chunk_s", max_chunk_s, gt=0, unit="s")
        self.loop = loop
        rec = path if isinstance(path, Recording) else _read_checked(path)
        self.path = None if isinstance(path, Recording) else Path(path)
        self.data, self.channels, self.fs = align_channels(rec, channels, fs)
        self._t_open: float | None = None
        self._pos = 0  # samples handed out so far
        self._seq = 0

    @property
    def n_samples(self) -> int:
        """Number of samples per channel in the recording."""
        return int(self.data.shape[1])

    @property
    def exhausted(self) -> bool:
        """True when every sample has been handed out (never with ``loop``)."""
        return not self.loop and self._pos >= self.n_samples

    def open(self) -> None:
        """Start the replay at the clock's current time."""
        if self._t_open is None:
            self._t_open = self.clock.now()

    def read(self) -> Chunk | None:
        """Return the samples due by now (at most ``max_chunk_s``), or ``None``."""
        if self._t_open is None:
            self.open()
        assert self._t_open is not None
        due = int(np.floor((self.clock.now() - self._t_open) * self.speed * self.fs + 1e-9))
        if not self.loop:
            due = min(due, self.n_samples)
        n = min(due - self._pos, int(self.max_chunk_s * self.fs))
        if n <= 0:
            return None
        start = self._pos % self.n_samples
        if start + n <= self.n_samples:
            block = self.data[:, start : start + n].copy()
        else:
            idx = (np.arange(self._pos, self._pos + n)) % self.n_samples
            block = self.data[:, idx]
        chunk = Chunk(self.session, self._pos / self.fs, self.fs, block, self.channels, self._seq)
        self._pos += n
        self._seq += 1
        return chunk
