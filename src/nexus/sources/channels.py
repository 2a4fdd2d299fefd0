"""Channel mapping from a device's metadata: Nexus channel names, and a per-channel scale to µV.

A device describes each channel by a label (``"C4"``, ``"EEG Fpz-Cz"``), a type (``"EEG"``,
``"EOG"``, ``"EMG"``, ``"ECG"``, …) and a unit (``"microvolts"``, ``"mV"``, ``"V"``, …). Nexus
names channels by role prefix (``"EEG C4"``: the role decides which analyzers read the row, see
:func:`nexus.core.montage.channel_roles`) and keeps electrophysiology in µV. :func:`map_channels`
builds both, and refuses, in one line, a stream whose unit is unknown, whose metadata describe
another number of channels than it carries, or that has no EEG channel (staging needs one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nexus.core.errors import InvalidInputError
from nexus.core.montage import channel_roles
from nexus.formats.edf import UNIT_TO_UV, unit_to_uv

#: channel types whose samples are potentials (converted to µV)
EPHYS_TYPES = ("EEG", "EOG", "EMG", "ECG")
#: lowest sampling rate Nexus records and stages, in Hz (the stager and detectors need >= 100 Hz)
MIN_FS = 100.0


@dataclass(frozen=True)
class ChannelMap:
    """How a device's rows become Nexus channels.

    Attributes
    ----------
    names : tuple of str
        Nexus channel names, in the device's row order (role prefix first: ``"EEG C4"``).
    scale : ndarray, shape (n_channels,)
        Factor taking each row from the device's unit to µV (1 for non-potentials kept as they are).
    units : tuple of str
        The device's unit of each row, as declared (``""`` when it declared none).
    """

    names: tuple[str, ...]
    scale: npt.NDArray[np.float64]
    units: tuple[str, ...]

    @property
    def identity(self) -> bool:
        """True when no row needs scaling."""
        return bool(np.all(self.scale == 1.0))

    def apply(self, block: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``block`` (channels, samples) in µV (in place when it is float64)."""
        if self.identity:
            return block
        block *= self.scale[:, None]
        return block


def unit_factor(unit: str) -> float | None:
    """Factor from ``unit`` to µV (None when the unit is not a known potential unit)."""
    return unit_to_uv(unit)


def map_channels(
    labels: Sequence[str], types: Sequence[str], units: Sequence[str], *, n_channels: int, what: str,
    default_type: str = "EEG", require_eeg: bool = True,
) -> ChannelMap:
    """Build the :class:`ChannelMap` of one stream from its metadata.

    Parameters
    ----------
    labels, types, units : sequence of str
        Per-channel label, type and unit from the device (each may be empty: then labels default
        to ``ch1`` …, types to the stream's ``default_type``, units to µV, the LSL convention).
    n_channels : int
        Rows the stream carries.
    what : str
        The stream, as named in messages (``"LSL stream 'bed-3'"``).
    default_type : str
        Channel type when the metadata give none (the stream's content type).
    require_eeg : bool
        Refuse a stream with no EEG channel.

    Raises
    ------
    InvalidInputError
        Metadata describe another number of channels, a unit is unknown, or no channel is EEG.
    """
    for name, seq in (("labels", labels), ("types", types), ("units", units)):
        if seq and len(seq) != n_channels:
            raise InvalidInputError(
                f"{what} carries {n_channels} channels but its metadata describe {len(seq)} channel {name}. "
                "Fix the device's channel description (or its channel count).")
    names: list[str] = []
    scale = np.ones(n_channels)
    for i in range(n_channels):
        label = (labels[i] if labels else "").strip() or f"ch{i + 1}"
        ctype = ((types[i] if types else "") or default_type).strip().upper()
        role = next((r for r in (*EPHYS_TYPES, "ACC", "RESP") if label.upper().startswith(r)), None)
        if role is None and ctype in EPHYS_TYPES:
            label, role = f"{ctype} {label}", ctype
        unit = (units[i] if units else "").strip()
        if role in EPHYS_TYPES:
            f = unit_factor(unit) if unit else 1.0
            if f is None:
                raise InvalidInputError(
                    f"{what}: channel '{label}' has unit '{unit}', which is not a potential Nexus knows "
                    f"({', '.join(('microvolts', 'mV', 'V', 'nV'))}). Set the device's unit.")
            scale[i] = f
        names.append(label)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInputError(f"{what}: channel names repeat ({', '.join(dup)}). Give each channel its own label.")
    if require_eeg and not channel_roles(names)["eeg"]:
        raise InvalidInputError(
            f"{what} has no EEG channel (channels: {', '.join(names)}); staging needs one. Label an EEG "
            "channel (type EEG or a label starting with 'EEG').")
    return ChannelMap(tuple(names), scale, tuple(u.strip() for u in units) if units else ("",) * n_channels)


def check_rate(fs: float, what: str) -> float:
    """Refuse an irregular stream or one below :data:`MIN_FS` (one line); return ``fs``."""
    if not fs or fs <= 0:
        raise InvalidInputError(f"{what} has an irregular sampling rate; Nexus records regular streams only.")
    if fs < MIN_FS:
        raise InvalidInputError(
            f"{what} is sampled at {fs:g} Hz; Nexus needs at least {MIN_FS:g} Hz to stage sleep. "
            "Set the device to 100 Hz or more.")
    return float(fs)


__all__ = ["EPHYS_TYPES", "MIN_FS", "UNIT_TO_UV", "ChannelMap", "check_rate", "map_channels", "unit_factor"]
