"""Event containers shared by every detector: a batched :class:`EventBatch` and offline :class:`EventResults`.

An :class:`EventBatch` holds events as parallel arrays (session, channel, onset, duration and
detector-specific columns); it is what the streaming detectors return from ``step``. An
:class:`EventResults` wraps a :class:`pandas.DataFrame` with the event-file columns
``onset, duration, description, channel`` plus the detector's own columns, and a
:meth:`~EventResults.summary` like YASA's detection results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["EventBatch", "EventResults"]


@dataclass
class EventBatch:
    """Events from many sessions as parallel arrays.

    Attributes
    ----------
    kind : str
        What was detected (``"spindle"``, ``"slow_oscillation"``, …); the event description.
    session : ndarray of int
        Session row index (leading axis of the streaming block).
    channel : ndarray of int
        Channel row index within the session.
    onset : ndarray of float
        Start of each event, in seconds since the stream (or recording) started.
    duration : ndarray of float
        Duration of each event, in seconds.
    extra : dict of str to ndarray
        Detector-specific columns, one value per event (names carry units, e.g. ``amp_uv``).
    """

    kind: str
    session: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    channel: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    onset: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    duration: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    extra: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.onset.size)

    def select(self, keep: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> EventBatch:
        """Return the events where ``keep`` is True (or at the indices ``keep``, in that order)."""
        return EventBatch(
            self.kind,
            self.session[keep],
            self.channel[keep],
            self.onset[keep],
            self.duration[keep],
            {k: v[keep] for k, v in self.extra.items()},
        )

    @staticmethod
    def concat(kind: str, batches: Sequence[EventBatch], extra_names: Sequence[str] = ()) -> EventBatch:
        """Concatenate batches, ordered by session then onset."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return EventBatch(kind, extra={k: np.zeros(0) for k in extra_names})
        out = EventBatch(
            kind,
            np.concatenate([b.session for b in batches]),
            np.concatenate([b.channel for b in batches]),
            np.concatenate([b.onset for b in batches]),
            np.concatenate([b.duration for b in batches]),
            {k: np.concatenate([b.extra[k] for b in batches]) for k in batches[0].extra},
        )
        order = np.lexsort((out.onset, out.channel, out.session))
        return out.select(order)

    def to_frame(self, ch_names: Sequence[str] | None = None) -> pd.DataFrame:
        """The events as a DataFrame with the event-file columns (see :class:`EventResults`)."""
        import pandas as pd

        if ch_names is not None and len(self):
            names = np.asarray(list(ch_names), dtype=object)
            channel: npt.ArrayLike = names[self.channel]
        else:
            channel = self.channel.astype(str)
        df = pd.DataFrame(
            {
                "onset": self.onset,
                "duration": self.duration,
                "description": np.full(len(self), self.kind, dtype=object),
                "channel": np.asarray(channel, dtype=object),
                "session": self.session,
            }
        )
        for k, v in self.extra.items():
            df[k] = v
        return df


class EventResults:
    """Offline detection results: one row per event.

    Parameters
    ----------
    kind : str
        Event description (``"spindle"``, …).
    events : pandas.DataFrame
        Columns ``onset`` (s), ``duration`` (s), ``description``, ``channel`` and the
        detector-specific columns documented by the detector.
    duration_s : float
        Length of the analysed data, in seconds (for densities).
    """

    def __init__(self, kind: str, events: pd.DataFrame, duration_s: float) -> None:
        self.kind = kind
        self.events = events.drop(columns=["session"], errors="ignore").reset_index(drop=True)
        self.duration_s = float(duration_s)

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        return f"<EventResults {self.kind}: {len(self)} events in {self.duration_s:.0f} s>"

    def summary(self, grp_chan: bool = False) -> pd.DataFrame:
        """The events table, or per-channel averages when ``grp_chan`` is True.

        The grouped form has ``count``, ``density_per_min`` (events per minute of analysed
        data) and the mean of every numeric column.
        """
        if not grp_chan:
            return self.events.copy()
        import pandas as pd

        if self.events.empty:
            return pd.DataFrame(columns=["channel", "count", "density_per_min"])
        g = self.events.groupby("channel", sort=True)
        out = g.mean(numeric_only=True)
        out.insert(0, "count", g.size())
        out.insert(1, "density_per_min", out["count"] / max(self.duration_s / 60.0, 1e-9))
        return out.reset_index()
