"""A sink that writes a 16-bit PCM WAV file, atomically (a temporary file renamed on close)."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_writable_path
from nexus.sinks.base import AUDIO_FS, Sink
from nexus.sinks.limiter import HARD_CEILING_DBFS


class WavSink(Sink):
    """Write the limited audio to ``path`` (16-bit PCM). The file appears only when the sink is closed.

    Parameters
    ----------
    path : str or Path
        Output WAV file.
    ceiling_dbfs, fs, channels
        See :class:`~nexus.sinks.base.Sink`.
    """

    def __init__(self, path: str | Path, ceiling_dbfs: float = HARD_CEILING_DBFS, fs: int = AUDIO_FS,
                 channels: int = 1) -> None:
        super().__init__(ceiling_dbfs, fs, channels)
        self.path = check_writable_path(path, "WAV file")
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        self._wav: wave.Wave_write | None = None

    def open(self) -> None:
        """Create the temporary file."""
        if self._wav is None:
            w = wave.open(str(self._tmp), "wb")  # noqa: SIM115 - closed in close()
            w.setnchannels(self.channels)
            w.setsampwidth(2)
            w.setframerate(self.fs)
            self._wav = w

    def _emit(self, block: npt.NDArray[np.float32]) -> None:
        if self._wav is None:
            self.open()
        assert self._wav is not None
        pcm = np.clip(np.round(block.astype(np.float64) * 32767.0), -32767, 32767).astype("<i2")
        self._wav.writeframes(pcm.tobytes())

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._wav is not None:
            self._wav.close()
            self._wav = None
            os.replace(self._tmp, self.path)
        super().close()


def read_wav(path: str | Path) -> tuple[npt.NDArray[np.float64], int]:
    """Read a PCM WAV file (8/16/24/32-bit) as float mono in ±1.0; returns ``(audio, fs)``."""
    with wave.open(str(path), "rb") as w:
        n, ch, width, fs = w.getnframes(), w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(n)
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / float(1 << 23)
    else:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)
    return x.reshape(-1, ch).mean(axis=1), fs
