"""Read and write EDF / EDF+ / BDF recordings (through edfio).

:class:`Recording` is the in-memory form every other layer uses: signals by channel (each
with its own sampling rate, physical values, µV for EEG/EOG/EMG/ECG), start time and
annotations ``(onset_s, duration_s, text)``. :func:`read_edf` returns every signal stored in a
potential unit (V, mV, µV, nV) in µV, so no caller converts units itself.

Writes are atomic: the file is written next to the target and renamed into place, so a
failure never leaves a half-written EDF behind.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_file_exists, check_writable_path, did_you_mean
from nexus.core.errors import DataFormatError, InvalidInputError
from nexus.core.files import atomic_path
from nexus.core.log import logger

UNIT_TO_UV: dict[str, float] = {
    "uv": 1.0, "µv": 1.0, "μv": 1.0, "microvolt": 1.0, "microvolts": 1.0,
    "mv": 1e3, "millivolt": 1e3, "millivolts": 1e3,
    "v": 1e6, "volt": 1e6, "volts": 1e6,
    "nv": 1e-3, "nanovolt": 1e-3, "nanovolts": 1e-3,
}
"""Potential units (lower case, no spaces) and their factor to µV."""


def unit_to_uv(unit: str) -> float | None:
    """Factor from ``unit`` to µV (None when ``unit`` is not a potential unit, e.g. ``"%"`` or ``"bpm"``)."""
    return UNIT_TO_UV.get(unit.strip().lower().replace(" ", ""))


@dataclass(frozen=True)
class Annotation:
    """An EDF+ annotation: onset and duration in seconds from the recording start, and text."""

    onset: float
    duration: float
    text: str


@dataclass
class Signal:
    """One channel: physical samples and their sampling rate.

    Attributes
    ----------
    label : str
        Channel name (e.g. ``"EEG C4-M1"``).
    data : ndarray of float64, shape (n_samples,)
        Samples in ``unit``.
    fs : float
        Sampling rate in Hz.
    unit : str
        Physical dimension (``"uV"`` for electrophysiology).
    """

    label: str
    data: npt.NDArray[np.float64]
    fs: float
    unit: str = "uV"

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.data) / self.fs


@dataclass
class Recording:
    """A multi-channel recording with annotations, as read from or written to EDF+."""

    signals: list[Signal]
    annotations: list[Annotation] = field(default_factory=list)
    start: dt.datetime | None = None
    patient: str = ""

    @property
    def labels(self) -> list[str]:
        """Channel labels, in file order."""
        return [s.label for s in self.signals]

    @property
    def duration(self) -> float:
        """Length of the longest channel, in seconds."""
        return max((s.duration for s in self.signals), default=0.0)

    def channel(self, name: str) -> Signal:
        """Return the channel called ``name`` (exact, then case-insensitive, then prefix-free match).

        ``"C4-M1"`` finds ``"EEG C4-M1"``. Raises :class:`InvalidInputError` listing the channels
        found and the closest name when there is no match.
        """
        return self.signals[self.index(name)]

    def index(self, name: str) -> int:
        """Row index of channel ``name`` (see :meth:`channel` for the matching rules)."""
        return channel_index(self.labels, name)


def channel_index(labels: Sequence[str], name: str) -> int:
    """Index of channel ``name`` among ``labels``: exact, then case-insensitive, then prefix-free match.

    ``"C4-M1"`` finds ``"EEG C4-M1"``. Raises :class:`InvalidInputError` listing the channels
    found and the closest name when there is no match (a caller may choose channels by name from
    the header alone, before reading any samples: ``read_edf(pick=...)``).
    """
    labels = list(labels)
    if name in labels:
        return labels.index(name)
    low = [lab.lower() for lab in labels]
    if name.lower() in low:
        return low.index(name.lower())
    bare = [lab.split(" ", 1)[-1].lower() for lab in labels]
    if name.lower() in bare:
        return bare.index(name.lower())
    raise InvalidInputError(
        f"No channel '{name}' in the recording.{did_you_mean(name, labels)} Channels found: {', '.join(labels)}."
    )


def read_edf(path: str | Path, *, keep: Callable[[str, str], bool] | None = None,
             annotations: bool = True, pick: Callable[[list[str]], Collection[str]] | None = None) -> Recording:
    """Read an EDF, EDF+ or BDF file into a :class:`Recording`, potentials in µV.

    A signal whose physical dimension is a potential unit (V, mV, µV, nV; see :func:`unit_to_uv`)
    is returned in µV with unit ``"uV"``; any other signal (``"%"``, ``"bpm"``, ``"au"``) keeps
    its values and unit.

    Parameters
    ----------
    path : path
        The file.
    keep : callable, optional
        ``keep(label, unit)`` says which signals to read, ``unit`` as the file stores it; the others
        are never read from disk (default: all of them).
    annotations : bool
        Read the EDF+ annotations (parsing them takes a while on a night with thousands of events).
    pick : callable, optional
        ``pick(labels)`` gets the labels of all signals (those ``keep`` accepts) and returns the
        labels to read; the header alone is read before it is called, so a caller that needs a
        few channels chosen by name (``nexus stage``) never reads the others (an 8-h, 10-channel
        night at 256 Hz is 590 MB as float64). It may raise (a channel that is not there).

    Raises
    ------
    NotFoundError
        The file does not exist.
    DataFormatError
        The header is corrupt or the data are truncated (the message says which).
    """
    import warnings

    import edfio

    p = check_file_exists(path, "recording")
    _check_header(p)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw: Any
            if p.suffix.lower() == ".bdf":
                raw = edfio.read_bdf(p)  # this edfio reads BDF only whole (no lazy_load_data)
            else:
                raw = edfio.read_edf(p, lazy_load_data=keep is not None or pick is not None)
    except (ValueError, IndexError, UnicodeDecodeError, EOFError, NameError) as exc:  # NameError: edfio's
        raise DataFormatError(  # UnboundLocalError on a header it cannot parse
            f"Cannot read '{p}' as EDF/EDF+/BDF: {exc}. The header is corrupt or the file is truncated; "
            "re-export it from the recording software."
        ) from None
    for w in caught:
        m = _TRUNCATED.search(str(w.message))
        if m:
            said, has = int(m.group(1)), int(m.group(2))
            rec_s = float(raw.data_record_duration or 0.0)
            logger.warning("'%s' is truncated: %d of %d data records present (%.0f s of %.0f s; %.0f s missing); "
                           "only what is there is used.", p.name, has, said, has * rec_s, said * rec_s,
                           (said - has) * rec_s)
        else:
            logger.warning("'%s': %s", p.name, w.message)
    kept = [s for s in raw.signals if keep is None or keep(s.label, s.physical_dimension)]
    if pick is not None:
        wanted = set(pick([s.label for s in kept]))
        kept = [s for s in kept if s.label in wanted]
    try:
        signals = [_in_uv(s.label, np.asarray(s.data, dtype=np.float64), float(s.sampling_frequency),
                          s.physical_dimension)
                   for s in kept]
    except (ValueError, IndexError) as exc:
        raise DataFormatError(
            f"Cannot read the samples of '{p}': {exc}. The file is probably truncated."
        ) from None
    start = None
    try:
        start = dt.datetime.combine(raw.startdate, raw.starttime)
    except Exception:  # edfio raises for anonymised dates ("X"); the start stays unknown
        start = None
    try:
        anns = [Annotation(float(a.onset), float(a.duration or 0.0), a.text)
                for a in (raw.annotations if annotations else ())]
    except (ValueError, IndexError) as exc:
        raise DataFormatError(f"Cannot read the annotations of '{p}': {exc}. The header is corrupt or the file "
                              "is truncated; re-export it from the recording software.") from None
    try:
        patient = str(raw.patient.code)
    except Exception:  # plain EDF (not EDF+): no patient subfields
        patient = ""
    return Recording(signals=signals, annotations=anns, start=start, patient="" if patient == "X" else patient)


def _in_uv(label: str, data: npt.NDArray[np.float64], fs: float, unit: str) -> Signal:
    """A signal as read, in µV when ``unit`` is a potential unit."""
    scale = unit_to_uv(unit)
    if scale is None:
        return Signal(label, data, fs, unit)
    return Signal(label, data if scale == 1.0 else data * scale, fs, "uV")


_TRUNCATED = re.compile(r"header indicates (\d+) data records, but file contains (\d+) records")


def _check_header(p: Path) -> None:
    """Refuse a header whose numbers cannot describe the file (record duration, samples per record)."""
    with open(p, "rb") as fh:
        head = fh.read(256)
        try:
            ns = int(head[252:256].decode("ascii").strip())
            duration = float(head[244:252].decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return  # edfio names what is wrong with the fixed header
        if ns <= 0 or ns > 4096:
            return
        sig = fh.read(216 * ns + 8 * ns)
    size = p.stat().st_size
    try:
        labels = [sig[16 * k: 16 * k + 16].decode("ascii", "replace").strip() for k in range(ns)]
        spr = [int(sig[216 * ns + 8 * k: 216 * ns + 8 * k + 8].decode("ascii").strip()) for k in range(ns)]
    except (UnicodeDecodeError, ValueError):
        return
    if duration <= 0 and any(lab != "EDF Annotations" for lab in labels):
        raise DataFormatError(f"Cannot read '{p}': its header says each data record lasts {duration:g} s, so no "
                              "sampling rate follows from it. The header is corrupt; re-export the recording.")
    width = 3 if p.suffix.lower() == ".bdf" else 2
    for lab, n in zip(labels, spr, strict=True):
        if n <= 0 or n * width > max(0, size - 256 * (ns + 1)):
            raise DataFormatError(f"Cannot read '{p}': signal '{lab}' says {n} samples per data record, more than "
                                  "the whole file holds (or none). The header is corrupt; re-export the recording.")


def _physical_range(x: npt.NDArray[np.float64]) -> tuple[float, float]:
    lo, hi = float(np.min(x)) if x.size else -1.0, float(np.max(x)) if x.size else 1.0
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InvalidInputError("Cannot write EDF: a signal contains NaN or infinite values. Clean it first.")
    if hi - lo < 1e-6:
        lo, hi = lo - 1.0, hi + 1.0
    pad = 0.01 * (hi - lo)
    return round(lo - pad, 3), round(hi + pad, 3)


def write_edf(
    path: str | Path,
    signals: Sequence[Signal],
    annotations: Iterable[Annotation] = (),
    *,
    start: dt.datetime | None = None,
    patient_code: str = "X",
) -> Path:
    """Write signals and annotations as EDF+ (atomically: temporary file, then rename).

    Parameters
    ----------
    path : path-like
        Output file; its folder must exist and be writable.
    signals : sequence of Signal
        Channels; each may have its own sampling rate. ``duration × fs`` should be whole samples
        per 1-s data record.
    annotations : iterable of Annotation
        EDF+ annotations (stages, events, faults).
    start : datetime, optional
        Recording start (default: 2000-01-01 22:00, so that synthetic files are reproducible).
    patient_code : str
        Pseudonymous patient code for the EDF+ header (never a name).
    """
    import edfio

    out = check_writable_path(path, "EDF file")
    if not signals:
        raise InvalidInputError("Cannot write EDF: no signals given.")
    start = start or dt.datetime(2000, 1, 1, 22, 0, 0)
    sigs = [
        edfio.EdfSignal(
            np.asarray(s.data, dtype=np.float64),
            sampling_frequency=s.fs,
            label=s.label[:16],
            physical_dimension=s.unit[:8],
            physical_range=_physical_range(np.asarray(s.data)),
        )
        for s in signals
    ]
    try:
        edf = edfio.Edf(
            sigs,
            patient=edfio.Patient(code=patient_code),
            recording=edfio.Recording(startdate=start.date()),
            starttime=start.time(),
            annotations=[edfio.EdfAnnotation(a.onset, a.duration or None, a.text[:200]) for a in annotations],
        )
    except ValueError as exc:  # e.g. a length that is not a whole number of 1-s data records
        raise InvalidInputError(f"Cannot write the EDF '{out}': {exc}. Give every signal a whole number of "
                                "seconds.") from None
    with atomic_path(out) as tmp:
        edf.write(tmp)
    return out
