"""A live audio output through PortAudio (the ``sounddevice`` package, extra ``audio``).

There is no fallback: when the package, the PortAudio library or an output device is missing,
:meth:`LiveSink.open` raises :class:`~nexus.core.errors.NotFoundError` saying what to install.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.errors import NotFoundError
from nexus.sinks.base import AUDIO_FS, Sink
from nexus.sinks.limiter import HARD_CEILING_DBFS


def _sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError:
        raise NotFoundError(
            "Live audio needs the 'sounddevice' package: pip install 'bedtime-nexus[audio]'."
        ) from None
    except OSError as exc:  # the package is there but libportaudio is not
        raise NotFoundError(
            f"Live audio needs the PortAudio library ({exc}). Install it (e.g. 'apt install libportaudio2')."
        ) from None
    return sounddevice


def output_devices() -> list[str]:
    """Names of the audio output devices PortAudio sees (raises NotFoundError when PortAudio is missing)."""
    sd = _sounddevice()
    return [d["name"] for d in sd.query_devices() if d.get("max_output_channels", 0) > 0]


class LiveSink(Sink):
    """Play the limited audio on a sound card.

    Parameters
    ----------
    device : str or int, optional
        Output device name or index (default: the system's default output).
    ceiling_dbfs, fs, channels
        See :class:`~nexus.sinks.base.Sink`.
    """

    def __init__(self, device: str | int | None = None, ceiling_dbfs: float = HARD_CEILING_DBFS,
                 fs: int = AUDIO_FS, channels: int = 1) -> None:
        super().__init__(ceiling_dbfs, fs, channels)
        self.device = device
        self._stream: Any = None

    @property
    def latency_s(self) -> float | None:
        """The output latency the device reports, in s (None before :meth:`open`)."""
        return None if self._stream is None else float(self._stream.latency)

    def open(self) -> None:
        """Open the output stream; raise NotFoundError when no output device exists."""
        if self._stream is not None:
            return
        sd = _sounddevice()
        if not output_devices():
            raise NotFoundError("No audio output device found. Connect a sound card or use a WAV sink (-o file.wav).")
        try:
            self._stream = sd.OutputStream(samplerate=self.fs, channels=self.channels, dtype="float32",
                                           device=self.device)
            self._stream.start()
        except Exception as exc:  # PortAudioError and ValueError (unknown device) carry the reason
            raise NotFoundError(f"Cannot open audio output {self.device!r}: {exc}.") from None

    def _emit(self, block: npt.NDArray[np.float32]) -> None:
        if self._stream is None:
            self.open()
        self._stream.write(np.ascontiguousarray(block, dtype=np.float32))

    def close(self) -> None:
        """Stop and close the stream."""
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
        super().close()
