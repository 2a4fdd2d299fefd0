"""The monitor's window sums against plain NumPy over the same samples (the compiled pass is the code under test)."""

import numpy as np
import pytest

from nexus.monitor.features import WindowAccumulator, channel_type

FS = 256.0


def _reference(x, prev_last):
    """Plain NumPy statistics of one window ``x`` (rows, channels, samples) with non-finite samples as 0."""
    fin = np.isfinite(x)
    y = np.where(fin, x, 0.0)
    d = np.abs(np.diff(np.concatenate([prev_last[..., None], y], axis=-1), axis=-1))
    if np.isnan(prev_last).all():
        d = d[..., 1:]
    n = y.shape[-1]
    k = np.arange(n) / FS
    return {
        "mean": y.mean(-1), "std": y.std(-1), "mn": y.min(-1), "mx": y.max(-1),
        "at_mn": (y == y.min(-1, keepdims=True)).sum(-1), "at_mx": (y == y.max(-1, keepdims=True)).sum(-1),
        "nonfinite": (~fin).sum(-1), "maxdiff": d.max(-1), "meandiff": d.sum(-1) / n,
        "hum50": 2 * np.abs((y * np.exp(-2j * np.pi * 50.0 * k)).sum(-1)) / n,
    }


@pytest.mark.parametrize("cuts", [[256], [25] * 10 + [6], [1, 3, 100, 152]])
def test_window_statistics_equal_numpy_over_the_window(cuts):
    rng = np.random.default_rng(4)
    rows, chans = 5, 3
    acc = WindowAccumulator(rows, chans, FS, 256, (50.0, 60.0), np.arange(0))
    first = rng.normal(0, 20, (rows, chans, 256))
    x = rng.normal(0, 20, (rows, chans, 256)).round(1)  # rounded: ties at the extremes happen
    x[1, 2, 40:43] = np.nan
    x[2, 0, 100] = np.inf
    x[3, 1, :] = 0.0
    x[4, 0, 10:20] = x[4, 0].max() + 5.0  # a rail: ten samples at the maximum
    every = np.arange(rows)
    for blk in (first, x):
        a = 0
        for c in cuts:
            acc.add(blk[..., a : a + c], every)
            a += c
        assert a == 256
        f = acc.take(every, np.full(rows, 1.0))
    ref = _reference(x, first[..., -1])
    for key in ("mean", "std", "mn", "mx", "at_mn", "at_mx", "nonfinite", "maxdiff", "meandiff"):
        np.testing.assert_allclose(getattr(f, key), ref[key], rtol=1e-9, atol=1e-9, err_msg=key)
    np.testing.assert_allclose(f.hum[..., 0], ref["hum50"], rtol=1e-9, atol=1e-9)
    assert f.at_mx[4, 0] == 10 and f.nonfinite[1, 2] == 3 and f.zero_frac[3, 1] == 1.0


def test_first_window_has_no_difference_before_its_first_sample():
    acc = WindowAccumulator(1, 1, FS, 4, (), np.arange(0))
    acc.add(np.array([[[100.0, 101.0]]]), np.arange(1))
    acc.add(np.array([[[103.0, 103.0]]]), np.arange(1))
    f = acc.take(np.arange(1), np.array([1.0]))
    assert f.maxdiff[0, 0] == 2.0 and f.meandiff[0, 0] == pytest.approx(3.0 / 4)


