"""The live stager's filter front-end and block features against independent references.

The front-end (``staging/live/frontend.py``) is, by its documentation, an order-8 Butterworth low-pass at 34 Hz
started in steady state at the first sample, linear interpolation at the 100-Hz instants ``j · fs / 100``, then a
linear-phase high-pass: the sample 273 before minus a triple 183-sample boxcar. The reference here builds that from
scipy's ``butter``/``sosfilt``, ``np.interp`` and ``np.convolve`` over the whole recording at once, with instants
counted from the first sample (not the front-end's per-push positions). The block features
(``staging/live/blocks.py``) of the last 30 s are YASA's epoch features, computed here by scipy's median Welch and
direct time-domain definitions (``staging_oracles.channel_features``) on the same samples.
"""

import numpy as np
import pytest
import staging_oracles as oracles
from scipy import signal

from nexus.staging import features as F
from nexus.staging.live._layout import _BLOCK, _HISTORY
from nexus.staging.live.blocks import BlockStatistics
from nexus.staging.live.frontend import FilterFrontEnd
from nexus.staging.offline import FLAT_STD_UV

KINDS = ("eeg", "eog", "emg")


# --------------------------------------------------------------------------- filter front-end
def _reference(x: np.ndarray, fs: float) -> np.ndarray:
    """Filtered 100-Hz samples of rows ``x`` (rows, n), missing samples as 0, from scipy and numpy alone."""
    x = np.where(np.isfinite(x), x, 0.0)
    sos = signal.butter(8, 34.0, fs=fs, output="sos")
    lp, _ = signal.sosfilt(sos, x, axis=-1, zi=signal.sosfilt_zi(sos)[:, None, :] * x[None, :, :1])
    n = x.shape[-1]
    t = np.arange(int(n * 100 / fs) + 2) * (fs / 100.0)  # the 100-Hz instants, in input samples
    t = t[t <= n - 1]
    y = np.stack([np.interp(t, np.arange(n), row) for row in lp])
    box = np.ones(183) / 183
    h = -np.convolve(np.convolve(box, box), box)
    h[273] += 1.0  # delay 273 minus the triple boxcar (its centre is at 273: linear phase)
    pad = 600  # the high-pass has seen the first value for ever (steady state)
    u = np.concatenate([np.repeat(y[:, :1], pad, axis=1), y], axis=1)
    return np.stack([np.convolve(row, h)[pad : pad + y.shape[1]] for row in u])


def _nearest_missing(x: np.ndarray, fs: float, m: int) -> np.ndarray:
    """(sessions, m): whether the input sample nearest each 100-Hz instant is missing in any channel."""
    idx = np.floor(np.arange(m) * (fs / 100.0) + 0.5).astype(np.int64)
    return (~np.isfinite(x)).any(axis=1)[:, idx]


def _drive(fe: FilterFrontEnd, x: np.ndarray, sizes, fs: float):
    """Push ``x`` in pushes of ``sizes`` (cycled); after each, take the blocks that are complete.

    Returns the blocks with the 250 samples before each (rows, 750), their missing-sample masks and, after each
    push, how many blocks had come and how many 100-Hz samples the input so far holds.
    """
    blocks, masks, counts = [], [], []
    i, k = 0, 0
    n = x.shape[-1]
    while i < n:
        m = sizes[k % len(sizes)]
        k += 1
        fe.push(x[..., i : i + m])
        i = min(i + m, n)
        while (b := fe.next_block()) is not None:
            at, nan = b
            assert nan.dtype == np.bool_ and nan.shape == (fe.n_sessions, _BLOCK)
            blocks.append(fe.y[:, at - _HISTORY : at + _BLOCK].copy())
            masks.append(nan.copy())
        counts.append((len(blocks), int(np.floor((i - 1) * 100 / fs)) + 1))
    return blocks, masks, counts


def _check_blocks(blocks, ref: np.ndarray, scale: float) -> None:
    """Each block and the 250 samples before it are the reference's (zeros before the first sample)."""
    padded = np.concatenate([np.zeros((ref.shape[0], _HISTORY)), ref], axis=1)
    for b, got in enumerate(blocks):
        np.testing.assert_allclose(got, padded[:, b * _BLOCK : b * _BLOCK + _HISTORY + _BLOCK], rtol=0,
                                   atol=1e-8 * scale, err_msg=f"block {b}")


