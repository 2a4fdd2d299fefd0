"""AASM sleep statistics of a hypnogram, with YASA's definitions (``Hypnogram.sleep_statistics``).

All durations are in minutes, SE/SME/stage shares in %, SFI per hour of TST; values are rounded
to 4 decimals as YASA does.

======== =====================================================================================
TIB      time in bed: the whole hypnogram
SPT      sleep period time: first to last epoch that is not W, ART or UNS
WASO     wake after sleep onset: W epochs inside SPT
TST      total sleep time: N1 + N2 + N3 + R epochs inside SPT
SE       sleep efficiency: 100 · TST / TIB
SME      sleep maintenance efficiency: 100 · TST / SPT
SFI      sleep fragmentation index: sleep → W transitions per hour of TST
SOL      sleep onset latency: start to first epoch that is not W, ART or UNS
SOL_5min latency to the first run of ≥ 5 min of consecutive sleep
Lat_REM  REM latency, counted from the start of the hypnogram (as YASA)
WAKE N1 N2 N3 REM   minutes per stage (ART and UNS only when present)
%N1 %N2 %N3 %REM    share of TST
======== =====================================================================================
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError
from nexus.core.stages import EPOCH_S, Stage

_SLEEP = (Stage.N1, Stage.N2, Stage.N3, Stage.R)
_NAMES = {Stage.W: "WAKE", Stage.N1: "N1", Stage.N2: "N2", Stage.N3: "N3", Stage.R: "REM"}


def sleep_statistics(stages: npt.ArrayLike, epoch_s: float = EPOCH_S) -> dict[str, float]:
    """AASM statistics of a hypnogram (YASA's definitions).

    Parameters
    ----------
    stages : array-like of int, shape (n_epochs,)
        YASA codes: 0=W 1=N1 2=N2 3=N3 4=R, -1 artefact, -2 unscored.
    epoch_s : float
        Epoch length in seconds.

    Returns
    -------
    dict of str → float
        Keys in this order: TIB, SPT, WASO, TST, SE, SME, SFI, SOL, SOL_5min, Lat_REM, WAKE, N1,
        N2, N3, REM, (ART, UNS when present), %N1, %N2, %N3, %REM. Undefined values are NaN.
    """
    h = np.asarray(stages).astype(np.int64).ravel()
    if h.size == 0:
        raise InvalidInputError("Cannot compute sleep statistics of an empty hypnogram.")
    if ((h < -2) | (h > 4)).any():
        raise InvalidInputError("Invalid stage codes: expected -2..4 (UNS, ART, W, N1, N2, N3, R).")
    per_min = 60.0 / epoch_s
    n = h.size
    is_sleep = np.isin(h, _SLEEP)
    scored = np.flatnonzero(h > 0)  # not W, ART or UNS
    has_sleep = scored.size > 0
    first, last = (int(scored[0]), int(scored[-1])) if has_sleep else (0, n)
    spt = slice(first, last + 1)
    s: dict[str, float] = {"TIB": n / per_min}
    s["SPT"] = (last + 1 - first) / per_min if has_sleep else 0.0
    s["WASO"] = np.count_nonzero(h[spt] == Stage.W) / per_min if has_sleep else math.nan
    s["TST"] = np.count_nonzero(is_sleep[spt]) / per_min
    s["SE"] = 100 * s["TST"] / s["TIB"]
    if s["SPT"] == 0:
        s["SME"] = s["SFI"] = math.nan
    else:
        s["SME"] = 100 * s["TST"] / s["SPT"]
        to_wake = np.count_nonzero(is_sleep[:-1] & (h[1:] == Stage.W))
        s["SFI"] = to_wake / (s["TST"] / 60) if s["TST"] > 0 else math.nan
    s["SOL"] = first / per_min if s["TST"] > 0 else math.nan
    min_run = math.ceil(5 * per_min - 1e-9)
    s["SOL_5min"] = _first_run(is_sleep, min_run) / per_min
    rem = np.flatnonzero(h == Stage.R)
    s["Lat_REM"] = rem[0] / per_min if rem.size else math.nan
    for code, name in _NAMES.items():
        s[name] = np.count_nonzero(h == code) / per_min
    for code, name in ((Stage.ART, "ART"), (Stage.UNS, "UNS")):
        count = np.count_nonzero(h == code)
        if count:
            s[name] = count / per_min
    for name in ("N1", "N2", "N3", "REM"):
        s[f"%{name}"] = 100 * s[name] / s["TST"] if s["TST"] > 0 else math.nan
    return {k: float(np.round(v, 4)) for k, v in s.items()}


def _first_run(mask: npt.NDArray[np.bool_], min_len: int) -> float:
    """Start index of the first run of ``True`` at least ``min_len`` long (NaN when none)."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, ends = edges[::2], edges[1::2]
    ok = np.flatnonzero(ends - starts >= min_len)
    return float(starts[ok[0]]) if ok.size else math.nan
