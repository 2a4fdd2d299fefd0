"""The package logger.

The library only ever calls ``logger.<level>(...)``; it never configures handlers
(no ``basicConfig``). Applications (the CLI) call :func:`set_log_level`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from rich.text import Text

logger = logging.getLogger("nexus")
logger.addHandler(logging.NullHandler())


def set_log_level(verbose: int = 0, quiet: bool = False) -> None:
    """Route ``nexus`` logs to stderr through rich at a level chosen by flags.

    Parameters
    ----------
    verbose : int
        0 → WARNING, 1 → INFO, 2+ → DEBUG.
    quiet : bool
        Only errors.
    """
    from rich.console import Console
    from rich.logging import RichHandler

    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    for h in list(logger.handlers):
        if not isinstance(h, logging.NullHandler):
            logger.removeHandler(h)
    # stderr: stdout carries the commands' output (JSON, tables), which log lines must not corrupt
    handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False, markup=False,
                          log_time_format=_iso_time)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


def _iso_time(when: datetime) -> Text:
    """ISO 8601 local time with its UTC offset (``2026-12-05T23:01:07+00:00``), unambiguous in any locale."""
    from rich.text import Text

    return Text(when.astimezone().isoformat(timespec="seconds"))