def test_slots_that_start_together_close_their_windows_on_different_ticks():
    rows = 20
    acc = WindowAccumulator(rows, 1, FS, 256, (), np.arange(0))
    every = np.arange(rows)
    closed_at = np.full(rows, -1)
    for tick in range(1, 40):  # 0.1-s ticks
        acc.add(np.ones((rows, 1, 26)), every)
        ready = acc.ready(every)
        if ready.size:
            closed_at[ready[closed_at[ready] < 0]] = tick
            acc.take(ready, np.full(ready.size, tick * 0.1))
    assert np.unique(closed_at).size == 10  # ten phases, two slots each
    assert closed_at.min() == 10 and closed_at.max() <= 20  # the first window: 1 to 2 s
    acc.reset(np.array([3]))  # a new session in slot 3 is staggered again
    assert acc.first_extra[3] == 3 * (256 // 10)


def test_mains_and_its_side_bins_are_read_as_the_amplitudes_of_their_sines_across_blocks():
    """Sines on whole-hertz bins of a 1-s window are orthogonal: each bin reads its own sine's amplitude (µV), in
    the second window too (the blocks' DFTs are turned to the session's sample clock)."""
    k = np.arange(2 * 256) / FS
    amps = {50.0: 12.0, 60.0: 7.0, 47.0: 3.0, 53.0: 4.0, 57.0: 0.0, 63.0: 5.0}
    x = sum(a * np.cos(2 * np.pi * f * k + 0.3 * f) for f, a in amps.items())
    blk = np.stack([x, 0.5 * x])[:, None, :]  # two slots, one channel
    acc = WindowAccumulator(2, 1, FS, 256, (50.0, 60.0), np.arange(0))
    every = np.arange(2)
    got = []
    for w in range(2):
        a = 256 * w
        for c in (7, 100, 149):
            acc.add(blk[..., a : a + c], every)
            a += c
        got.append(acc.take(every, np.full(2, 1.0 + w)))
    for f in got:
        np.testing.assert_allclose(f.hum[0, 0], [12.0, 7.0], atol=1e-9)
        np.testing.assert_allclose(f.hum[1, 0], [6.0, 3.5], atol=1e-9)
        np.testing.assert_allclose(f.hum_side[0, 0], [np.sqrt((9 + 16) / 2), np.sqrt(25 / 2)], atol=1e-9)
        np.testing.assert_array_equal(f.line_hz, [50.0, 60.0])
        np.testing.assert_array_equal(f.n, [256, 256])
    np.testing.assert_array_equal(got[1].t0, [1.0, 1.0])
    np.testing.assert_array_equal(got[1].t1, [2.0, 2.0])


def test_repeated_samples_are_counted_only_when_every_compared_channel_repeats_one_2_to_6_places_back():
    rng = np.random.default_rng(7)
    x = rng.normal(0, 30, (1, 4, 256))
    x[0, 3] = 5.0  # a flat channel, not compared
    x[0, :3, 1] = 0.0  # equals the zeros before the first sample: no history there, not counted
    x[0, :3, 100] = x[0, :3, 97]  # lag 3 on all three: counted
    x[0, :3, 129] = x[0, :3, 123]  # lag 6 across the block boundary (the tail): counted
    x[0, :2, 150] = x[0, :2, 147]  # only two of the three: not counted
    x[0, :3, 200] = x[0, :3, 199]  # lag 1 (a flat or lost channel repeats the last sample): not counted
    x[0, :3, 220] = x[0, :3, 213]  # lag 7: beyond the lags looked at
    acc = WindowAccumulator(1, 4, FS, 256, (), np.arange(3))
    acc.add(x[..., :128], np.arange(1))
    acc.add(x[..., 128:], np.arange(1))
    assert acc.take(np.arange(1), np.array([1.0])).jitter.tolist() == [2.0]
    few = WindowAccumulator(1, 4, FS, 256, (), np.arange(2))  # fewer than 3 compared channels: not counted
    few.add(x, np.arange(1))
    assert few.take(np.arange(1), np.array([1.0])).jitter.tolist() == [0.0]


def test_blocks_for_some_rows_leave_the_others_untouched_and_a_reset_slot_starts_as_a_new_one():
    rng = np.random.default_rng(9)
    k = np.arange(256) / FS
    x = 20 * np.cos(2 * np.pi * 50 * k) + rng.normal(0, 5, 256)
    x[[60, 61]] = x[[57, 56]]
    sig = np.broadcast_to(np.stack([x, x + 1.0, x - 2.0]), (1, 3, 256))
    acc = WindowAccumulator(4, 3, FS, 256, (50.0,), np.arange(3))
    acc.add(np.concatenate([sig, sig])[..., :100], np.array([1, 3]))  # rows 1 and 3 only
    assert acc.n.tolist() == [0, 100, 0, 100]
    acc.add(np.concatenate([sig, sig])[..., 100:], np.array([1, 3]))
    one = acc.take(np.array([1]), np.array([1.0]))
    fresh = WindowAccumulator(1, 3, FS, 256, (50.0,), np.arange(3))
    fresh.add(sig[..., :100], np.arange(1))
    fresh.add(sig[..., 100:], np.arange(1))
    want = fresh.take(np.arange(1), np.array([1.0]))
    # slot 3 goes on with another window, then is reset mid-window and given the same window as slot 1 got
    acc.add(rng.normal(0, 50, (1, 3, 77)), np.array([3]))
    acc.reset(np.array([3]))
    assert acc.n[3] == 0 and acc.first_extra[3] == 3 * 25
    acc.add(sig[..., :100], np.array([3]))
    acc.add(sig[..., 100:], np.array([3]))
    again = acc.take(np.array([3]), np.array([1.0]))
    for f in (one, again):
        for key in ("mean", "std", "mn", "mx", "maxdiff", "meandiff", "hum", "jitter", "at_mx", "at_mn"):
            np.testing.assert_allclose(getattr(f, key), getattr(want, key), rtol=1e-12, atol=1e-9, err_msg=key)
    assert want.jitter.tolist() == [2.0] and want.maxdiff[0, 0] == np.abs(np.diff(x)).max()


def test_channel_types_group_the_electrophysiology_and_name_the_rest_by_role():
    names = ["EEG C4-M1", "EOG E1-M2", "EMG chin", "C3-M2", "ECG", "Resp thorax", "Acc X", "SpO2"]
    assert [channel_type(n) for n in names] == ["exg", "exg", "exg", "exg", "ecg", "resp", "acc", "other"]


def test_a_window_is_ready_at_exactly_its_length_and_only_the_first_one_is_longer():
    acc = WindowAccumulator(4, 1, FS, 256, (), np.arange(0))
    every = np.arange(4)
    acc.add(np.ones((4, 1, 255)), every)
    assert acc.ready(every).tolist() == []
    acc.add(np.ones((4, 1, 1)), every)
    assert acc.ready(every).tolist() == [0]  # slot 0: no stagger, 256 samples exactly
    acc.take(np.array([0]), np.array([1.0]))
    acc.add(np.ones((4, 1, 75)), every)
    assert acc.ready(every).tolist() == [1, 2, 3]  # slot k: 256 + k * 25 samples, slot 3 at exactly 331
    acc.take(np.array([1, 2, 3]), np.full(3, 1.3))
    acc.add(np.ones((4, 1, 180)), every)
    assert acc.ready(every).tolist() == []
    acc.add(np.ones((4, 1, 1)), every)
    assert acc.ready(every).tolist() == [0]  # slot 0's second window: 256 samples again
    acc.take(np.array([0]), np.array([2.0]))
    acc.add(np.ones((4, 1, 75)), every)
    assert acc.ready(every).tolist() == [1, 2, 3]  # the others' second windows: 256 samples, no stagger
    assert acc.first_extra.tolist() == [0, 0, 0, 0]


def test_extremes_reached_again_in_a_later_block_add_their_counts():
    acc = WindowAccumulator(1, 1, FS, 8, (), np.arange(0))
    for blk in ([5.0, 1.0, 5.0], [5.0, 0.0, 0.0], [0.0, 3.0]):  # the maximum in two blocks, the minimum in two
        acc.add(np.array([[blk]]), np.arange(1))
    f = acc.take(np.arange(1), np.array([1.0]))
    assert (f.mx[0, 0], f.at_mx[0, 0], f.mn[0, 0], f.at_mn[0, 0]) == (5.0, 3.0, 0.0, 3.0)


def _repeat_hits_numpy(x, tail, has, chans, L=6):
    """The repeated-sample count as NumPy passes (the form the compiled kernel replaced)."""
    R, _, n = x.shape
    j = chans
    e0 = np.concatenate([tail[:, j[0], :], x[:, j[0], :]], axis=-1)
    cur0 = e0[:, L:]
    hits = np.zeros(R)
    for lag in range(2, L + 1):
        ri, ki = np.nonzero(cur0 == e0[:, L - lag : L - lag + n])
        if ri.size == 0:
            continue
        ext = np.concatenate([tail[ri][:, j, :], x[ri][:, j, :]], axis=-1)
        k = np.arange(ri.size)
        now = ext[k, :, L + ki]
        ok = (now == ext[k, :, L - lag + ki]).all(axis=1) & (now != ext[k, :, L - 1 + ki]).any(axis=1)
        ok &= has[ri] | (ki >= lag)
        hits += np.bincount(ri[ok], minlength=R)
    return hits


@pytest.mark.parametrize("n", [1, 4, 26, 256])
def test_repeat_count_kernel_equals_the_numpy_rule(n):
    from nexus.monitor._kernels import repeat_hits

    rng = np.random.default_rng(n)
    R, C, L = 40, 4, 6
    # few distinct values: repeats at every lag, on some channels only, across the block boundary
    x = rng.integers(0, 3, size=(R, C, n)).astype(float)
    x[::5] = x[::5, :1]  # all channels equal: whole-sample repeats
    x[::7] = 1.0  # flat rows: lag-1 repeats, never counted
    tail = rng.integers(0, 3, size=(R, C, L)).astype(float)
    has = rng.random(R) < 0.6
    for chans in (np.array([0, 1, 2]), np.array([2]), np.array([3, 0])):
        got = np.empty(R)
        repeat_hits(x, tail, has, chans, got)
        np.testing.assert_array_equal(got, _repeat_hits_numpy(x, tail, has, chans))
    assert _repeat_hits_numpy(x, tail, has, np.array([0, 1, 2])).sum() > 0


def test_the_non_finite_mask_zero_blocks_and_rows_read_out():
    acc = WindowAccumulator(3, 2, FS, 8, (), np.arange(0))
    every = np.arange(3)
    empty = acc.add(np.zeros((3, 2, 0)), every)
    assert empty.dtype == bool and empty.shape == (3, 2) and not empty.any() and acc.n.tolist() == [0, 0, 0]
    x = np.ones((3, 2, 4))
    x[1, 0, 2] = np.nan
    x[2, 1] = [0.0, -5.0, 0.0, 0.0]  # touches zero but is not a block of zeros
    x[0, 1] = 0.0  # a block of exact zeros (lost samples)
    assert acc.add(x, every).tolist() == [[False, False], [True, False], [False, False]]
    f = acc.take(np.array([2, 0]), np.array([1.0, 1.0]))
    assert f.rows.tolist() == [2, 0]
    assert f.zero_frac.tolist() == [[0.0, 0.0], [0.0, 1.0]]


def test_resetting_one_slot_keeps_the_partial_window_of_the_others():
    acc = WindowAccumulator(3, 1, FS, 256, (), np.arange(0))
    every = np.arange(3)
    acc.add(np.full((3, 1, 100), 7.0), every)
    acc.reset(np.array([1]))
    assert acc.n.tolist() == [100, 0, 100]
    acc.add(np.full((3, 1, 156), 7.0), every)
    f = acc.take(np.array([0]), np.array([1.0]))
    assert f.n.tolist() == [256] and f.mean[0, 0] == 7.0 and f.at_mx[0, 0] == 256
