"""Read and write event files (BIDS-like TSV): ``onset duration description channel`` + extra columns.

Onsets and durations are in seconds from the recording start. Extra columns hold
detector-specific values (``amp_uv``, ``hr_bpm``, …); empty cells are ``n/a`` as in BIDS.
Writes are atomic: a failure never leaves a half-written file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nexus.core.checks import check_file_exists, check_writable_path
from nexus.core.errors import DataFormatError, InvalidInputError
from nexus.core.files import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["REQUIRED_COLUMNS", "format_events", "read_events", "write_events"]

REQUIRED_COLUMNS: tuple[str, ...] = ("onset", "duration", "description", "channel")


def format_events(events: pd.DataFrame) -> str:
    """Events as the text of a TSV file (what :func:`write_events` writes), e.g. for standard output."""
    import io

    buf = io.StringIO()
    _events_frame(events).to_csv(buf, sep="\t", index=False, na_rep="n/a", float_format="%.6g", lineterminator="\n")
    return buf.getvalue()


def _events_frame(events: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in events.columns]
    if missing:
        raise InvalidInputError(f"Cannot write events: missing column(s) {', '.join(missing)}. "
                                f"Events need {', '.join(REQUIRED_COLUMNS)}.")
    cols = [*REQUIRED_COLUMNS, *[c for c in events.columns if c not in REQUIRED_COLUMNS]]
    return events[cols].sort_values("onset", kind="stable")


def write_events(path: str | Path, events: pd.DataFrame) -> Path:
    """Write events to a TSV file atomically.

    Parameters
    ----------
    path : str or Path
        Output file (``.tsv``).
    events : pandas.DataFrame
        Must have the columns ``onset`` (s), ``duration`` (s), ``description`` and ``channel``;
        any other columns are written after them. Rows are sorted by onset.

    Returns
    -------
    Path
        The file written.
    """
    out = check_writable_path(path, "events file")
    df = _events_frame(events)
    with atomic_path(out, suffix=".tmp") as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        df.to_csv(fh, sep="\t", index=False, na_rep="n/a", float_format="%.6g", lineterminator="\n")
    return out


def read_events(path: str | Path) -> pd.DataFrame:
    """Read an event TSV written by :func:`write_events` (or any BIDS-like events file).

    Raises
    ------
    NotFoundError
        The file does not exist.
    DataFormatError
        The file is not a TSV with numeric ``onset`` and ``duration`` columns.
    """
    import numpy as np
    import pandas as pd

    p = check_file_exists(path, "events file")
    try:
        df = pd.read_csv(p, sep="\t", na_values=["n/a"], keep_default_na=False, dtype={"channel": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"Cannot read '{p}' as an events TSV: {exc}.") from None
    for col in ("onset", "duration"):
        if col not in df.columns:
            raise DataFormatError(f"The events file '{p}' has no '{col}' column; expected the columns "
                                  f"{', '.join(REQUIRED_COLUMNS)} separated by tabs.")
        if df.empty:
            df[col] = df[col].astype(np.float64)
        elif not pd.api.types.is_numeric_dtype(df[col]):
            raise DataFormatError(f"The '{col}' column of '{p}' is not numeric (seconds expected).")
    if "description" not in df.columns:
        df["description"] = "n/a"
    if "channel" not in df.columns:
        df["channel"] = "n/a"
    df["channel"] = df["channel"].fillna("n/a")
    return df
