"""The one recorder of the facility: what a lane step produced, written once.

:class:`Recorder` turns a lane's :class:`~nexus.facility.step.StepOutput` — closed epochs with
their stage probabilities, events, the controller's commands and decisions — into journal
records (:class:`~nexus.store.recording.RecordingJournal`) and hands them to the listeners
(console feed, summaries). Slots become session ids and lane-stream times become seconds since
each session's start here, and nowhere else. Glitches go through the supervisor, which rate-limits
and journals them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.stages import EPOCH_S
from nexus.facility.pipeline import Lane
from nexus.facility.step import StepOutput
from nexus.store.recording import RecordingJournal

Listener = Callable[[str, list[dict[str, Any]]], None]


def round_rows(x: npt.NDArray[np.floating[Any]], ndigits: int) -> list[list[float]]:
    """``[[round(v, ndigits) for v in row] for row in x.tolist()]``, the same floats, without a call per value.

    NumPy rounds ``v * 10**ndigits`` to an integer k and divides, which gives the float nearest k / 10**ndigits, as
    Python's ``round`` does, whenever both pick the same k: they can differ only where ``v * 10**ndigits`` is within
    rounding error of a half (0.12345 -> 0.1234 in NumPy, 0.1235 in Python, whose decimal rounding sees that the
    float 0.12345 is a little above it). Those few values are rounded by Python. An epoch close of 500 beds: 2,500
    ``round`` calls, 1.7 -> 0.14 ms (loaded).
    """
    v = np.asarray(x, dtype=np.float64)
    scaled = v * 10.0**ndigits
    rows: list[list[float]] = np.round(v, ndigits).tolist()
    # within 1e-6 of a half, or too large for that test to hold (the product's error passes 2**-23), or not finite
    with np.errstate(invalid="ignore"):  # inf - inf
        near = ~(np.abs(scaled - np.floor(scaled) - 0.5) >= 1e-6) | ~(np.abs(scaled) < 2.0**30)
    for i, j in zip(*np.nonzero(near), strict=True):
        rows[i][j] = round(float(v[i, j]), ndigits)
    return rows


def event_records(ev: Any, onsets: npt.NDArray[np.float64], names: list[str | None],
                  channels: tuple[str, ...]) -> list[dict[str, Any]]:
    """Journal records of a batch of events: one per session and channel, with one list entry per event.

    Grouping keeps a thousand beds' heart beats from costing one JSON line each per step;
    :func:`nexus.store.recording.recover_journal` expands the lists again.
    """
    out: list[dict[str, Any]] = []
    if not len(ev):
        return out
    key = ev.session.astype(np.int64) * 1024 + ev.channel
    order = np.argsort(key, kind="stable")
    cuts = (np.flatnonzero(np.diff(key[order])) + 1).tolist()
    # every column put in group order and turned into Python values once, then cut into the groups' lists
    # (not two NumPy calls per group and column: at 100 beds a step's heart beats are 100 groups)
    session, channel = ev.session[order].tolist(), ev.channel[order].tolist()
    onset, duration = onsets[order].tolist(), ev.duration[order].tolist()
    extra = [(k, v[order].tolist()) for k, v in ev.extra.items()]
    for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True):
        name = names[int(session[a])]
        if name is None:
            continue
        rec: dict[str, Any] = {"session": name, "kind": "event", "description": ev.kind,
                               "channel": channels[int(channel[a])], "onset": onset[a:b], "duration": duration[a:b]}
        for k, v in extra:
            rec[k] = v[a:b]
        out.append(rec)
    return out


class Recorder:
    """Writes every lane step's stages, events and decisions; keeps the facility's running totals.

    Parameters
    ----------
    journal : RecordingJournal or None
        Where records go (nothing is written without one; totals are still kept).
    """

    def __init__(self, journal: RecordingJournal | None) -> None:
        self.journal = journal
        self.listeners: list[Listener] = []
        self.event_counts: dict[str, int] = {}
        self.command_counts: dict[str, int] = {}
        self.decisions = 0
        self.epochs_staged = 0
        self.click_latency_s: list[float] = []

    def write(self, lane: Lane, out: StepOutput) -> tuple[int, int]:
        """Record one step of ``lane``; return (epochs, events) recorded."""
        names = lane.sessions
        records: list[dict[str, Any]] = []
        n_epochs = n_events = 0
        for st in out.stages:
            onsets = lane.session_time(st.slots, st.onsets)
            # an epoch close of every bed at once: Python lists of the columns first (what was per bed numpy
            # scalar work, 8 us a bed: 4 ms of the closing tick at 500 beds), the same rounding of the same floats
            finite: list[bool] = np.isfinite(st.probs).all(axis=1).tolist()  # type: ignore[assignment]
            for s, o, code, p, ok in zip(st.slots.tolist(), onsets.tolist(), st.stages.tolist(),
                                         round_rows(st.probs, 4), finite, strict=True):
                if names[s] is None:
                    continue
                records.append({"session": names[s], "kind": "stage", "onset": o, "duration": EPOCH_S,
                                "stage": code, "probs": p if ok else None})
            n_epochs += len(st)
        self.epochs_staged += n_epochs
        for ev in out.events:
            self.event_counts[ev.kind] = self.event_counts.get(ev.kind, 0) + len(ev)
            n_events += len(ev)
            if self.journal is not None or self.listeners:
                records += event_records(ev, lane.session_time(ev.session, ev.onset), names, lane.channels)
        for batch in out.commands:
            self.click_latency_s += batch.click_latency_s
            for c in batch.commands:
                self.command_counts[c.kind] = self.command_counts.get(c.kind, 0) + 1
            self.decisions += len(batch.decisions)
            if self.journal is None and not self.listeners:
                continue
            origin = lane.origin / lane.fs
            for d in batch.decisions:
                name = names[d.session]
                if name is None:
                    continue
                rec = d.to_dict()
                t = float(d.t - origin[d.session])
                cmd = rec["command"]
                if cmd is not None:
                    cmd["t"] = float(cmd["t"] - origin[d.session])
                records.append({"session": name, "kind": "decision", "onset": t, "duration": 0.0,
                                "description": d.kind, "command": cmd, "inputs": rec["inputs"],
                                "reason": d.reason})
        if records:
            if self.journal is not None:
                self.journal.write_records(records)
            for cb in self.listeners:
                cb("records", records)
        return n_epochs, n_events
