"""The glitch monitor over a whole recording, block by block through the live :class:`GlitchMonitor`.

A recording's channels are grouped by sampling rate; each group of at least ``min_fs`` Hz runs
through its own one-slot monitor in blocks of ``block_s`` seconds, exactly as a live lane would
see it, and the closed episodes are returned sorted by onset. Potentials are taken in µV, as
:func:`~nexus.formats.edf.read_edf` returns them (a file whose header lies about its unit shows
up as flat or implausible channels, with their values in the evidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from nexus.monitor.glitch import Glitch
from nexus.monitor.live import GlitchMonitor, MonitorParams

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from nexus.formats.edf import Recording

COLUMNS = ("onset", "duration", "kind", "category", "priority", "channel", "evidence")


def scan_signals(
    data: npt.ArrayLike,
    channels: Sequence[str],
    fs: float,
    *,
    block_s: float = 1.0,
    stages: npt.ArrayLike | None = None,
    session: str = "recording",
    params: MonitorParams | None = None,
) -> list[Glitch]:
    """Run the live monitor over one recording's samples.

    Parameters
    ----------
    data : array_like, shape (channels, samples)
        In µV (Resp arbitrary, Acc milli-g).
    channels : sequence of str
        Channel labels.
    fs : float
        Sampling rate in Hz.
    block_s : float
        Block length in s (the live facility uses 0.1 s; the result hardly depends on it).
    stages : array_like of int, optional
        Stage per 30-s epoch (YASA codes) for the distress detector; unknown by default.
    session : str
        Session id written into the glitches.
    params : MonitorParams, optional
        Monitor settings.

    Returns
    -------
    list of Glitch
        Closed episodes (``duration_s`` set), sorted by onset.
    """
    x = np.asarray(data, dtype=np.float64)
    mon = GlitchMonitor(1, channels, fs, sessions=[session], params=params)
    n_total = x.shape[-1]
    step = max(round(block_s * fs), 1)
    st = None if stages is None else np.asarray(stages, dtype=np.int64)
    out: list[Glitch] = []
    one = np.ones(1, dtype=bool)
    for a in range(0, n_total, step):
        b = min(a + step, n_total)
        t_end = b / fs
        stage = None
        if st is not None and st.size:
            stage = st[min(int((a / fs) // 30.0), st.size - 1) : None][:1]
        out += mon.step(x[None, :, a:b], one, t_end, stages=stage)
    out += mon.finish(n_total / fs)
    closed = [g for g in out if g.duration_s is not None]
    return sorted(closed, key=lambda g: (g.onset_s, g.kind, g.channel or ""))


def scan_recording(
    rec: Recording, *, block_s: float = 1.0, min_fs: float = 50.0, params: MonitorParams | None = None
) -> tuple[list[Glitch], list[str]]:
    """Run the monitor over every channel group of ``rec`` (same rate, at least ``min_fs`` Hz).

    Returns the closed glitches sorted by onset and notes on what was not monitored.
    """
    notes: list[str] = []
    groups: dict[float, list[int]] = {}
    for i, s in enumerate(rec.signals):
        groups.setdefault(float(s.fs), []).append(i)
    out: list[Glitch] = []
    for fs, idx in sorted(groups.items(), reverse=True):
        labels = [rec.signals[i].label for i in idx]
        if fs < min_fs:
            notes.append(f"not monitored (sampled at {fs:g} Hz, below {min_fs:g} Hz): {', '.join(labels)}")
            continue
        n = min(rec.signals[i].data.size for i in idx)
        rows = np.stack([np.asarray(rec.signals[i].data[:n], dtype=np.float64) for i in idx])
        out += scan_signals(rows, labels, fs, block_s=block_s, params=params)
    out.sort(key=lambda g: (g.onset_s, g.kind, g.channel or ""))
    return out, notes


def glitch_rows(glitches: Sequence[Glitch]) -> list[dict[str, Any]]:
    """Glitches as rows with the columns of :data:`COLUMNS` (evidence as a dict)."""
    return [
        {
            "onset": g.onset_s,
            "duration": g.duration_s if g.duration_s is not None else 0.0,
            "kind": g.kind,
            "category": g.category,
            "priority": g.priority,
            "channel": g.channel or "",
            "evidence": dict(g.evidence),
        }
        for g in glitches
    ]


def glitch_frame(glitches: Sequence[Glitch]) -> pd.DataFrame:
    """Glitches as a table (``onset duration kind category priority channel evidence``, evidence as JSON)."""
    import json

    import pandas as pd

    rows = glitch_rows(glitches)
    for r in rows:
        r["evidence"] = json.dumps(r["evidence"], sort_keys=True)
    return pd.DataFrame(rows, columns=list(COLUMNS))
