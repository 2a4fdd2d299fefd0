"""Atomic file writes: a file is either fully written or not there at all."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: str | Path, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is fsynced and renamed onto ``target``.

    On any error the temporary file is removed and ``target`` is left as it was (absent or old).
    The new file gets the usual permissions (0666 minus the umask), not ``mkstemp``'s 0600.

    Examples
    --------
    >>> with atomic_path("night.tsv") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("onset duration stage")
    """
    out = Path(target)
    folder = out.parent if str(out.parent) else Path(".")
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=suffix, dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise disk_full_error(out) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full (``ENOSPC``, ``EDQUOT``, edfio's own message)."""
    if not isinstance(exc, OSError):
        return False
    return exc.errno in (errno.ENOSPC, errno.EDQUOT) or "not enough free space" in str(exc).lower()


def disk_full_error(path: str | Path) -> Exception:
    """The one-line :class:`~nexus.core.errors.StorageError` for a write to ``path`` that found the disk full."""
    from nexus.core.errors import StorageError

    return StorageError(f"No space left on the disk for '{path}': free some space or write to another folder "
                        "(nothing was written under that name).")
