"""WindowedStream scheduling: masked-out rows are skipped, due groups are spread over the steps."""

import numpy as np

from nexus.events.common import WindowedStream, finite
from nexus.events.table import EventBatch


class _Recorder:
    """A core that records which rows it saw and reports one event per masked-in row."""

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def __call__(self, x, fs, mask):
        self.calls.append(mask.shape[0])
        rows = np.flatnonzero(mask.any(axis=1))
        return EventBatch("x", session=rows, channel=np.zeros_like(rows),
                          onset=np.full(rows.size, (x.shape[-1] - 1) / fs), duration=np.zeros(rows.size))


def _run(gated: bool, mask_rows: np.ndarray, steps: int, n: int) -> tuple[_Recorder, list[int], set]:
    core = _Recorder()
    ws = WindowedStream(core, "x", 64, 10.0, left_s=1.0, right_s=0.0, hop_s=1.0, n_groups=4, gated=gated)
    per_step, found = [], set()
    for _ in range(steps):
        before = len(core.calls)
        ev = ws.step(np.ones((64, n)), np.broadcast_to(mask_rows[:, None], (64, n)))
        per_step.append(len(core.calls) - before)
        found |= set(ev.session.tolist())
    return core, per_step, found


def test_gated_stream_skips_masked_out_rows_with_the_same_events():
    mask = np.zeros(64, dtype=bool)
    mask[[3, 17, 40]] = True
    gated, _, ev_gated = _run(True, mask, 20, 5)
    plain, _, ev_plain = _run(False, mask, 20, 5)
    assert ev_gated == ev_plain == {3, 17, 40}
    assert sum(gated.calls) < sum(plain.calls)  # only rows with a masked-in sample were evaluated
    assert max(gated.calls) <= 1


def test_due_groups_are_spread_over_steps_when_samples_arrive_rarely():
    # one sample every 10 steps (a 1-Hz feature stream fed every 100 ms), 8 groups over a hop of
    # 2 samples: 4 groups fall due with each sample
    core = _Recorder()
    ws = WindowedStream(core, "x", 64, 1.0, left_s=2.0, right_s=0.0, hop_s=2.0, n_groups=8)
    per_step = []
    for k in range(200):
        before = len(core.calls)
        ws.step(np.ones((64, 1 if k % 10 == 0 else 0)))
        per_step.append(len(core.calls) - before)
    assert sum(per_step) >= 72  # 20 samples, hop of 2, 8 groups: each group still runs once per hop
    assert max(per_step[50:]) <= 2  # never four in one step once the step rate is known


def test_finite_passes_finite_arrays_through_and_cleans_others():
    x = np.arange(6.0).reshape(2, 3)
    assert finite(x) is x
    y = finite(np.array([1.0, np.nan, np.inf, -np.inf]), posinf=0.0, neginf=0.0)
    assert np.array_equal(y, [1.0, 0.0, 0.0, 0.0])
    big = np.array([1e308, 1e308])  # the sum overflows, the values are finite: kept as they are
    assert np.array_equal(finite(big), big)


class _Windows:
    """A core that records, per stream row, the smallest sample and the window length it was given."""

    def __init__(self, ws_ref: list) -> None:
        self.seen: dict[int, list[tuple[float, int]]] = {}
        self.ws_ref = ws_ref

    def __call__(self, x, fs, mask):
        ws = self.ws_ref[0]
        for i, r in enumerate(ws.rows):
            self.seen.setdefault(int(r), []).append((float(x[i].min()), x.shape[-1]))
        return EventBatch("x", session=np.zeros(0, dtype=np.intp), channel=np.zeros(0, dtype=np.intp),
                          onset=np.zeros(0), duration=np.zeros(0))


def test_reset_history_is_missing_not_zeros():
    # a reset session's windows start at the reset, as a fresh stream's would: the core never sees
    # the zero-filled past (a baseline over it would be a mean over zeros)
    ref: list = []
    core = _Windows(ref)
    ws = WindowedStream(core, "x", 2, 10.0, left_s=5.0, right_s=1.0, hop_s=1.0, n_groups=1)
    ref.append(ws)
    for _ in range(10):
        ws.step(np.full((2, 10), 3.0))
    core.seen.clear()
    ws.reset([1])
    for _ in range(8):
        ws.step(np.full((2, 10), 3.0))
    ws.flush()
    assert min(m for m, _ in core.seen[0]) == 3.0
    assert min(m for m, _ in core.seen[1]) == 3.0  # old code: 0.0, the zeroed history
    lengths = [n for _, n in core.seen[1]]
    assert lengths[0] <= 20 and max(lengths) <= 80  # only the 80 samples since the reset
    assert max(n for _, n in core.seen[0]) > 60  # the other session keeps its 5-s history
