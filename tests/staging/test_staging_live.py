import numpy as np
import pytest
import staging_oracles as oracles
from staging_oracles import ReferenceLiveStager

from nexus.core.errors import InvalidInputError
from nexus.sources.synthetic import synthesize_night
from nexus.staging.live import BLOCK_S, LiveStager, stage_causal
from nexus.staging.live.scaling import REST_WEIGHT, RunningScaling
from nexus.staging.offline import stage_offline

CHANNELS = ("EEG C4-M1", "EOG E1-M2", "EMG Chin")


@pytest.fixture(scope="module")
def night():
    n = synthesize_night("typical_adult", hours=1.5, seed=11, channels=CHANNELS)
    return n.signals, n.fs


def _run(stager, data, step):
    for i in range(0, data.shape[-1], step):
        stager.push(data[..., i : i + step])
        stager.update()
    return stager.hypnogram()


def _kappa(a, b):
    po = np.mean(a == b)
    pe = sum(np.mean(a == k) * np.mean(b == k) for k in range(5))
    return (po - pe) / (1 - pe)


def test_live_tracks_offline_staging(night):
    sig, fs = night
    live = stage_causal({"eeg": sig[0], "eog": sig[1], "emg": sig[2]}, fs)
    off = stage_offline({"eeg": sig[0], "eog": sig[1], "emg": sig[2]}, fs)
    assert len(live) == len(off) == 180
    assert set(np.unique(live.stages)) <= {0, 1, 2, 3, 4}
    # a short night leaves the running normalisation little to learn from; whole nights do better
    assert _kappa(live.stages, off.stages) > 0.5


def test_each_epoch_uses_only_data_up_to_its_end(night):
    sig, fs = night
    n = int(40 * 60 * fs)
    a = sig[None, :, :n].copy()
    b = a.copy()
    cut = int(20 * 60 * fs)  # from minute 20 on, the second night is something else
    b[0, :, cut:] = np.random.default_rng(0).normal(0, 40, size=(3, n - cut))
    st_a, p_a = _run(LiveStager(1, fs), a, int(BLOCK_S * fs))
    st_b, p_b = _run(LiveStager(1, fs), b, int(BLOCK_S * fs))
    np.testing.assert_array_equal(st_a[0, :40], st_b[0, :40])
    np.testing.assert_allclose(p_a[0, :40], p_b[0, :40], atol=1e-12)
    assert not np.array_equal(st_a[0, 40:], st_b[0, 40:])


def test_sessions_are_independent_and_block_size_does_not_matter(night):
    sig, fs = night
    n = int(15 * 60 * fs)
    one = sig[None, :, :n]
    ref_st, ref_p = _run(LiveStager(1, fs), one, int(5 * fs))
    other = np.concatenate([one, 0.5 * one[:, :, ::-1]])
    st2, p2 = _run(LiveStager(2, fs), other, int(1.3 * fs))  # odd blocks, updates more often than 5 s
    np.testing.assert_array_equal(st2[0], ref_st[0])
    np.testing.assert_allclose(p2[0], ref_p[0], atol=1e-6)


def test_update_re_estimates_every_5_s(night):
    sig, fs = night
    st = LiveStager(1, fs, ("eeg", "eog", "emg"))
    est = st.update()
    assert est.stage[0] == -2 and est.t == 0.0  # nothing pushed yet
    seen = []
    for k in range(12):
        st.push(sig[None, :, int(k * 5 * fs) : int((k + 1) * 5 * fs)])
        est = st.update()
        seen.append((est.t, int(est.epoch_index[0]), est.final))
    assert [t for t, _, _ in seen] == [5.0 * (k + 1) for k in range(12)]
    assert [e for _, e, _ in seen] == [0] * 6 + [1] * 6
    assert [f for _, _, f in seen] == [False] * 5 + [True] + [False] * 5 + [True]
    assert est.probabilities.shape == (1, 5) and np.isclose(est.probabilities.sum(), 1.0)
    assert st.hypnogram()[0].shape == (1, 2)


def test_nan_block_is_artefact_then_recovers(night):
    sig, fs = night
    x = sig[None, :, : int(12 * 60 * fs)].copy()
    x[0, 0, int(5 * 60 * fs) : int(5.5 * 60 * fs)] = np.nan  # epoch 10
    stages, proba = _run(LiveStager(1, fs), x, int(5 * fs))
    assert stages[0, 10] == -1 and np.isnan(proba[0, 10]).all()
    assert (stages[0, 12:] >= 0).all()


