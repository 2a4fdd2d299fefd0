"""The pre-flight of a session: read a few seconds from its source and check every channel.

:func:`preflight` pulls ``seconds`` of signal from a source on the facility clock (a
:class:`~nexus.core.clock.ManualClock` in tests and simulations) and hands them to
:func:`nexus.monitor.preparation.check_preparation`. The supervisor refuses to start a session
whose pre-flight is not ready (unless the technician overrides it).
"""

from __future__ import annotations

import numpy as np

from nexus.core.checks import check_number
from nexus.core.clock import Clock
from nexus.core.errors import NotFoundError
from nexus.monitor.preparation import Limits, PreparationReport, check_preparation
from nexus.sources.base import Source


def preflight(
    source: Source, clock: Clock, *, seconds: float = 4.0, timeout_s: float = 15.0, limits: Limits | None = None
) -> PreparationReport:
    """Read ``seconds`` of signal from an open source and check it.

    Parameters
    ----------
    source : Source
        The session's source (opened if needed).
    clock : Clock
        Waits between reads (real time, or a jump on a manual clock).
    seconds : float
        Signal to check, in seconds (≥ 2).
    timeout_s : float
        Give up when the source delivers less than that within this time.
    limits : Limits, optional
        Thresholds of the check.

    Raises
    ------
    NotFoundError
        When the source delivers too little signal in time (the device is off or unplugged).
    """
    check_number("seconds", seconds, ge=2, unit="s")
    source.open()
    t_end = clock.now() + timeout_s
    blocks, n = [], 0
    need = int(np.ceil(seconds * source.fs))
    while n < need:
        chunk = source.read()
        if chunk is None:
            if clock.now() >= t_end:
                raise NotFoundError(
                    f"Pre-flight of session '{source.session}': only {n / source.fs:.1f} s of signal in "
                    f"{timeout_s:g} s. Check that the device is on and connected."
                )
            clock.sleep_until(clock.now() + 0.1)
            continue
        blocks.append(np.asarray(chunk.data, dtype=np.float64))
        n += chunk.n_samples
    data = np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
    return check_preparation(data, source.fs, source.channels, limits)
