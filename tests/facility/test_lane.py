"""The lane's jitter buffer and batched step, without any source."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus.core.errors import InvalidInputError
from nexus.facility.pipeline import Lane
from nexus.facility.step import StepOutput, StepResult


class Recorder:
    """An analyzer that keeps every block it sees."""

    name = "recorder"

    def __init__(self, lane):
        self.blocks = []
        self.resets = []

    def step(self, ctx):
        self.blocks.append(ctx.block.copy())
        return StepResult()

    def reset(self, slots):
        self.resets.append(list(slots))


def _lane(capacity=3, buffer_s=2.0):
    return Lane(("EEG C4-M1", "EOG E1-M2"), 100.0, capacity, buffer_s=buffer_s, analyzers=[Recorder])


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(1, 60), min_size=1, max_size=12), order=st.randoms(use_true_random=False))
def test_any_chunking_and_arrival_order_gives_the_same_blocks(cuts, order):
    lane = _lane(1)
    lane.attach([0], 0)
    n = 150
    x = np.arange(2 * n, dtype=float).reshape(2, n)
    edges = sorted({0, n, *[min(c * 3, n) for c in cuts]})
    chunks = list(itertools.pairwise(edges))
    order.shuffle(chunks)  # out of order within the buffer: still in time
    for a, b in chunks:
        lane.put([0], [a], x[None, :, a:b])
    lane.step(n)
    got = np.concatenate(lane.analyzers[0].blocks, axis=-1)
    np.testing.assert_array_equal(got[0], x)
    assert lane.counts["received"][0] == n
    assert lane.counts["missing"][0] == 0


def test_missing_samples_are_held_and_counted_per_session():
    lane = _lane(2)
    lane.attach([0, 1], 0)
    x = np.ones((2, 2, 100))
    x[1, :, :] = 5.0
    lane.put([0, 1], [0, 0], x[:, :, :50])
    lane.put([0], [50], x[:1, :, 50:])  # session 1 goes quiet after 50 samples
    lane.step(100)
    blk = lane.analyzers[0].blocks[0]
    assert lane.counts["missing"].tolist() == [0, 50]
    assert (blk[1, :, 50:] == 5.0).all()  # held at the last good value
    assert lane.missing_run.tolist() == [0, 50]


def test_late_bad_and_too_early_samples():
    lane = _lane(1, buffer_s=1.0)
    lane.attach([0], 0)
    lane.step(100)  # 1 s processed with nothing received
    x = np.zeros((1, 2, 20))
    x[0, 0, 5] = np.nan
    acc = lane.put([0], [90], x)  # 10 late samples, 10 in time
    assert acc.tolist() == [10]
    assert lane.counts["late"][0] == 10
    assert lane.counts["bad"][0] == 1
    lane.put([0], [500], np.zeros((1, 2, 10)))  # 4 s ahead of a 1-s buffer
    assert lane.counts["dropped"][0] == 10


def test_inactive_slots_are_zero_and_reset_on_attach():
    lane = _lane(3)
    lane.attach([1], 0)
    lane.put([1], [0], np.full((1, 2, 10), 7.0))
    out = lane.step(10)
    assert isinstance(out, StepOutput)
    assert out.n_samples == 10
    blk = lane.analyzers[0].blocks[0]
    assert (blk[0] == 0).all()
    assert (blk[1] == 7).all()
    assert lane.analyzers[0].resets[-1] == [1]
    with pytest.raises(InvalidInputError, match="already in use"):
        lane.attach([1])


def test_wrong_shape_refused():
    lane = _lane(1)
    with pytest.raises(InvalidInputError, match=r"\(1, 2, samples\)"):
        lane.put([0], [0], np.zeros((1, 3, 10)))


@pytest.mark.parametrize("slots", [[0, 1, 2], [2, 0], slice(1, 3)], ids=["contiguous", "scattered", "slice"])
@pytest.mark.parametrize("bad", [False, True], ids=["finite", "with-nan"])
def test_rows_written_together_across_the_ring_end(slots, bad):
    # 2-s ring at 100 Hz: the second put of 150 samples wraps around its end
    lane = _lane(3, buffer_s=2.0)
    lane.attach([0, 1, 2], 0)
    rows = np.arange(3)[slots] if isinstance(slots, slice) else np.asarray(slots)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(rows.size, 2, 300))
    if bad:
        x[0, 1, 180] = np.nan  # one channel bad: the sample is missing for the whole row
    lane.put(slots, [0] * rows.size, x[:, :, :150])
    lane.step(150)
    lane.put(slots, [150] * rows.size, x[:, :, 150:])
    lane.step(300)
    got = np.concatenate(lane.analyzers[0].blocks, axis=-1)[rows]
    want = x.copy()
    if bad:
        want[0, :, 180] = want[0, :, 179]  # held at the last good value
    np.testing.assert_array_equal(got, want)
    assert lane.counts["bad"][rows].tolist() == [int(bad)] + [0] * (rows.size - 1)
    assert lane.counts["missing"][rows].tolist() == [int(bad)] + [0] * (rows.size - 1)
    assert lane.counts["received"][rows].tolist() == [300] * rows.size


class _Doubler:
    """An analyzer that changes the block in place (as the clean-up filter does)."""

    name = "doubler"

    def __init__(self, lane):
        pass

    def step(self, ctx):
        ctx.block *= 2.0
        return StepResult(block=ctx.block)

    def reset(self, slots):
        pass


def _raw_reader(rows):
    class RawReader(Recorder):
        name = "raw"
        reads_raw = rows

        def step(self, ctx):
            self.blocks.append((ctx.raw_block if ctx.raw_block is None else ctx.raw_block.copy(),
                                {r: v.copy() for r, v in ctx.raw.items()}, ctx.block.copy()))
            return StepResult()

    return RawReader


@pytest.mark.parametrize("rows", ["all", (1,)])
def test_analyzers_that_read_raw_rows_see_them_unfiltered_after_an_in_place_filter(rows):
    lane = Lane(("EEG C4-M1", "EOG E1-M2"), 100.0, 2, buffer_s=2.0, analyzers=[_Doubler, _raw_reader(rows)])
    lane.attach([0, 1], 0)
    x = np.arange(2 * 2 * 30, dtype=float).reshape(2, 2, 30)
    lane.put([0, 1], [0, 0], x)
    lane.step(30)
    whole, raw, block = lane.analyzers[1].blocks[0]
    np.testing.assert_array_equal(block, 2 * x)  # the filtered block ...
    if rows == "all":  # ... and the unfiltered one, whole and by row
        np.testing.assert_array_equal(whole, x)
        assert sorted(raw) == [0, 1]
    else:
        assert whole is None and sorted(raw) == [1]
    for r, v in raw.items():
        np.testing.assert_array_equal(v, x[:, r])