def test_eeg_only_at_100_hz():
    rng = np.random.default_rng(3)
    st = LiveStager(3, 100.0, ("eeg",))
    stages, proba = _run(st, rng.normal(0, 30, size=(3, 1, 100 * 90)), 500)
    assert st.model_name == "clf_eeg"
    assert stages.shape == (3, 3) and proba.shape == (3, 3, 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fs": 50.0}, "expected > 80 Hz"),
        ({"channels": ("eog", "emg")}, "expected one 'eeg'"),
        ({"channels": ("eeg", "ecg")}, "Unknown channel kind 'ecg'"),
    ],
    ids=["low-fs", "no-eeg", "bad-kind"],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        LiveStager(2, **{"fs": 256.0, **kwargs})


def test_bad_block_shape():
    st = LiveStager(2, 256.0)
    with pytest.raises(InvalidInputError, match=r"expected \(2, 3, n_samples\)"):
        st.push(np.zeros((3, 3, 10)))


def test_compiled_kernels_equal_the_array_forms(night):
    sig, fs = night
    x = sig[None, :, : int(6 * 60 * fs)].copy()
    x[0, 1, int(125 * fs) : int(126 * fs)] = np.nan  # missing samples: epoch 4 …
    x[0, 2, int(250 * fs)] = np.inf  # … and epoch 8 are artefact
    compiled = _run(LiveStager(1, fs), x, int(5 * fs))
    assert (compiled[0][0, [4, 8]] == -1).all() and (compiled[0][0, [3, 5, 7, 9]] >= 0).all()
    plain = _run(ReferenceLiveStager(1, fs), x, int(5 * fs))
    np.testing.assert_array_equal(compiled[0], plain[0])
    np.testing.assert_allclose(compiled[1], plain[1], atol=1e-6)


def test_reset_forgets_the_previous_sleeper(night):
    sig, fs = night
    before = int(20 * 60 * fs)
    after = sig[:, before : before + int(15 * 60 * fs)]
    rng = np.random.default_rng(1)
    runs = []
    for past in (sig[:, :before], rng.normal(0, 60, size=(3, before))):  # two different previous sleepers
        st = LiveStager(2, fs)
        _run(st, np.stack([sig[:, :before], past]), int(5 * fs))
        st.reset([1])
        for i in range(0, after.shape[-1], int(5 * fs)):
            st.push(np.stack([after[:, i : i + int(5 * fs)]] * 2))
            est = st.update()
            if i < int(25 * fs):
                assert est.stage[1] == -1  # not 30 s of the new sleeper yet
            elif i == int(25 * fs):
                assert est.stage[1] >= 0
        runs.append(st.hypnogram())
    (st_a, p_a), (st_b, p_b) = runs
    np.testing.assert_array_equal(st_a[1, 41:], st_b[1, 41:])
    np.testing.assert_allclose(p_a[1, 41:], p_b[1, 41:], atol=1e-12)
    np.testing.assert_array_equal(st_a[0], st_b[0])  # the other session is untouched
    assert (st_a[1, 41:] >= 0).all()


def test_shards_on_threads_give_the_same_estimates(night, monkeypatch):
    import nexus.staging.live.stager as live

    monkeypatch.setattr(live, "MIN_SHARD", 2)
    sig, fs = night
    n = int(4 * 60 * fs)
    data = np.stack([sig[:, i * n : (i + 1) * n] for i in range(5)]).astype(np.float32)
    data[2, 1, 1000:1200] = np.nan  # missing samples in one session
    step = int(5 * fs)
    whole, threaded = LiveStager(5, fs, workers=1), LiveStager(5, fs, workers=2)
    assert len(threaded._shards) == 2 and len(whole._shards) == 1
    for i in range(0, n, step):
        for st in (whole, threaded):
            st.push(data[..., i : i + step])
        if i == 20 * step:
            for st in (whole, threaded):
                st.reset([1, 4])
        a, b = whole.update(), threaded.update()
        np.testing.assert_array_equal(a.stage, b.stage)
        np.testing.assert_array_equal(a.epoch_index, b.epoch_index)
        np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=0, atol=1e-12)
        assert (a.final, a.t) == (b.final, b.t)
        assert whole.n_blocks == threaded.n_blocks
    ha, hb = whole.hypnogram(), threaded.hypnogram()
    np.testing.assert_array_equal(ha[0], hb[0])
    assert ha[0].shape == (5, 8)
    whole.close()
    threaded.close()


