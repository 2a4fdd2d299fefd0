"""The technician's pre-flight: checks that every channel is fit before a session starts.

:func:`check_preparation` looks at a few seconds of signal per channel and finds the five faults
a technician fixes before lights-out: **disconnected** (no signal at all, NaN, or the amplifier's
rail), **flat** (an electrode bridged or a dead lead), **out of range** (DC offset or amplitude a
sleeping head cannot make), **noisy** (too much broadband or high-frequency power) and **line
noise** (50/60 Hz pick-up from a loose electrode). The session may start only when the report is
:attr:`PreparationReport.ready`.

All thresholds are in µV and apply to electrophysiology channels (EEG, EOG, EMG, ECG);
accelerometer and respiration channels are only checked for being connected and alive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError


class ChannelFault(StrEnum):
    """A reason a channel is not ready."""

    DISCONNECTED = "disconnected"
    FLAT = "flat"
    OUT_OF_RANGE = "out_of_range"
    NOISY = "noisy"
    LINE_NOISE = "line_noise"


@dataclass(frozen=True)
class Limits:
    """Thresholds of the pre-flight (defaults suit scalp EEG/EOG/EMG in µV).

    Attributes
    ----------
    flat_uv : float
        Standard deviation below which a channel is flat, in µV.
    range_uv : float
        Largest plausible absolute value (offset included), in µV.
    noisy_uv : float
        Standard deviation above which a channel is noisy, in µV.
    hf_ratio : float
        Largest share of power above 40 Hz (line frequency excluded) before a channel is noisy.
    line_ratio : float
        Largest share of power within ±1 Hz of the line frequency.
    line_hz : float
        Mains frequency, 50 Hz (Europe) or 60 Hz (Americas).
    """

    flat_uv: float = 0.5
    range_uv: float = 1000.0
    noisy_uv: float = 150.0
    hf_ratio: float = 0.5
    line_ratio: float = 0.3
    line_hz: float = 50.0


@dataclass(frozen=True)
class ChannelCheck:
    """The verdict for one channel: its faults, with a reason each, and the figures measured."""

    channel: str
    faults: tuple[ChannelFault, ...]
    reasons: tuple[str, ...]
    std_uv: float
    line_ratio: float

    @property
    def ok(self) -> bool:
        """True when the channel has no fault."""
        return not self.faults


@dataclass(frozen=True)
class PreparationReport:
    """The pre-flight of a session: one :class:`ChannelCheck` per channel."""

    channels: tuple[ChannelCheck, ...] = field(default_factory=tuple)

    @property
    def ready(self) -> bool:
        """True when every channel passed."""
        return all(c.ok for c in self.channels)

    @property
    def reasons(self) -> list[str]:
        """Every reason a channel is not ready, prefixed with its channel name."""
        return [f"{c.channel}: {r}" for c in self.channels for r in c.reasons]

    def summary(self) -> str:
        """One line: ``ready`` or ``not ready`` and why."""
        return "ready" if self.ready else "not ready — " + "; ".join(self.reasons)


_PASSIVE = ("acc", "resp", "pos", "light", "temp", "event", "marker")


def _is_electrophysiology(name: str) -> bool:
    low = name.lower()
    return not any(low.startswith(p) or f" {p}" in low for p in _PASSIVE)


def check_preparation(
    data: npt.ArrayLike,
    fs: float,
    channels: Sequence[str],
    limits: Limits | None = None,
) -> PreparationReport:
    """Check a few seconds of signal, channel by channel, before a session starts.

    Parameters
    ----------
    data : array_like, shape (n_channels, n_samples)
        At least 2 s of signal, in µV.
    fs : float
        Sampling rate in Hz (≥ 2.2 × the line frequency to check line noise).
    channels : sequence of str
        Channel names, one per row.
    limits : Limits, optional
        Thresholds (default :class:`Limits`).

    Returns
    -------
    PreparationReport
        ``.ready`` and ``.reasons``.
    """
    lim = limits or Limits()
    fs = check_number("fs", fs, gt=0, unit="Hz")
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(channels):
        raise InvalidInputError(
            f"Preparation needs data of shape (channels, samples) with {len(channels)} rows, got {x.shape}."
        )
    if x.shape[1] < 2 * fs:
        raise InvalidInputError(
            f"Preparation needs at least 2 s of signal, got {x.shape[1] / fs:.2f} s. Record longer and retry."
        )
    finite = np.isfinite(x)
    share_bad = 1.0 - finite.mean(axis=1)
    xz = np.where(finite, x, 0.0)
    n = np.maximum(finite.sum(axis=1), 1)
    mean = xz.sum(axis=1) / n
    std = np.sqrt(np.maximum((np.where(finite, x - mean[:, None], 0.0) ** 2).sum(axis=1) / n, 0.0))
    peak = np.abs(xz).max(axis=1)
    line, hf = _spectral_shares(xz - mean[:, None], fs, lim.line_hz)
    rail = _stuck_share(xz)

    out = []
    for i, name in enumerate(channels):
        faults: list[ChannelFault] = []
        reasons: list[str] = []

        def fault(kind: ChannelFault, why: str, faults: list[ChannelFault] = faults,
                  reasons: list[str] = reasons) -> None:
            faults.append(kind)
            reasons.append(f"{kind.value}: {why}")

        if share_bad[i] > 0.5 or (share_bad[i] > 0 and std[i] == 0):
            fault(ChannelFault.DISCONNECTED, f"{100 * share_bad[i]:.0f}% of samples missing (NaN/inf); check the lead")
        elif rail[i] > 0.5 and std[i] > 0:
            fault(ChannelFault.DISCONNECTED, "signal stuck at the amplifier's rail; re-seat the electrode")
        elif std[i] < lim.flat_uv:
            fault(ChannelFault.FLAT, f"std {std[i]:.2f} µV < {lim.flat_uv:g} µV; electrode bridged or lead dead")
        elif _is_electrophysiology(name):
            if peak[i] > lim.range_uv:
                fault(ChannelFault.OUT_OF_RANGE,
                      f"|signal| reaches {peak[i]:.0f} µV > {lim.range_uv:g} µV; check impedance and offset")
            if std[i] > lim.noisy_uv:
                fault(ChannelFault.NOISY, f"std {std[i]:.0f} µV > {lim.noisy_uv:g} µV; movement or a loose electrode")
            elif hf[i] > lim.hf_ratio:
                fault(ChannelFault.NOISY,
                      f"{100 * hf[i]:.0f}% of power above 40 Hz; muscle or electrode noise")
            if line[i] > lim.line_ratio:
                fault(ChannelFault.LINE_NOISE,
                      f"{100 * line[i]:.0f}% of power at {lim.line_hz:g} Hz; check electrode contact and ground")
        out.append(ChannelCheck(name, tuple(faults), tuple(reasons), float(std[i]), float(line[i])))
    return PreparationReport(tuple(out))


def _spectral_shares(
    x: npt.NDArray[np.float64], fs: float, line_hz: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Share of power near the line frequency, and above 40 Hz excluding it, per row."""
    from scipy.signal import welch

    nper = int(min(x.shape[1], 2 * fs))
    f, p = welch(x, fs=fs, nperseg=nper, axis=-1)
    total = p[:, f > 0.5].sum(axis=1) + 1e-12
    near_line = np.abs(f - line_hz) <= 1.0
    line = np.zeros(x.shape[0]) if fs < 2.2 * line_hz else p[:, near_line].sum(axis=1) / total
    hf = p[:, (f > 40) & ~near_line].sum(axis=1) / total
    return line, hf


def _stuck_share(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Share of samples sitting exactly at the row's extreme value (a clipped or railed amplifier)."""
    a = np.abs(x)
    return (a == a.max(axis=1, keepdims=True)).mean(axis=1)
