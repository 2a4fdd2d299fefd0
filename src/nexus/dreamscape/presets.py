"""Small ready-made programs and conversions that replays, benchmarks and tests share."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nexus.dreamscape.schema import Clas, Limits, Program, Scene


def default_clas_program(clas: Clas | None = None) -> Program:
    """A minimal program that only runs CLAS in N3 (for replays and benchmarks)."""
    return Program(dreamscape=1, name="CLAS only", scenes={"deep": Scene(clas=clas or Clas())},
                   rules={"N3": "deep"}, limits=Limits(max_stim_per_min=60.0))


def stages_to_probs(stages: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """One-hot stage probabilities (n_epochs, 5) from stage codes; artefact/unscored epochs give NaN rows."""
    st = np.asarray(stages, dtype=int).ravel()
    probs = np.full((st.size, 5), np.nan)
    ok = (st >= 0) & (st <= 4)
    probs[ok] = np.eye(5)[st[ok]]
    return probs
