"""Lab Streaming Layer inlets as live sources.

Importing this module points liblsl at the ``lsl_api.cfg`` shipped next to it (through the
``LSLAPICFG`` environment variable, unless the user set one), whose wider ``PortRange`` lets a
resolver find all of the > 30 outlets a facility runs on one host. liblsl reads that file once,
on its first use, so import :mod:`nexus.sources.lsl` before creating any pylsl object.

Timestamps are mapped to the session's time axis: LSL times of the sender plus the inlet's clock
offset (:meth:`pylsl.StreamInlet.time_correction`), minus the first sample's time. Samples whose
time goes backwards are dropped and counted (:attr:`LslSource.backwards`); a stream that goes
silent is reported by :attr:`LslSource.silent_s` and recovers by itself when it returns (the
inlet is opened with ``recover=True``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nexus.core.checks import check_number
from nexus.core.clock import Clock, RealClock
from nexus.core.errors import InvalidInputError, NotFoundError
from nexus.core.log import logger
from nexus.core.types import Chunk
from nexus.sources.base import Source

#: The liblsl configuration shipped with Nexus (wider PortRange for many outlets on one host).
LSL_CONFIG = Path(__file__).with_name("lsl_api.cfg")


def configure_lsl() -> Path:
    """Point liblsl at Nexus' ``lsl_api.cfg`` unless ``LSLAPICFG`` is already set; return the file used."""
    os.environ.setdefault("LSLAPICFG", str(LSL_CONFIG))
    return Path(os.environ["LSLAPICFG"])


configure_lsl()


def resolve_streams(
    name: str | None = None, type: str | None = None, *, timeout: float = 2.0, minimum: int = 1
) -> list[Any]:
    """Find LSL streams by name and/or type.

    Parameters
    ----------
    name, type : str, optional
        Stream name and content type (e.g. ``"EEG"``); at least one of them.
    timeout : float
        Longest wait, in seconds.
    minimum : int
        Return as soon as this many streams are found.

    Returns
    -------
    list of pylsl.StreamInfo
        Possibly empty.
    """
    import pylsl

    if name is None and type is None:
        raise InvalidInputError("Give the LSL stream's name or type (or both) to resolve it.")
    for what, val in (("name", name), ("type", type)):
        if val is not None and "'" in val:
            raise InvalidInputError(f"Invalid LSL stream {what} {val!r}: it must not contain quotes.")
    parts = [f"{k}='{v}'" for k, v in (("name", name), ("type", type)) if v is not None]
    return list(pylsl.resolve_bypred(" and ".join(parts), minimum=minimum, timeout=timeout))


