"""Event-level agreement between a detector and a reference (by-event F1 with an IoU criterion)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number

__all__ = ["EventAgreement", "match_events"]


@dataclass(frozen=True)
class EventAgreement:
    """Counts and scores of a one-to-one matching of detected to reference events.

    Attributes
    ----------
    tp, fp, fn : int
        Matched detections, unmatched detections and missed reference events.
    precision, recall, f1 : float
        ``tp / (tp + fp)``, ``tp / (tp + fn)`` and their harmonic mean (0 when undefined).
    """

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        """Share of detections that match a reference event."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """Share of reference events that were detected."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float]:
        """Counts and scores as a plain dict (for JSON)."""
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": round(self.precision, 4),
                "recall": round(self.recall, 4), "f1": round(self.f1, 4)}


def match_events(
    ref_onset: npt.ArrayLike, ref_duration: npt.ArrayLike, det_onset: npt.ArrayLike, det_duration: npt.ArrayLike,
    min_iou: float = 0.2,
) -> EventAgreement:
    """Match detections to reference events one to one when their overlap is large enough.

    Two events match when their intersection over union (IoU, durations in s) is ≥ ``min_iou``;
    pairs are taken greedily by decreasing IoU, so each event is used at most once.

    Returns
    -------
    EventAgreement
        True positives, false positives, false negatives, precision, recall and F1.
    """
    min_iou = check_number("min_iou", min_iou, gt=0, le=1)
    a0 = np.asarray(ref_onset, dtype=np.float64).ravel()
    a1 = a0 + np.asarray(ref_duration, dtype=np.float64).ravel()
    b0 = np.asarray(det_onset, dtype=np.float64).ravel()
    b1 = b0 + np.asarray(det_duration, dtype=np.float64).ravel()
    if a0.size == 0 or b0.size == 0:
        return EventAgreement(0, int(b0.size), int(a0.size))
    # candidate pairs only among overlapping events (sorted sweep keeps this near-linear)
    order = np.argsort(b0)
    b0s, b1s = b0[order], b1[order]
    lo = np.searchsorted(b0s, a0 - np.max(b1s - b0s), side="left")  # no detection before can reach a0
    hi = np.searchsorted(b0s, a1, side="left")
    counts = np.maximum(hi - lo, 0)
    ia = np.repeat(np.arange(a0.size), counts)
    ib = np.concatenate([np.arange(s, e) for s, e in zip(lo, hi, strict=True) if e > s] or [np.zeros(0, np.intp)])
    ib = ib.astype(np.intp)
    inter = np.minimum(a1[ia], b1s[ib]) - np.maximum(a0[ia], b0s[ib])
    union = np.maximum(a1[ia], b1s[ib]) - np.minimum(a0[ia], b0s[ib])
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    keep = iou >= min_iou
    ia, ib, iou = ia[keep], ib[keep], iou[keep]
    used_a = np.zeros(a0.size, dtype=bool)
    used_b = np.zeros(b0.size, dtype=bool)
    tp = 0
    for k in np.argsort(-iou, kind="stable"):  # one pass over overlapping pairs, not over samples
        if not used_a[ia[k]] and not used_b[ib[k]]:
            used_a[ia[k]] = used_b[ib[k]] = True
            tp += 1
    return EventAgreement(tp, int(b0.size - tp), int(a0.size - tp))
