"""Epoch-by-epoch agreement of a hypnogram with a reference (after YASA's ``EpochByEpochAgreement``).

Only epochs scored W, N1, N2, N3 or R on *both* sides are compared; artefact and unscored epochs are
counted and left out. When the two hypnograms differ in length, the common first epochs are compared
and :attr:`Agreement.notes` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError
from nexus.core.stages import STAGE_LABELS

__all__ = ["Agreement", "agreement"]

_CODES = np.arange(5)  # W N1 N2 N3 R


@dataclass
class Agreement:
    """Agreement of a scored hypnogram with a reference.

    Attributes
    ----------
    n_epochs : int
        Epochs compared (scored W..R on both sides, within the common length).
    n_excluded : int
        Epochs of the common length left out because one side is artefact or unscored.
    length, reference_length : int
        Epochs in the scored hypnogram and in the reference.
    epoch_s : float
        Epoch length in seconds.
    accuracy, kappa, macro_f1, weighted_f1 : float
        Overall figures (accuracy and F1 as fractions 0..1; Cohen's kappa -1..1); NaN when undefined.
    confusion : ndarray of int, shape (5, 5)
        Rows: reference stage W, N1, N2, N3, R; columns: scored stage.
    per_stage : dict of str to dict
        Per stage label: ``precision``, ``recall``, ``f1`` (NaN when undefined) and ``support``
        (reference epochs of that stage).
    disagreements : ndarray of int, shape (n, 3)
        ``epoch index, scored stage, reference stage`` of each compared epoch that differs.
    notes : list of str
        Plain-language remarks (length mismatch, excluded epochs).
    """

    n_epochs: int
    n_excluded: int
    length: int
    reference_length: int
    epoch_s: float
    accuracy: float
    kappa: float
    macro_f1: float
    weighted_f1: float
    confusion: npt.NDArray[np.int64]
    per_stage: dict[str, dict[str, float]]
    disagreements: npt.NDArray[np.int64]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN as None; disagreements with onsets in seconds)."""

        def num(v: float) -> float | None:
            return None if math.isnan(v) else round(float(v), 6)

        return {
            "n_epochs": self.n_epochs,
            "n_excluded": self.n_excluded,
            "length": self.length,
            "reference_length": self.reference_length,
            "epoch_s": self.epoch_s,
            "accuracy": num(self.accuracy),
            "kappa": num(self.kappa),
            "macro_f1": num(self.macro_f1),
            "weighted_f1": num(self.weighted_f1),
            "per_stage": {k: {m: (int(v) if m == "support" else num(v)) for m, v in d.items()}
                          for k, d in self.per_stage.items()},
            "confusion": {"rows_reference": list(STAGE_LABELS), "columns_scored": list(STAGE_LABELS),
                          "counts": self.confusion.tolist()},
            "disagreements": [
                {"epoch": int(i), "onset_s": float(i * self.epoch_s), "stage": STAGE_LABELS[int(a)],
                 "reference": STAGE_LABELS[int(b)]}
                for i, a, b in self.disagreements
            ],
            "notes": list(self.notes),
        }

    def text(self, max_disagreements: int = 20) -> str:
        """A plain-text table for the terminal."""
        pct = _pct
        lines = [
            f"epochs compared  {self.n_epochs}" + (f" ({self.n_excluded} artefact/unscored left out)"
                                                  if self.n_excluded else ""),
            f"accuracy         {pct(self.accuracy)}",
            f"Cohen's kappa    {_fmt(self.kappa, 3)}",
            f"macro F1         {pct(self.macro_f1)}",
            f"weighted F1      {pct(self.weighted_f1)}",
            "",
            "stage  precision  recall      F1  support",
        ]
        for lab, d in self.per_stage.items():
            lines.append(f"{lab:<5}  {pct(d['precision']):>9}  {pct(d['recall']):>6}  {pct(d['f1']):>6}"
                         f"  {int(d['support']):>7}")
        lines += ["", "confusion (rows: reference, columns: scored)",
                  "       " + "".join(f"{lab:>6}" for lab in STAGE_LABELS)]
        for lab, row in zip(STAGE_LABELS, self.confusion, strict=True):
            lines.append(f"{lab:<7}" + "".join(f"{int(v):>6}" for v in row))
        n = len(self.disagreements)
        lines += ["", f"{n} epochs disagree" + (":" if n else ".")]
        for i, a, b in self.disagreements[:max_disagreements]:
            lines.append(f"  epoch {int(i):>5}  {_clock(i * self.epoch_s)}  scored {STAGE_LABELS[int(a)]:<2}"
                         f"  reference {STAGE_LABELS[int(b)]}")
        if n > max_disagreements:
            lines.append(f"  … and {n - max_disagreements} more (--json lists all)")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _fmt(v: float, digits: int) -> str:
    return "n/a" if math.isnan(v) else f"{v:.{digits}f}"


def _pct(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{100 * v:.1f}%"


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _div(a: float, b: float) -> float:
    return a / b if b else math.nan


def agreement(stages: npt.ArrayLike, reference: npt.ArrayLike, epoch_s: float = 30.0) -> Agreement:
    """Compare ``stages`` with ``reference`` epoch by epoch.

    Parameters
    ----------
    stages, reference : array-like of int, shape (n_epochs,)
        YASA stage codes (0=W 1=N1 2=N2 3=N3 4=R, -1 artefact, -2 unscored).
    epoch_s : float
        Epoch length in seconds (the same on both sides).

    Returns
    -------
    Agreement
        Accuracy, Cohen's kappa, per-stage precision/recall/F1, confusion matrix, disagreeing epochs.

    Raises
    ------
    InvalidInputError
        Either hypnogram is empty, or no epoch is scored W..R on both sides.
    """
    a = np.asarray(stages).astype(np.int64).ravel()
    b = np.asarray(reference).astype(np.int64).ravel()
    if a.size == 0 or b.size == 0:
        raise InvalidInputError("Cannot compare an empty hypnogram; give one with at least one scored epoch.")
    n = min(a.size, b.size)
    notes: list[str] = []
    if a.size != b.size:
        longer = "scored hypnogram" if a.size > b.size else "reference"
        notes.append(f"The scored hypnogram has {a.size} epochs and the reference {b.size}; the first {n} were "
                     f"compared and the {abs(a.size - b.size)} extra epochs of the {longer} ignored.")
    aa, bb = a[:n], b[:n]
    both = (aa >= 0) & (aa <= 4) & (bb >= 0) & (bb <= 4)
    excluded = int(n - both.sum())
    if not both.any():
        raise InvalidInputError("No epoch is scored W, N1, N2, N3 or R in both hypnograms (all artefact or "
                                "unscored); nothing to compare.")
    if excluded:
        notes.append(f"{excluded} epochs scored artefact or unscored on either side were left out.")
    x, y = aa[both], bb[both]
    conf = np.zeros((5, 5), dtype=np.int64)
    np.add.at(conf, (y, x), 1)  # rows: reference, columns: scored
    total = int(conf.sum())
    tp = np.diag(conf).astype(float)
    support = conf.sum(axis=1).astype(float)
    predicted = conf.sum(axis=0).astype(float)
    per_stage: dict[str, dict[str, float]] = {}
    f1s = np.full(5, math.nan)
    for k, lab in enumerate(STAGE_LABELS):
        p, r = _div(tp[k], predicted[k]), _div(tp[k], support[k])
        f1 = _div(2 * tp[k], predicted[k] + support[k])
        f1s[k] = f1
        per_stage[lab] = {"precision": p, "recall": r, "f1": f1, "support": float(support[k])}
    po = tp.sum() / total
    pe = float((support * predicted).sum()) / total**2
    kappa = _div(po - pe, 1 - pe)
    present = support > 0  # F1 is NaN only for a stage on neither side; macro F1 spans the others (as sklearn)
    macro = float(np.nanmean(f1s))
    weighted = float(np.nansum(f1s[present] * support[present]) / support[present].sum())
    idx = np.flatnonzero(both & (aa != bb))
    dis = np.column_stack([idx, aa[idx], bb[idx]]).astype(np.int64) if idx.size else np.zeros((0, 3), np.int64)
    return Agreement(
        n_epochs=total, n_excluded=excluded, length=int(a.size), reference_length=int(b.size),
        epoch_s=float(epoch_s), accuracy=float(po), kappa=float(kappa), macro_f1=macro, weighted_f1=weighted,
        confusion=conf, per_stage=per_stage, disagreements=dis, notes=notes,
    )
