"""Progress bars for long work (rich), switchable off.

Bars are off when ``disable=True``, when the ``NEXUS_PROGRESS`` environment variable is ``0``,
or when stderr is not a terminal (CI logs stay clean).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_enabled(disable: bool | None = None) -> bool:
    """Whether a progress bar should be shown."""
    if disable is not None:
        return not disable
    if os.environ.get("NEXUS_PROGRESS", "").strip() == "0":
        return False
    return sys.stderr.isatty()


def track(items: Iterable[T], description: str, total: float | None = None, disable: bool | None = None) -> Iterator[T]:
    """Iterate over ``items`` with a rich progress bar on stderr (or silently when disabled).

    Parameters
    ----------
    items : iterable
        What to iterate over.
    description : str
        Label shown left of the bar.
    total : float, optional
        Number of items when ``items`` has no ``len``.
    disable : bool, optional
        Force the bar off (``True``) or on (``False``); default: see module docstring.
    """
    if not progress_enabled(disable):
        yield from items
        return
    from rich.console import Console
    from rich.progress import track as rich_track

    yield from rich_track(items, description=description, total=total, console=Console(stderr=True), transient=True)
