"""The recorder's event records: one per session and channel, its events' columns as lists in the batch's order.

``event_records`` cuts columns turned into Python values once; the reference here builds each record from the
group's own rows, as the journal has always been written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nexus.events.table import EventBatch
from nexus.facility.recorder import event_records

CHANNELS = ("ECG", "EEG C4-M1", "Acc X")


def _reference(ev: EventBatch, onsets: np.ndarray, names: list[str | None]) -> list[dict[str, Any]]:
    out = []
    for s, c in sorted({(int(s), int(c)) for s, c in zip(ev.session, ev.channel, strict=True)}):
        rows = np.flatnonzero((ev.session == s) & (ev.channel == c))  # in the batch's order
        if names[s] is None:
            continue
        rec = {"session": names[s], "kind": "event", "description": ev.kind, "channel": CHANNELS[c],
               "onset": [float(onsets[i]) for i in rows], "duration": [float(ev.duration[i]) for i in rows]}
        rec.update({k: [float(v[i]) for i in rows] for k, v in ev.extra.items()})
        out.append(rec)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_event_records_are_one_per_session_and_channel_in_batch_order(seed):
    rng = np.random.default_rng(seed)
    n = [0, 1, 2, 5, 40, 300, 300, 1000][seed]
    ev = EventBatch("heart_beat", rng.integers(0, 12, n), rng.integers(0, 3, n), rng.uniform(0, 30, n),
                    rng.uniform(0, 2, n), {"rr_s": rng.normal(1.0, 0.1, n), "beats": rng.integers(0, 9, n) * 1.0})
    names: list[str | None] = [None if s % 5 == 3 else f"bed-{s}" for s in range(12)]
    onsets = ev.onset + 3600.0
    got = event_records(ev, onsets, names, CHANNELS)
    assert got == _reference(ev, onsets, names)
    assert [list(r) for r in got] == [["session", "kind", "description", "channel", "onset", "duration", "rr_s",
                                       "beats"]] * len(got)
    assert all(type(x) is float for r in got for x in r["onset"] + r["rr_s"])


def test_a_session_without_a_name_is_left_out_and_the_others_kept():
    ev = EventBatch("spindle", np.array([2, 0, 2, 1]), np.array([0, 0, 0, 1]), np.array([4.0, 1.0, 2.0, 3.0]),
                    np.array([0.5, 0.6, 0.7, 0.8]))
    got = event_records(ev, ev.onset, ["a", None, "c"], CHANNELS)
    assert [(r["session"], r["channel"], r["onset"], r["duration"]) for r in got] == [
        ("a", "ECG", [1.0], [0.6]), ("c", "ECG", [4.0, 2.0], [0.5, 0.7])]