def test_front_end_is_the_documented_filter_chain_at_256_hz_for_any_push_sizes():
    fs = 256.0
    rng = np.random.default_rng(0)
    n = int(fs * 61)
    t = np.arange(n) / fs
    # noise, a slow wave and an offset far from 0 (a start-up transient would show)
    x = rng.normal(0, 30, (2, 3, n)) + 50 * np.sin(2 * np.pi * 0.3 * t) + np.array([80.0, -40.0])[:, None, None]
    # 1 and 2 samples (pushes with no 100-Hz instant in them), 257 (an instant on its last sample), 1280 (exactly
    # 5 s: a block completes on the push's last instant), a push longer than the buffer
    sizes = [1, 37, 256, 257, 2, 1280, 1000, 3001, 7777, 1, 255]
    fe = FilterFrontEnd(2, fs, KINDS, [0, 1, 2])
    blocks, masks, counts = _drive(fe, x, sizes, fs)
    ref = _reference(x.reshape(6, n), fs)
    assert ref.shape[1] == 6100 and len(blocks) == 12
    assert [b for b, _ in counts] == [m // _BLOCK for _, m in counts]  # every block as soon as it is complete
    _check_blocks(blocks, ref, 100.0)
    assert not np.concatenate(masks, axis=1).any()


def test_front_end_at_100_hz_filters_without_resampling_and_reads_the_named_rows():
    fs = 100.0
    rng = np.random.default_rng(1)
    n = 100 * 47
    x = rng.normal(0, 20, (3, 4, n)) + 30.0
    x[:, 2] += 200 * np.sin(2 * np.pi * 2.0 * np.arange(n) / fs)  # the one row staged: channel 2
    fe = FilterFrontEnd(3, fs, ("eeg",), [2])
    blocks, _, counts = _drive(fe, x, [500, 1, 499, 1234, 66], fs)
    assert [b for b, _ in counts] == [m // _BLOCK for _, m in counts]
    ref = _reference(x[:, 2], fs)
    assert ref.shape[1] == n
    _check_blocks(blocks, ref, 200.0)


def test_missing_samples_are_filtered_as_zero_and_flag_the_instants_whose_nearest_sample_is_missing():
    fs = 256.0
    rng = np.random.default_rng(2)
    n = int(fs * 31)
    x = rng.normal(0, 25, (2, 3, n)) + 60.0
    x[1, 0, 0] = np.nan  # the night's first sample: session 1 starts from 0 (its steady state)
    sizes = [256, 257, 1, 1000, 2047]
    x[0, 1, 256 + 256] = np.nan  # the last sample of the 257-sample push: an instant (j = 200) falls on it
    x[0, 2, 256 + 257 + 1] = np.inf  # the first sample of the 1000-sample push (no instant is nearest to it)
    x[1, 2, 3001:3004] = np.nan  # a short run inside a push
    x[0, 0, 5000] = -np.inf
    fe = FilterFrontEnd(2, fs, KINDS, [0, 1, 2])
    blocks, masks, _ = _drive(fe, x, sizes, fs)
    got_mask = np.concatenate(masks, axis=1)
    np.testing.assert_array_equal(got_mask, _nearest_missing(x, fs, got_mask.shape[1]))
    assert got_mask[0, 200] and got_mask[1, 0] and got_mask.sum() == 4  # 512, 5000; 0, 3003 (3000.32, 3002.88)
    _check_blocks(blocks, _reference(x.reshape(6, n), fs), 100.0)


def test_a_missing_sample_at_the_end_of_a_push_flags_no_instant_it_is_not_nearest_to():
    """The instant at 51.2 input samples falls between the first push (52 samples) and the second: it is judged
    by a sample beside it, never by one at the far end of the second push (its last, 1351, is missing; the
    nearest instant to it, 1351.68, is in no push)."""
    fs = 256.0
    x = np.random.default_rng(9).normal(0, 20, (1, 3, 52 + 1300))
    x[0, 1, -1] = np.nan
    fe = FilterFrontEnd(1, fs, KINDS, [0, 1, 2])
    _, masks, counts = _drive(fe, x, [52, 1300], fs)
    assert counts == [(0, 20), (1, 528)] and len(masks) == 1  # instants 0..19 (48.64), then 20 (51.2)..527
    assert not masks[0].any()


def test_a_reset_session_restarts_its_filters_at_its_next_sample_and_its_pending_samples_are_missing():
    fs = 256.0
    rng = np.random.default_rng(3)
    n = int(fs * 21)
    x = rng.normal(0, 20, (2, 3, n)) + 50.0
    cut = int(fs * 7)  # 7 s in: 700 samples filtered, 500 taken as a block, 200 pending
    x[1, :, cut:] = rng.normal(0, 20, (3, n - cut)) - 120.0  # session 1: a new sleeper from here
    fe = FilterFrontEnd(2, fs, KINDS, [0, 1, 2])
    first, _, _ = _drive(fe, x[..., :cut], [256], fs)
    assert len(first) == 1
    fe.reset(np.array([1]))
    rest, masks, _ = _drive(fe, x[..., cut:], [256], fs)
    assert len(rest) == 3
    mask = np.concatenate(masks, axis=1)
    assert not mask[0].any()
    np.testing.assert_array_equal(mask[1], np.arange(mask.shape[1]) < 200)  # the 200 pending, then none
    got = np.concatenate([first[0]] + [b[:, _HISTORY:] for b in rest], axis=1)[:, _HISTORY:]  # 100-Hz 0..1999
    ref0 = _reference(x[0], fs)  # session 0 goes on as if nothing happened
    np.testing.assert_allclose(got[:3], ref0[:, :2000], rtol=0, atol=1e-6)
    ref1 = _reference(x[1, :, cut:], fs)  # session 1 as a fresh start at its next sample
    np.testing.assert_allclose(got[3:, 700:], ref1[:, :1300], rtol=0, atol=1e-6)
    assert (got[3:, 500:700] == 0.0).all()  # pending samples of the sleeper before: missing, zero


# --------------------------------------------------------------------------- block features
def _epoch_features(ep: np.ndarray, kinds: tuple[str, ...] = KINDS) -> np.ndarray:
    """YASA's features of epochs ``ep`` (sessions, kinds, n) in the stager's raw column order."""
    cols = [np.stack([oracles.channel_features(ep[:, c], k)[f] for f in F.feature_names(k)], axis=-1)
            for c, k in enumerate(kinds)]
    return np.concatenate(cols, axis=-1)


# the live window's features equal the epoch's (rtol 1e-6) but for these, made from per-5-s block statistics:
# sign changes and differences reach one sample before the window, the quartiles are the blocks' mean
# (relative tolerance for a 30-s window, 3000 samples / n for a shorter one at the night's start; sign changes:
# within one change)
_LOOSE = {"iqr": 3e-2, "hmob": 3e-3, "hcomp": 6e-3, "perm": 1e-3, "higuchi": 4e-3, "petrosian": 3e-4}


def _assert_window_is_the_epoch(bs: BlockStatistics, raw: np.ndarray, ep: np.ndarray, where: str) -> None:
    ref = _epoch_features(ep, bs.kinds)
    shorter = 3000 / ep.shape[-1]
    for j, name in enumerate(bs.raw_names):
        feature = name.split("_", 1)[1]
        rtol, atol = (0.0, 1.0) if feature == "nzc" else (_LOOSE[feature] * shorter if feature in _LOOSE else 1e-6, 0.0)
        np.testing.assert_allclose(raw[:, j], ref[:, j], rtol=rtol, atol=atol, err_msg=f"{name} {where}")


def _signals(s: int, blocks: int, rng: np.random.Generator, c: int = 3) -> np.ndarray:
    """(s · c, 250 + 500 · blocks) filtered samples: 250 zeros, then slow waves, alpha, noise (per-row amounts)."""
    t = np.arange(_BLOCK * blocks) / F.FS
    amp = rng.uniform(5, 60, (s * c, 3))
    y = (amp[:, :1] * np.sin(2 * np.pi * 1.1 * t + rng.uniform(0, 6, (s * c, 1)))
         + amp[:, 1:2] * np.sin(2 * np.pi * 10.3 * t) + amp[:, 2:] * rng.normal(0, 1, (s * c, t.size)))
    return np.concatenate([np.zeros((s * c, _HISTORY)), y], axis=1)


def test_window_features_are_yasas_features_of_the_last_30_s_from_the_first_block_on():
    """Block by block from the night's start: the window is every block so far up to six (11 Welch segments)."""
    rng = np.random.default_rng(4)
    s, nb = 45, 9  # 135 rows: two chunks of rows in the block pass
    y = _signals(s, nb, rng)
    bs = BlockStatistics(s, KINDS)
    for k in range(nb):
        at = _HISTORY + _BLOCK * k
        bs.add(y, at, np.zeros((s, _BLOCK), bool), k)
        raw, bad = bs.window_features()
        assert not bad.any(), k
        lo = at + _BLOCK - _BLOCK * min(k + 1, 6)
        if k in (0, 1, 4, 5, 8):
            _assert_window_is_the_epoch(bs, raw, y[:, lo : at + _BLOCK].reshape(s, 3, -1), f"after block {k}")


def test_a_block_with_missing_samples_makes_its_six_windows_artefacts_and_flat_or_overflowing_ones_too():
    rng = np.random.default_rng(5)
    s, nb = 6, 14
    y = _signals(s, nb, rng)
    rows = np.arange(s * 3).reshape(s, 3)
    y[rows[1, 2], _HISTORY:] = 0.5 + rng.normal(0, 0.9 * FLAT_STD_UV, y.shape[1] - _HISTORY)  # EMG just flat
    y[rows[2, 2], _HISTORY:] = 0.5 + rng.normal(0, 1.1 * FLAT_STD_UV, y.shape[1] - _HISTORY)  # just not flat
    y[rows[3, 0], _HISTORY:] *= 1e20  # finite, but its power overflows the single-precision spectrum
    bs = BlockStatistics(s, KINDS)
    flagged = []
    for k in range(nb):
        at = _HISTORY + _BLOCK * k
        nan = np.zeros((s, _BLOCK), bool)
        if k == 3:
            nan[4, 17] = True  # session 4: one missing sample in block 3
        bs.add(y, at, nan, k)
        raw, bad = bs.window_features()
        flagged.append(bad.copy())
        if k >= 5:
            ep = y[:, at + _BLOCK - 3000 : at + _BLOCK].reshape(s, 3, -1)
            ok = [0, 2, 5] + ([4] if k >= 9 else [])
            _assert_window_is_the_epoch(bs, raw[ok], ep[ok], f"after block {k}")
    flagged = np.array(flagged)  # (blocks, sessions)
    np.testing.assert_array_equal(flagged[:, 4], [3 <= k <= 8 for k in range(nb)])  # the windows holding block 3
    assert flagged[:, 1].all() and flagged[:, 3].all()
    assert not flagged[:, [0, 2, 5]].any()


def test_a_reset_session_is_an_artefact_until_30_s_of_its_own_then_has_its_own_features():
    rng = np.random.default_rng(6)
    s, nb = 3, 16
    y = _signals(s, nb, rng)
    y[3:6, _HISTORY + 7 * _BLOCK :] *= 4.0  # session 1's new sleeper (from block 7 on) is four times louder
    bs = BlockStatistics(s, KINDS)
    flagged = []
    for k in range(nb):
        at = _HISTORY + _BLOCK * k
        if k == 7:
            bs.reset(np.array([1]))
        bs.add(y, at, np.zeros((s, _BLOCK), bool), k)
        raw, bad = bs.window_features()
        flagged.append(bad.copy())
        if k in (6, 12, 13):
            ep = y[:, at + _BLOCK - 3000 : at + _BLOCK].reshape(s, 3, -1)
            _assert_window_is_the_epoch(bs, raw, ep, f"after block {k}")
    flagged = np.array(flagged)
    np.testing.assert_array_equal(flagged[:, 1], [7 <= k <= 11 for k in range(nb)])
    assert not flagged[:, [0, 2]].any()


@pytest.mark.parametrize("n_blocks", [1, 2, 3])
def test_the_first_windows_of_the_night_are_not_artefacts_for_want_of_blocks(n_blocks):
    """At the night's start the window holds the blocks so far (a reset session waits 30 s; a new night does not)."""
    rng = np.random.default_rng(7)
    y = _signals(2, n_blocks, rng)
    bs = BlockStatistics(2, KINDS)
    for k in range(n_blocks):
        bs.add(y, _HISTORY + _BLOCK * k, np.zeros((2, _BLOCK), bool), k)
    raw, bad = bs.window_features()
    assert not bad.any()
    _assert_window_is_the_epoch(bs, raw, y[:, _HISTORY:].reshape(2, 3, -1), f"{n_blocks} blocks")


@pytest.mark.parametrize(("sessions", "kinds"), [(2, ("eeg",)), (1, ("eeg", "eog")), (1, ("eeg",))],
                         ids=["2-eeg-beds", "eeg-eog", "1-row"])
def test_few_rows_have_the_same_window_features(sessions, kinds):
    """One or two rows (EEG-only beds, an EEG + EOG bed): the block pass's scratch is sized for them too."""
    rng = np.random.default_rng(8)
    c = len(kinds)
    y = _signals(sessions, 7, rng, c)
    bs = BlockStatistics(sessions, kinds)
    for k in range(7):
        bs.add(y, _HISTORY + _BLOCK * k, np.zeros((sessions, _BLOCK), bool), k)
    raw, bad = bs.window_features()
    assert not bad.any()
    _assert_window_is_the_epoch(bs, raw, y[:, -3000:].reshape(sessions, c, -1), f"{sessions} x {kinds}")
