"""Sleep stage codes, as YASA: W=0, N1=1, N2=2, N3=3, R=4; artefact=-1, unscored=-2.

Epochs are 30 s long (:data:`EPOCH_S`).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError

EPOCH_S: float = 30.0
"""Length of one scoring epoch, in seconds (AASM)."""


class Stage(IntEnum):
    """An AASM sleep stage with YASA's integer codes."""

    UNS = -2
    ART = -1
    W = 0
    N1 = 1
    N2 = 2
    N3 = 3
    R = 4

    @property
    def label(self) -> str:
        """The stage label used in files and UI (``"W"``, ``"N1"``, …, ``"ART"``, ``"UNS"``)."""
        return self.name


SLEEP_STAGES: tuple[Stage, ...] = (Stage.W, Stage.N1, Stage.N2, Stage.N3, Stage.R)
"""The five scored stages, in code order (columns of a hypnodensity)."""

STAGE_LABELS: tuple[str, ...] = tuple(s.label for s in SLEEP_STAGES)

_ALIASES: dict[str, Stage] = {
    "W": Stage.W,
    "WAKE": Stage.W,
    "0": Stage.W,
    "N1": Stage.N1,
    "S1": Stage.N1,
    "1": Stage.N1,
    "N2": Stage.N2,
    "S2": Stage.N2,
    "2": Stage.N2,
    "N3": Stage.N3,
    "S3": Stage.N3,
    "S4": Stage.N3,
    "N4": Stage.N3,
    "3": Stage.N3,
    "R": Stage.R,
    "REM": Stage.R,
    "4": Stage.R,
    "ART": Stage.ART,
    "ARTEFACT": Stage.ART,
    "ARTIFACT": Stage.ART,
    "-1": Stage.ART,
    "UNS": Stage.UNS,
    "UNSCORED": Stage.UNS,
    "?": Stage.UNS,
    "-2": Stage.UNS,
}


def parse_stage(label: str | int) -> Stage:
    """Parse a stage label or code (``"N2"``, ``"S4"``, ``"REM"``, ``3``, …) into a :class:`Stage`."""
    if isinstance(label, int | np.integer):
        try:
            return Stage(int(label))
        except ValueError:
            raise InvalidInputError(
                f"Invalid stage code {label}: expected -2..4 (UNS, ART, W, N1, N2, N3, R)."
            ) from None
    key = str(label).strip().upper()
    if key not in _ALIASES:
        raise InvalidInputError(
            f"Unknown stage label '{label}'. Known: W, N1, N2, N3, R (also S1-S4, REM, ART, UNS)."
        )
    return _ALIASES[key]


def stages_to_labels(codes: npt.ArrayLike) -> list[str]:
    """Convert integer codes to labels (``[0, 2, 4] → ["W", "N2", "R"]``)."""
    return [Stage(int(c)).label for c in np.asarray(codes).ravel()]


def labels_to_stages(labels: list[str] | npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Convert labels to integer codes as an ``int8`` array."""
    return np.array([int(parse_stage(x)) for x in np.asarray(labels).ravel()], dtype=np.int8)


def stage_in(stages: npt.NDArray[np.generic], codes: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """Whether each stage code (an integer or float array) is one of ``codes``: ``np.isin``'s answer.

    One comparison per code: for the handful of codes of a stage gate this is about ten times cheaper
    than :func:`numpy.isin` on a lane's few hundred beds (it ran several times per live step).
    """
    out = np.equal(stages, codes[0]) if codes else np.zeros(np.shape(stages), dtype=bool)
    for c in codes[1:]:
        out |= np.equal(stages, c)
    return np.asarray(out, dtype=bool)
