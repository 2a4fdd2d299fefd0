"""A sink that writes a 16-bit PCM WAV file, atomically (a temporary file renamed on close).

The samples go to a hidden ``.<name>.<pid>.part`` next to the target; :meth:`WavSink.close`
renames it into place. A write that fails (disk full: one :class:`~nexus.core.errors.StorageError`
line) or a ``with`` block left by an exception removes the partial file instead (:meth:`WavSink.abort`),
so nothing appears under the asked name. Partial files left by a writer that was killed (its
process is gone) are removed when the next writer opens the same target.
"""

from __future__ import annotations

import contextlib
import os
import wave
from pathlib import Path
from types import TracebackType

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
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        self._wav: wave.Wave_write | None = None

    def open(self) -> None:
        """Create the temporary file (and remove the partial files of killed writers of the same target)."""
        if self._wav is None:
            _clean_leftovers(self.path)
            try:
                w = wave.open(str(self._tmp), "wb")  # noqa: SIM115 - closed in close()
                w.setnchannels(self.channels)
                w.setsampwidth(2)
                w.setframerate(self.fs)
            except OSError as exc:
                self._tmp.unlink(missing_ok=True)
                raise self._error(exc) from None
            self._wav = w

    def _emit(self, block: npt.NDArray[np.float32]) -> None:
        if self._wav is None:
            self.open()
        assert self._wav is not None
        pcm = np.clip(np.round(block.astype(np.float64) * 32767.0), -32767, 32767).astype("<i2")
        try:
            self._wav.writeframes(pcm.tobytes())
        except OSError as exc:
            self.abort()
            raise self._error(exc) from None

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._wav is not None:
            try:
                self._wav.close()
                with open(self._tmp, "rb") as fh:
                    os.fsync(fh.fileno())
            except OSError as exc:
                self.abort()
                raise self._error(exc) from None
            self._wav = None
            os.replace(self._tmp, self.path)
        super().close()

    def abort(self) -> None:
        """Stop writing and remove the partial file: nothing appears under the target's name."""
        if self._wav is not None:
            w, self._wav = self._wav, None
            with contextlib.suppress(OSError):
                w.close()
            if w._file is not None:  # type: ignore[attr-defined]  # close() failed before closing the file
                with contextlib.suppress(OSError):
                    w._file.close()  # type: ignore[attr-defined]
        self._tmp.unlink(missing_ok=True)
        super().close()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()  # a failed write leaves no file under the asked name
        else:
            self.close()

    def _error(self, exc: OSError) -> Exception:
        from nexus.core.errors import StorageError
        from nexus.core.files import disk_full_error, is_disk_full

        if is_disk_full(exc):
            return disk_full_error(self.path)
        return StorageError(f"Cannot write the WAV file '{self.path}' ({exc.strerror or exc}): choose another "
                            "folder (nothing was written under that name).")


def _clean_leftovers(path: Path) -> None:
    """Remove ``.<name>.<pid>.part`` files next to ``path`` whose writer process is gone (killed)."""
    for part in path.parent.glob(f".{path.name}.*.part"):
        pid = part.name[len(path.name) + 2: -len(".part")]
        if pid.isdigit() and not _alive(int(pid)):
            part.unlink(missing_ok=True)
    old = path.with_name(f".{path.name}.part")  # the name older versions used (no pid)
    old.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