class LslSource(Source):
    """A session fed by one LSL stream.

    Parameters
    ----------
    session : str
        The session this source feeds.
    name, type : str, optional
        Stream to resolve (by name and/or type); the first match is used.
    channels : sequence of str, optional
        Channel names; default: the labels in the stream's description, else ``"ch1"`` … .
    expected_channels : int, optional
        Refuse a stream with another channel count (catches the wrong device at the edge).
    timeout : float
        How long :meth:`open` waits for the stream, in seconds.
    clock : Clock, optional
        Used to measure silence (default: a :class:`RealClock`).
    max_samples : int
        Most samples pulled per :meth:`read`.
    """

    def __init__(
        self,
        session: str,
        *,
        name: str | None = None,
        type: str | None = None,
        channels: tuple[str, ...] | None = None,
        expected_channels: int | None = None,
        timeout: float = 5.0,
        clock: Clock | None = None,
        max_samples: int = 65536,
    ) -> None:
        if name is None and type is None:
            raise InvalidInputError("Give the LSL stream's name or type (or both) for an LslSource.")
        self.session = session
        self.name, self.type = name, type
        self.timeout = check_number("timeout", timeout, gt=0, unit="s")
        self.expected_channels = expected_channels
        self.clock = clock or RealClock()
        self.max_samples = int(max_samples)
        self.channels = tuple(channels) if channels else ()
        self.fs = 0.0
        self._inlet: Any = None
        self._t_first: float | None = None
        self._t_last = -np.inf
        self._seq = 0
        self._last_data_at: float | None = None
        self.backwards = 0
        """Samples dropped because their timestamp went backwards."""
        self.offset_s = 0.0
        """Last clock offset of the sender, in seconds (added to its timestamps)."""

    def open(self) -> None:
        """Resolve the stream and open an inlet (raises :class:`NotFoundError` when there is none)."""
        if self._inlet is not None:
            return
        import pylsl

        found = resolve_streams(self.name, self.type, timeout=self.timeout)
        what = " and ".join(f"{k} '{v}'" for k, v in (("name", self.name), ("type", self.type)) if v)
        if not found:
            raise NotFoundError(
                f"No LSL stream with {what} found within {self.timeout:g} s. Check that the device or relay "
                "is streaming and on this network."
            )
        info = found[0]
        n_ch, fs = info.channel_count(), info.nominal_srate()
        if fs <= 0:
            raise InvalidInputError(f"LSL stream with {what} has an irregular rate; Nexus needs a regular rate.")
        if self.expected_channels is not None and n_ch != self.expected_channels:
            raise InvalidInputError(
                f"LSL stream with {what} has {n_ch} channels, expected {self.expected_channels}. "
                "Check the device montage."
            )
        self.fs = float(fs)
        self._inlet = pylsl.StreamInlet(info, max_buflen=360, recover=True)
        self._inlet.open_stream(timeout=self.timeout)
        if not self.channels:
            self.channels = _labels(self._inlet, n_ch)
        elif len(self.channels) != n_ch:
            raise InvalidInputError(
                f"{len(self.channels)} channel names given for an LSL stream of {n_ch} channels."
            )
        self._refresh_offset()

    def _refresh_offset(self) -> None:
        try:
            self.offset_s = float(self._inlet.time_correction(timeout=1.0))
        except Exception as exc:  # the sender may be gone for a moment; keep the last offset
            logger.debug("LSL time correction failed for %s: %s", self.session, exc)

    @property
    def silent_s(self) -> float:
        """Seconds since the last sample arrived (0 before the first one)."""
        if self._last_data_at is None:
            return 0.0
        return max(0.0, self.clock.now() - self._last_data_at)

    def read(self) -> Chunk | None:
        """Pull what has arrived; ``None`` when nothing has.

        Times are seconds since the stream's first sample, on the sender's clock corrected by the
        inlet's offset; samples going backwards in time are dropped and counted.
        """
        if self._inlet is None:
            self.open()
        data, stamps = self._inlet.pull_chunk(timeout=0.0, max_samples=self.max_samples, as_numpy=True)
        if stamps is None or len(stamps) == 0:
            return None
        if self._seq % 50 == 0:
            self._refresh_offset()
        t = np.asarray(stamps, dtype=np.float64) + self.offset_s
        keep = t > self._t_last + 0.5 / self.fs
        # monotone: a sample must also be later than every earlier one in this chunk
        keep &= t >= np.maximum.accumulate(np.where(keep, t, -np.inf))
        dropped = int((~keep).sum())
        if dropped:
            self.backwards += dropped
            logger.warning("Session %s: %d LSL samples with timestamps going backwards dropped.",
                           self.session, dropped)
        if not keep.any():
            return None
        t, block = t[keep], np.asarray(data, dtype=np.float64)[keep].T
        if self._t_first is None:
            self._t_first = float(t[0])
        self._t_last = float(t[-1])
        self._last_data_at = self.clock.now()
        chunk = Chunk(self.session, float(t[0]) - self._t_first, self.fs, np.ascontiguousarray(block),
                      self.channels, self._seq)
        self._seq += 1
        return chunk

    def close(self) -> None:
        """Close the inlet (safe to call twice)."""
        if self._inlet is not None:
            try:
                self._inlet.close_stream()
            finally:
                self._inlet = None


def _labels(inlet: Any, n: int) -> tuple[str, ...]:
    """Channel labels from the stream's XML description, else ``ch1`` … ``chN``."""
    try:
        ch = inlet.info(timeout=1.0).desc().child("channels").child("channel")
        labels = []
        for _ in range(n):
            labels.append(ch.child_value("label"))
            ch = ch.next_sibling()
        if all(labels) and len(set(labels)) == n:
            return tuple(labels)
    except Exception as exc:  # a description is optional in LSL
        logger.debug("No channel labels in LSL stream: %s", exc)
    return tuple(f"ch{i + 1}" for i in range(n))


__all__ = ["LSL_CONFIG", "LslSource", "configure_lsl", "resolve_streams"]