def test_close_stops_the_worker_threads_and_the_stager_still_works(night, monkeypatch):
    import threading

    import nexus.staging.live.stager as live

    def stager_threads():
        return [t for t in threading.enumerate() if t.name.startswith("nexus-stager")]

    monkeypatch.setattr(live, "MIN_SHARD", 2)
    sig, fs = night
    block = np.stack([sig[:, : int(40 * fs)]] * 4)
    before = len(stager_threads())
    with LiveStager(4, fs, workers=2) as st:
        st.push(block[..., : int(20 * fs)])
        st.update()
        assert len(stager_threads()) > before  # the shards run on worker threads
    assert len(stager_threads()) == before  # leaving the block closed them
    st.close()  # closing twice is harmless
    st.push(block[..., int(20 * fs) :])  # a closed stager still stages, on the calling thread
    est = st.update()
    assert st.n_blocks == 8 and est.final is False
    with LiveStager(4, fs, workers=1) as one:
        one.push(block)
        ref = one.update()
    np.testing.assert_array_equal(est.stage, ref.stage)


def test_compiled_window_features_equal_the_array_version(night):
    sig, fs = night
    st = LiveStager(2, fs)
    x = np.stack([sig[:, : int(4 * 60 * fs)], 0.3 * sig[:, int(4 * 60 * fs) : int(8 * 60 * fs)]])
    x[1, 2, 5000:5100] = np.nan
    _run(st, x, int(5 * fs))
    blocks = st._shards[0].blocks
    ints = blocks._band_integrals()
    compiled = blocks._features_of_window(ints)
    plain = oracles.window_features(blocks, ints)  # the array form, on the same statistics
    np.testing.assert_allclose(compiled[0], plain[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(compiled[1], plain[1])
    np.testing.assert_allclose(ints, oracles.band_integrals(blocks), rtol=1e-6)


def test_compiled_model_inputs_equal_the_array_version():
    from nexus.staging._kernels import model_inputs

    rng = np.random.default_rng(7)
    s, f = 9, 6
    raw = rng.normal(size=(s, f)) * 10.0 ** rng.integers(-3, 4, size=(s, f))
    raw[0, 1], raw[1, 2], raw[2, 3] = np.nan, np.inf, -np.inf
    bad = np.zeros(s, dtype=bool)
    bad[3] = True
    sums = tuple(rng.random((s, f)) * 5 for _ in range(4))
    sums[1][4] = 0.0  # no history: 0 / 0 where the window is artefact
    center = rng.normal(size=(s, 2, f))
    center[5] = np.nan  # no scaling yet
    spread = rng.random((s, 2, f)) + 0.5
    times = np.array([1.25, 0.15625])
    cols = rng.permutation(3 * f + 2)[:15].astype(np.int64)
    ref_smooth, ref_x = oracles.model_inputs(raw, bad, sums, center, spread, times, cols)
    smooth, x = np.empty((s, 2, f)), np.empty((s, 15), np.float32)
    model_inputs(raw, bad, *sums, center, spread, times, cols, smooth, x)
    np.testing.assert_array_equal(smooth, ref_smooth)
    np.testing.assert_array_equal(x, ref_x)
    assert x.dtype == np.float32 and not np.isnan(x).any()


def test_prior_stands_in_for_the_rest_of_the_night():
    # a night whose first 40 epochs all sit at 10 (e.g. deep sleep) against a prior centred on 0:
    # with most of an 8-h night still to come, the scaling stays near the prior (old code: 40 epochs
    # of history against a prior worth 60 put the centre at 4); at the night's end only prior_epochs count
    prior = {"eeg_std_c7": [-1.0, 0.0, 1.0], "eeg_std_p2": [-1.0, 0.0, 1.0]}

    def centre(night_epochs):
        sc = RunningScaling(1, ["eeg_std"], prior, prior_epochs=60.0, night_epochs=night_epochs)
        for e in range(1, 41):
            v = np.full((1, 2, 1), 10.0)
            sc.close_epoch(v[:, 0], np.zeros(1, bool), v, e)
        return sc.scaling()[0][0, :, 0]

    w_rest = 60.0 + REST_WEIGHT * (960 - 40)
    np.testing.assert_allclose(centre(960.0), 10.0 * 40 / (40 + w_rest))
    np.testing.assert_allclose(centre(40.0), 10.0 * 40 / 100)
    assert (centre(960.0) < 2.0).all()
