"""Offline sleep staging of a whole recording (YASA's classifiers fed by :mod:`nexus.staging.features`).

>>> result = stage_offline({"eeg": eeg, "eog": eog, "emg": emg}, fs=256.0)   # doctest: +SKIP
>>> result.stages, result.probabilities, result.confidence                   # doctest: +SKIP

Pure: arrays and sampling rates in, a :class:`StagingResult` out. Reading files and choosing
channels by name (:func:`pick_channels`) happen above this layer.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.core.log import logger
from nexus.core.montage import channel_role
from nexus.core.stages import EPOCH_S, STAGE_LABELS, Stage
from nexus.staging import features as F
from nexus.staging.model import load_model, model_name, walk

FloatArray = npt.NDArray[np.float64]

KINDS: tuple[str, ...] = ("eeg", "eog", "emg")
MIN_FS: float = 80.0
"""Lowest sampling rate the classifiers accept, in Hz (exclusive, as YASA)."""
MIN_DURATION_S: float = 300.0
"""Shortest recording staged, in seconds (5 min)."""
FLAT_STD_UV: float = 0.1
"""An epoch whose standard deviation is below this (in µV) is flat: scored as artefact (-1)."""

#: preferred EEG / EOG / EMG labels, best first (matched case-insensitively, "EEG " prefixes ignored)
_PREFERRED: dict[str, tuple[str, ...]] = {
    "eeg": ("C4-M1", "C3-M2", "C4-A1", "C3-A2", "C4", "C3", "Cz-M1", "Cz", "Fpz-Cz", "Pz-Oz", "F4-M1", "F3-M2"),
    "eog": ("E1-M2", "LOC-M2", "E1", "LOC", "EOG horizontal", "E2-M2", "E2-M1", "ROC-M1", "ROC"),
    "emg": ("EMG Chin", "Chin", "Chin1-Chin2", "EMG submental", "EMG"),
}


@dataclass
class StagingResult:
    """Stages of a night, one per 30-s epoch.

    Attributes
    ----------
    stages : ndarray of int8, shape (n_epochs,)
        YASA codes: 0=W 1=N1 2=N2 3=N3 4=R, -1 artefact (NaN or flat signal).
    probabilities : ndarray, shape (n_epochs, 5)
        Probability of W, N1, N2, N3, R (hypnodensity); NaN rows for artefact epochs.
    confidence : ndarray, shape (n_epochs,)
        Highest probability per epoch (NaN for artefact epochs).
    epoch_s : float
        Epoch length in seconds.
    model : str
        Name of the YASA classifier used (e.g. ``"clf_eeg+eog+emg"``).
    """

    stages: npt.NDArray[np.int8]
    probabilities: FloatArray
    confidence: FloatArray
    epoch_s: float = EPOCH_S
    model: str = ""
    channels: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.stages.size)

    def summary(self) -> dict[str, float]:
        """Minutes per stage (and artefact), for a quick look."""
        out = {lab: float(np.sum(self.stages == i) * self.epoch_s / 60) for i, lab in enumerate(STAGE_LABELS)}
        out["ART"] = float(np.sum(self.stages == Stage.ART) * self.epoch_s / 60)
        return out


def _bare(label: str) -> str:
    return re.sub(r"^(eeg|eog|emg)\s+", "", label.strip(), flags=re.I).lower()


def pick_channels(
    labels: Sequence[str],
    eeg: str | None = None,
    eog: str | None = None,
    emg: str | None = None,
) -> dict[str, str]:
    """Choose the EEG, EOG and EMG channels used for staging from a recording's labels.

    Given names are matched exactly, then case-insensitively, then without the "EEG "/"EOG "/"EMG "
    prefix; missing names are chosen from preferred derivations (C4-M1, C3-M2, … for EEG; E1-M2,
    LOC … for EOG; chin EMG), then as the first channel of that role
    (:func:`nexus.core.montage.channel_role`).

    Returns
    -------
    dict
        ``{"eeg": label, "eog": label, "emg": label}`` for the kinds found (EEG always).

    Raises
    ------
    InvalidInputError
        A given name is not in ``labels``, or no EEG channel can be found (the message lists the
        channels found and the closest name).
    """
    labels = list(labels)
    low = [lab.lower() for lab in labels]
    bare = [_bare(lab) for lab in labels]
    chosen: dict[str, str] = {}
    for kind, name in (("eeg", eeg), ("eog", eog), ("emg", emg)):
        if name is None:
            continue
        key = name.strip().lower()
        for pool in (labels, low, bare):
            cand = name if pool is labels else (key if pool is low else _bare(name))
            if cand in pool:
                chosen[kind] = labels[pool.index(cand)]
                break
        else:
            close = difflib.get_close_matches(name, labels, n=1, cutoff=0.4)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise InvalidInputError(
                f"No {kind.upper()} channel '{name}' in the recording.{hint} Channels found: {', '.join(labels)}."
            )
    used = set(chosen.values())
    for kind in KINDS:
        if kind in chosen:
            continue
        pick = None
        for pref in _PREFERRED[kind]:
            p = pref.lower()
            hits = [i for i, b in enumerate(bare) if (b == p or low[i] == p) and labels[i] not in used]
            if hits:
                pick = labels[hits[0]]
                break
        if pick is None:  # else the first channel of that role (type prefix or word, derivation)
            hits = [i for i, lab in enumerate(labels) if channel_role(lab) == kind and lab not in used]
            pick = labels[hits[0]] if hits else None
        if pick is not None:
            chosen[kind] = pick
            used.add(pick)
    if "eeg" not in chosen:
        guess = difflib.get_close_matches("EEG C4-M1", labels, n=1, cutoff=0.3)
        hint = f" The closest is '{guess[0]}'; pass it with --eeg if it is an EEG." if guess else ""
        raise InvalidInputError(
            f"No usable EEG channel in the recording. Channels found: {', '.join(labels) or 'none'}.{hint}"
        )
    return {k: chosen[k] for k in KINDS if k in chosen}


def _check_signal(kind: str, x: npt.ArrayLike, fs: float) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise InvalidInputError(f"Invalid {kind.upper()} signal: expected a 1-D array, got shape {arr.shape}.")
    check_number(f"fs of {kind.upper()}", fs, gt=MIN_FS, unit="Hz")
    return arr


def prepare_epochs(
    signals: Mapping[str, npt.ArrayLike],
    fs: float | Mapping[str, float],
) -> tuple[dict[str, FloatArray], npt.NDArray[np.bool_]]:
    """Resample, band-pass and cut each channel into 30-s epochs at 100 Hz; flag bad epochs.

    Returns
    -------
    epochs : dict kind → ndarray (n_epochs, 3000)
        Band-passed epochs in µV.
    bad : ndarray of bool, shape (n_epochs,)
        Epochs with NaN samples or a flat signal in any channel (scored as artefact).
    """
    out: dict[str, FloatArray] = {}
    bad_parts = []
    for kind, raw in signals.items():
        f = float(fs[kind] if isinstance(fs, Mapping) else fs)
        x = _check_signal(kind, raw, f)
        n_ep = round(x.size * F.FS / f) // F.EPOCH_SAMPLES  # epochs after resampling
        # flat epochs: judged on the raw signal at its own rate (epoch e = [30e, 30e + 30) s)
        edges = np.round(np.arange(n_ep + 1) * EPOCH_S * f).astype(np.int64)
        cnt = np.diff(edges).astype(np.float64)
        if n_ep and (cnt == cnt[0]).all():  # whole samples per epoch: a reshaped view, no temporaries
            xe = x[: edges[-1]].reshape(n_ep, -1)
            s1 = xe.sum(axis=1)
            s2 = np.einsum("ij,ij->i", xe, xe)
        else:
            xe = x[: edges[-1]]
            s1 = np.add.reduceat(xe, edges[:-1]) if n_ep else np.zeros(0)
            s2 = np.add.reduceat(xe * xe, edges[:-1]) if n_ep else np.zeros(0)
        # the epoch sums (and one over the remainder) tell whether any sample is missing; the mask
        # is built only then
        missing = not (np.isfinite(s2).all() and np.isfinite(x[edges[-1] :].sum()))
        nan = ~np.isfinite(x) if missing else None
        if nan is not None:
            x = np.where(nan, 0.0, x)
            xe = x[: edges[-1]]
            s1 = np.add.reduceat(xe, edges[:-1]) if n_ep else np.zeros(0)
            s2 = np.add.reduceat(xe * xe, edges[:-1]) if n_ep else np.zeros(0)
        filtered = F.resample_bandpass(x, f)
        n_ep = min(n_ep, filtered.size // F.EPOCH_SAMPLES)
        s1, s2, cnt = s1[:n_ep], s2[:n_ep], cnt[:n_ep]
        bad = np.sqrt(np.maximum(s2 / cnt - (s1 / cnt) ** 2, 0.0)) < FLAT_STD_UV
        if nan is not None:
            ep_of_nan = (np.flatnonzero(nan) / f // EPOCH_S).astype(np.int64)
            bad[ep_of_nan[ep_of_nan < n_ep]] = True
        out[kind] = F.epochs_of(filtered)[:n_ep]
        bad_parts.append(bad)
    n = min(e.shape[0] for e in out.values())
    out = {k: e[:n] for k, e in out.items()}
    bad_any = np.zeros(n, dtype=bool)
    for b in bad_parts:
        bad_any |= b[:n]
    return out, bad_any


def _load_kernels() -> None:
    """Load the compiled feature kernels and tree walk (from numba's disk cache; a no-op after the first time)."""
    F.channel_features(np.zeros((1, F.EPOCH_SAMPLES)), "eeg")  # the time-domain and spectral kernels
    walk(
        np.zeros((1, 1), np.float32),
        np.zeros((1, 1), np.int32),
        np.zeros((1, 1), np.float32),
        np.zeros((1, 2)),
        np.zeros(1, np.int64),
    )  # the tree walk, with the types of a model's arrays


def stage_offline(
    signals: Mapping[str, npt.ArrayLike],
    fs: float | Mapping[str, float],
    *,
    age: float | None = None,
    male: bool | None = None,
) -> StagingResult:
    """Stage a whole recording with YASA's classifier for the channels present.

    Parameters
    ----------
    signals : mapping kind → 1-D array
        ``"eeg"`` (required), ``"eog"`` and ``"emg"`` (optional), in µV, unfiltered.
    fs : float or mapping kind → float
        Sampling rate(s) in Hz (each > 80 Hz); signals are resampled to 100 Hz.
    age : float, optional
        Age in years; with ``male``, selects the classifier that uses demographics.
    male : bool, optional
        Sex (True = male).

    Returns
    -------
    StagingResult

    Notes
    -----
    Epochs with NaN samples or a flat signal (std < :data:`FLAT_STD_UV`) in any channel are scored
    -1 (artefact) with NaN probabilities; their features are left out of the night-wide smoothing
    and scaling so that they do not bias the other epochs.
    """
    unknown = set(signals) - set(KINDS)
    if unknown:
        raise InvalidInputError(f"Unknown signal kind(s) {sorted(unknown)}: expected 'eeg', 'eog' and/or 'emg'.")
    if "eeg" not in signals:
        raise InvalidInputError("Sleep staging needs an EEG signal; none was given.")
    kinds = tuple(k for k in KINDS if k in signals)
    for k in kinds:
        f = float(fs[k] if isinstance(fs, Mapping) else fs)
        dur = np.asarray(signals[k]).shape[-1] / f if f > 0 else 0.0
        if dur < MIN_DURATION_S:
            raise InvalidInputError(
                f"Recording too short to stage: {dur / 60:.1f} min of {k.upper()}, expected at least "
                f"{MIN_DURATION_S / 60:.0f} min."
            )
    demo = age is not None and male is not None
    metadata = None
    if demo:
        check_number("age", float(age), gt=0, lt=120, unit="years")  # type: ignore[arg-type]
        metadata = {"age": float(age), "male": float(bool(male))}  # type: ignore[arg-type]
    model = load_model(kinds, demo)
    # channels are independent until the features are joined: one thread each (numpy and
    # scipy.fft release the GIL)
    workers = min(len(kinds), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # the compiled kernels load (from numba's cache, about 0.5 s in a fresh process) while
        # the signals are resampled
        warm = threading.Thread(target=_load_kernels, daemon=True)
        warm.start()

        def features(e: FloatArray, kind: str) -> dict[str, FloatArray]:
            warm.join()
            return F.channel_features(e, kind)

        # queued in this order: every channel's preparation, then each channel's features in
        # halves as soon as it is prepared, so that no worker idles while another has two channels
        prep = [pool.submit(prepare_epochs, {k: signals[k]}, fs) for k in kinds]
        bads, feat_parts = [], []
        for k, fut in zip(kinds, prep, strict=True):
            eps, bad_k = fut.result()
            e = eps[k]
            cuts = [0, e.shape[0] // 2, e.shape[0]] if workers > 1 else [0, e.shape[0]]
            feat_parts.append([pool.submit(features, e[a:b], k) for a, b in itertools.pairwise(cuts)])
            bads.append(bad_k)
        n = min(b.size for b in bads)
        bad = np.zeros(n, dtype=bool)
        for b in bads:
            bad |= b[:n]
        feats_k = []
        for parts in feat_parts:
            done = [f.result() for f in parts]
            feats_k.append({name: np.concatenate([d[name] for d in done])[:n] for name in done[0]})
    per_kind = {}
    for k, feats in zip(kinds, feats_k, strict=True):
        if bad.any():
            feats = {name: np.where(bad, np.nan, v) for name, v in feats.items()}
        per_kind[k] = feats
    table = F.offline_feature_table(per_kind, np.arange(n, dtype=np.float64) * EPOCH_S, metadata)
    x = np.stack([table[name] for name in model.feature_names], axis=1)
    proba = model.predict_proba(x)  # compiled tree walk (cached per machine)
    stages = np.argmax(proba, axis=1).astype(np.int8)
    stages[bad] = Stage.ART
    proba[bad] = np.nan
    if bad.any():
        logger.info("%d of %d epochs scored as artefact (NaN or flat signal).", int(bad.sum()), n)
    return StagingResult(
        stages=stages,
        probabilities=proba,
        confidence=proba.max(axis=1),
        model=model_name(kinds, demo),
    )
