"""The fleet's white noise drawn ahead a group of sessions at a time, the groups on different chunks: the same samples
as drawing every session at once, and no chunk that refills every session."""

from __future__ import annotations

import numpy as np
import pytest

from nexus.sources.synthetic import SyntheticFleet
from nexus.sources.synthetic import fleet as fleet_module

CHANNELS = ("EEG C4-M1", "EOG E1-M2", "EOG E2-M2")  # the EOG channels carry the white noise
S = 11


def _fleet(monkeypatch, group: int) -> SyntheticFleet:
    monkeypatch.setattr(fleet_module, "_WHITE_GROUP", group)
    monkeypatch.setattr(fleet_module, "_DRAW_AHEAD_BYTES", S * 8 * 60)  # 60 samples ahead: many refills
    f = SyntheticFleet("typical_adult", seeds=range(20, 20 + S), hours=0.1, fs=100.0, channels=CHANNELS,
                       dtype=np.float64)
    assert f._ahead_white == 60
    return f


class _Counting:
    """A session's white-noise stream that counts its draws."""

    def __init__(self, rng: np.random.Generator, log: list[int], s: int) -> None:
        self.rng, self.log, self.s = rng, log, s

    def random(self, *a, **k):
        self.log.append(self.s)
        return self.rng.random(*a, **k)


@pytest.mark.parametrize("sizes", [[7] * 40, [1, 5, 59, 60, 61, 3, 130, 2, 9, 250, 4, 17, 33]])
def test_white_noise_of_groups_is_that_of_all_sessions_at_once(monkeypatch, sizes):
    at_once = _fleet(monkeypatch, 10**6)  # one group: every session refilled on the same chunk
    assert len(at_once._white_bounds) == 1
    grouped = _fleet(monkeypatch, 3)
    assert len(grouped._white_bounds) == 4
    for n in sizes:  # chunks shorter and longer than what is drawn ahead
        np.testing.assert_array_equal(grouped.next_chunk(n), at_once.next_chunk(n))
    assert not np.array_equal(grouped.next_chunk(50)[0], grouped.next_chunk(50)[0])  # noise, not a constant


def test_a_chunk_refills_one_group_not_every_session(monkeypatch):
    fleet = _fleet(monkeypatch, 3)
    first, refilled = _refills(fleet, "_rng_white", 60, 5)  # 300 samples: every group refilled about 5 times
    assert first == list(range(S))  # the first chunk fills every group (the groups' shares: 1/4 .. 4/4)
    groups = [list(range(a, b)) for a, b in fleet._white_bounds]
    assert all(r == [] or r in groups for r in refilled)  # one group at a time
    assert all(sum(r == g for r in refilled) >= 4 for g in groups)


def _refills(fleet: SyntheticFleet, rngs: str, chunks: int, n: int) -> tuple[list[int], list[list[int]]]:
    """The sessions whose generator ``rngs`` drew in a first chunk of ``n`` samples, then in each of ``chunks`` more."""
    log: list[int] = []
    setattr(fleet, rngs, [_Counting(r, log, s) for s, r in enumerate(getattr(fleet, rngs))])
    fleet.next_chunk(n)
    first = sorted(log)
    refilled = []
    for _ in range(chunks):
        log.clear()
        fleet.next_chunk(n)
        refilled.append(sorted(log))
    return first, refilled


def _frame_fleet(monkeypatch, group_min: int) -> SyntheticFleet:
    monkeypatch.setattr(fleet_module, "_FRAME_GROUP_MIN", group_min)
    monkeypatch.setattr(fleet_module, "_DRAW_AHEAD_BYTES", 80_000)  # 4 frames ahead: many refills
    f = SyntheticFleet("typical_adult", seeds=range(40, 40 + S), hours=0.1, fs=100.0, channels=CHANNELS,
                       dtype=np.float64)
    assert f._ahead_frames == 4
    return f


@pytest.mark.parametrize("sizes", [[7] * 90, [1, 50, 99, 100, 101, 3, 330, 2, 900, 250, 4, 170, 33]])
@pytest.mark.parametrize("block", [fleet_module._FRAME_BLOCK, 3 * 202], ids=["cache", "3-frames"])
def test_frames_of_groups_are_those_of_all_sessions_at_once(monkeypatch, sizes, block):
    # a block of 3 frames of 2 x 101 coefficients: 3 sessions a frame, or one session 3 frames at a time
    monkeypatch.setattr(fleet_module, "_FRAME_BLOCK", block)
    at_once = _frame_fleet(monkeypatch, 10**6)  # one group: every session refilled on the same frame
    assert len(at_once._frame_bounds) == 1
    grouped = _frame_fleet(monkeypatch, 2)
    assert grouped._frame_bounds == [(0, 2), (2, 5), (5, 8), (8, 11)]
    for n in sizes:  # chunks within a frame, and longer than the frames drawn ahead (100 samples a frame)
        np.testing.assert_array_equal(grouped.next_chunk(n), at_once.next_chunk(n))


def test_frames_drawn_ahead_are_those_drawn_one_frame_at_a_time(monkeypatch):
    # both fleets above read the draws ahead the same way; here the reference draws one frame ahead (a call's later
    # frames drawn when needed). 400 samples from a chunk boundary are 4 frames, all drawn ahead: in blocks of 3
    # frames the second block begins at the call's fourth frame, read from the draws ahead at that offset
    monkeypatch.setattr(fleet_module, "_FRAME_BLOCK", 3 * 202)
    grouped = _frame_fleet(monkeypatch, 2)
    monkeypatch.setattr(fleet_module, "_DRAW_AHEAD_BYTES", 1)
    one = SyntheticFleet("typical_adult", seeds=range(40, 40 + S), hours=0.1, fs=100.0, channels=CHANNELS,
                         dtype=np.float64)
    assert one._ahead_frames == 1 and grouped._ahead_frames == 4
    for n in [400, 400, 400, 1, 330, 70, 900, 400]:
        np.testing.assert_array_equal(grouped.next_chunk(n), one.next_chunk(n))


def test_a_frame_refills_one_group_not_every_session(monkeypatch):
    fleet = _frame_fleet(monkeypatch, 2)
    _, refilled = _refills(fleet, "_rng_frames", 80, 50)  # 40 frames: every group refilled about 10 times
    groups = [list(range(a, b)) for a, b in fleet._frame_bounds]
    assert all(r == [] or r in groups for r in refilled)  # one group at a time
    assert all(sum(r == g for r in refilled) >= 9 for g in groups)
