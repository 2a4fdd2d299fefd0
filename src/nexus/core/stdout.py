"""Binary outputs on standard output (``-o -``): bytes to ``sys.stdout.buffer``, never to a terminal.

A command that writes a binary file (EDF+, an EDF+ hypnogram, a WAV file) to ``-`` writes its bytes
to standard output, so that it can be piped (``nexus synth -o - | other-tool``) or redirected.
When standard output is a terminal the command is refused before anything is computed, with a
line saying how to redirect it, as ``gzip`` refuses to write compressed data to a terminal:
tens of megabytes of binary on a screen are never what was wanted. The summary a command prints
then goes to standard error.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nexus.core.errors import InvalidInputError

_COPY_BYTES = 1 << 20
"""Bytes copied to standard output at a time (1 MiB)."""


def check_binary_stdout(what: str, example: str) -> None:
    """Refuse to write the binary ``what`` to standard output when that is a terminal.

    Parameters
    ----------
    what : str
        What would be written, e.g. ``"EDF file"``.
    example : str
        A file name to show in the message, e.g. ``"night.edf"``.

    Raises
    ------
    InvalidInputError
        Standard output is a terminal.
    """
    if sys.stdout.isatty():
        raise InvalidInputError(
            f"Not writing the {what} (binary) to a terminal: redirect standard output (-o - > {example}, or a pipe), "
            f"or give a file name (-o {example})."
        )


def write_stdout_bytes(data: bytes) -> None:
    """Write ``data`` to standard output as bytes (after any text already written to it)."""
    sys.stdout.flush()
    out = sys.stdout.buffer
    out.write(data)
    out.flush()


@contextlib.contextmanager
def stdout_file(suffix: str) -> Iterator[Path]:
    """A temporary file to write a binary output into; its bytes go to standard output when the block ends.

    For writers that need a file (EDF+, WAV). Nothing is sent when the block raises, and the file
    is removed either way.

    Parameters
    ----------
    suffix : str
        The file's extension (e.g. ``".edf"``), for writers that check it.
    """
    with tempfile.TemporaryDirectory(prefix="nexus-stdout-") as tmp:
        path = Path(tmp) / f"output{suffix}"
        yield path
        sys.stdout.flush()
        out = sys.stdout.buffer
        with path.open("rb") as f:
            shutil.copyfileobj(f, out, _COPY_BYTES)
        out.flush()
