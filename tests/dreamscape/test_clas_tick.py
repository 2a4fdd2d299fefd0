"""CLAS decided at the end of each live tick, for crossings still ahead (the facility loop's mode)."""

from types import SimpleNamespace

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.dreamscape.controller import Controller
from nexus.dreamscape.presets import default_clas_program
from nexus.dsp.phase import reference_phase

FS = 100.0
N3 = np.eye(5)[3][None]


def _clicks(x, chunk, tick_s=0.1, latency_s=0.08):
    c = Controller([default_clas_program()], FS, latency_s=latency_s, tick_s=tick_s)
    out = []
    for a in range(0, x.size, chunk):
        b = min(a + chunk, x.size)
        out += [(b / FS, k.t) for k in c.step(b / FS, eeg=x[None, a:b], probs=N3) if k.kind == "click"]
    return out


def _train(seconds=120.0, seed=3):
    """Slow waves of 0.7-1.3 Hz and 60-120 µV with background noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    f = 1.0 + 0.3 * np.sin(2 * np.pi * t / 17.0)
    phase = 2 * np.pi * np.cumsum(f) / FS
    return 90 * np.cos(phase) * (1 + 0.3 * np.sin(2 * np.pi * t / 23.0)) + rng.normal(0, 8, t.size)


def test_tick_decisions_do_not_depend_on_how_samples_are_chunked():
    x = _train()
    runs = [[round(on, 6) for _, on in _clicks(x, chunk)] for chunk in (10, 37, 100)]
    assert len(runs[0]) >= 20
    for other in runs[1:]:  # the same clicks; the phase bias is re-learned at chunk ends, hence a few ms apart
        assert len(other) == len(runs[0])
        np.testing.assert_allclose(other, runs[0], atol=0.01)  # 10 ms: 3.6 deg at 1 Hz


def test_each_click_is_still_ahead_when_its_tick_has_been_processed_and_lands_on_the_up_state():
    x = _train()
    latency = 0.08
    got = _clicks(x, 10, latency_s=latency)
    onsets = np.array([on for _, on in got])
    decided = np.array([at for at, _ in got])  # the end of the tick that placed the click
    # never in the past of the decision, never beyond one tick past the shortest horizon
    assert np.all(onsets >= decided - 1 / FS + latency - 1e-9)  # the tick's last sample is 1/fs before its end
    assert np.all(onsets <= decided - 1 / FS + latency + 0.1 + 1e-9)
    ph = reference_phase(x, FS)[np.round(onsets * FS).astype(int)]
    assert np.mean(np.abs(np.angle(np.exp(1j * ph)))) < np.radians(30)
    assert np.mean(np.abs(ph) <= np.pi / 4) >= 0.9


def _clas_program(target_deg=0.0):
    """The default CLAS program with a target phase and no relative-envelope gate (a steady sine passes it)."""
    p = default_clas_program()
    deep = p.scenes["deep"]
    clas = deep.clas.model_copy(update={"relative_amplitude": 0.0, "target_phase_deg": target_deg})
    return p.model_copy(update={"scenes": {**p.scenes, "deep": deep.model_copy(update={"clas": clas})}})


def _sine_clicks(target_deg, *, tick_s=0.1, latency_s=0.08, chunk=10, f=1.1, seconds=40.0):
    """Clicks on a steady f-Hz, 80-µV sine: (end of the call that returned it, onset, decision inputs)."""
    x = 80 * np.cos(2 * np.pi * f * np.arange(int(seconds * FS)) / FS)
    c = Controller([_clas_program(target_deg)], FS, latency_s=latency_s, tick_s=tick_s)
    out = []
    for a in range(0, x.size, chunk):
        b = min(a + chunk, x.size)
        out += [(b / FS, k.t, k) for k in c.step(b / FS, eeg=x[None, a:b], probs=N3) if k.kind == "click"]
    inputs = {round(d.t, 9): d.inputs for d in c.decisions if d.kind == "click"}
    return [(at, on, inputs[round(on, 9)]) for at, on, _ in out]


@pytest.mark.parametrize("target_deg", [0.0, 45.0])
def test_clicks_land_on_the_target_phase_of_a_steady_slow_wave(target_deg):
    f = 1.1
    got = _sine_clicks(target_deg, f=f)
    assert len(got) >= 12
    onsets = np.array([on for _, on, _ in got])
    err = np.degrees(np.angle(np.exp(1j * (2 * np.pi * f * onsets - np.radians(target_deg)))))  # the true phase
    assert abs(np.mean(err)) < 8 and np.std(err) < 6  # 8 deg at 1.1 Hz: 20 ms
    # the decision logs the target as the phase at onset (the tick predicted the crossing there)
    assert {inp["phase_deg"] for _, _, inp in got} == {target_deg}
    assert all(inp["latency_s"] == 0.08 for _, _, inp in got)


def test_clicks_are_decided_only_at_the_last_sample_of_each_tick():
    for tick_s, every in ((0.1, 10), (0.05, 5)):
        got = _sine_clicks(0.0, tick_s=tick_s, latency_s=0.05, chunk=1)  # one sample a call
        assert len(got) >= 20
        ends = np.round(np.array([at for at, _, _ in got]) * FS).astype(int)
        assert np.all(ends % every == 0), (tick_s, sorted(set((ends % every).tolist())))
        lead = np.array([on for _, on, _ in got]) - (ends - 1) / FS  # from the tick's last sample to the onset
        assert lead.min() >= 0.05 - 1e-9 and lead.max() <= 0.05 + tick_s + 1e-9


def test_a_tick_that_would_predict_beyond_a_quarter_second_is_refused():
    with pytest.raises(InvalidInputError, match=r"latency_s \+ tick_s = 0\.260 s is beyond the 0\.25-s the phase can "
                                                r"be predicted; shorten the tick\."):
        Controller([default_clas_program()], FS, latency_s=0.1, tick_s=0.16)
    assert Controller([default_clas_program()], FS, latency_s=0.05, tick_s=0.2).tick_s == 0.2  # 0.25 s exactly
    with pytest.raises(InvalidInputError, match=r"^Invalid value for 'tick_s': expected <= 0\.2 s, got 0\.21 s\."):
        Controller([default_clas_program()], FS, latency_s=0.0, tick_s=0.21)


def test_a_one_sample_tick_decides_at_every_sample_and_no_tick_decides_where_the_crossing_is_found():
    for tick_s in (0.01, None):  # one sample at 100 Hz; offline replays: no tick
        got = _sine_clicks(0.0, tick_s=tick_s, latency_s=0.05, chunk=1)
        ends = np.round(np.array([at for at, _, _ in got]) * FS).astype(int)
        assert len(got) >= 12 and len(set((ends % 2).tolist())) == 2  # odd and even samples alike
        assert Controller([default_clas_program()], FS, tick_s=tick_s).tick_s == tick_s
        onsets = np.array([on for _, on, _ in got])
        err = np.degrees(np.angle(np.exp(1j * 2 * np.pi * 1.1 * onsets)))
        assert abs(np.mean(err)) < 8 and np.std(err) < 6


@pytest.mark.parametrize(("fs", "tick_s", "latency_s", "every", "step_s"), [
    (100.0, 0.1, 0.08, 10, 0.01),  # 11 horizons, 10 ms apart
    (100.0, 0.05, 0.05, 5, 0.01),
    (100.0, 0.01, 0.05, 1, 0.01),  # a one-sample tick: its two ends
    (50.0, 0.1, 0.05, 5, 0.01),  # 10-ms steps finer than the 20-ms samples
])
def test_the_tick_predicts_over_horizons_10_ms_apart_from_the_latency_to_one_tick_beyond(fs, tick_s, latency_s,
                                                                                           every, step_s):
    c = Controller([default_clas_program()], fs, latency_s=latency_s, tick_s=tick_s)
    want = latency_s + np.arange(round(every / fs / step_s) + 1) * step_s
    np.testing.assert_allclose(c.phase.ahead_s, want, atol=1e-12)
    assert c.phase.decide_every == every


def test_a_crossing_ahead_is_placed_where_the_predicted_phase_meets_the_target_between_two_horizons():
    """The onset of a click decided at a tick's last sample, against the answer by hand: predictions that turn at
    a steady rate over the horizons (0.08-0.18 s, 10 ms apart) cross the target at a known horizon."""
    c = Controller([_clas_program(0.0), _clas_program(45.0), _clas_program(0.0)], FS, latency_s=0.08, tick_s=0.1)
    c.step(0.1, eeg=np.zeros((3, 10)), probs=np.repeat(N3, 3, axis=0))  # the deep scene: each row's target
    h = 0.08 + 0.01 * np.arange(11)
    w = 2 * np.pi * 1.1  # rad/s
    target = np.radians([0.0, 45.0, 0.0])
    cross = np.array([[0.1234, 0.4], [0.0815, 0.1795], [0.15, 0.11]])  # where each row's line meets its target
    ph = target[:, None, None] + w * (h[None, None, :] - cross[:, :, None])  # (rows, decisions, horizons)
    ph[2] = target[2] - w * (h[None, :] - cross[2][:, None])  # row 2 turns backwards: passes it the wrong way
    ph = np.angle(np.exp(1j * ph))
    track = SimpleNamespace(ahead_idx=np.array([4, 9]), ahead_phase=ph)
    t_samples = 7.0 + np.arange(10) / FS
    mask, onset = c._ahead_crossings(track, np.arange(3), 10, t_samples)
    want = np.zeros((3, 10), dtype=bool)
    want[0, 4] = want[1, 4] = want[1, 9] = True  # row 0's second line reaches it only at 0.4 s, beyond the tick
    np.testing.assert_array_equal(mask, want)
    np.testing.assert_allclose(onset[0, 4], 7.04 + 0.1234, atol=1e-9)
    np.testing.assert_allclose(onset[1, [4, 9]], [7.04 + 0.0815, 7.09 + 0.1795], atol=1e-9)
    assert np.isnan(onset[:, [0, 1, 2, 3, 5, 6, 7, 8]]).all()  # decided only at the ticks' last samples


def test_without_a_tick_the_phase_is_predicted_over_the_latency_itself():
    """Offline replays (no tick) seek the crossing at every sample, predicted ``latency_s`` ahead: with 120 ms
    (not the estimator's default 50 ms) the clicks still land on the target of a steady sine."""
    assert Controller([default_clas_program()], FS, latency_s=0.12).phase.horizon_s == 0.12
    got = _sine_clicks(0.0, tick_s=None, latency_s=0.12, chunk=25)
    assert len(got) >= 12
    onsets = np.array([on for _, on, _ in got])
    err = np.degrees(np.angle(np.exp(1j * 2 * np.pi * 1.1 * onsets)))
    assert abs(np.mean(err)) < 8 and np.std(err) < 6  # a 50-ms horizon would put them 70 ms (28 deg) late


def _decisions(x, chunk, eager, monkeypatch, tick_s, rows=3):
    """Every decision of a tick controller over ``rows`` beds (a shifted copy of ``x`` each, one bed awake)."""
    from nexus.dsp import phase as phase_mod

    with monkeypatch.context() as mp:
        if eager:  # the former live tick: every phase taken at once, a plain PhaseTrack
            tick = phase_mod.CausalPhaseEstimator._update_tick

            def eager_tick(self, a, m, want):
                tr = tick(self, a, m, want)
                return phase_mod.PhaseTrack(t=tr.t, phase=np.arctan2(tr.z_im, tr.z_re), amp=tr.amp,
                                            horizon_s=tr.horizon_s, snr=tr.snr, ahead_idx=tr.ahead_idx,
                                            ahead_phase=tr.ahead_phase)

            mp.setattr(phase_mod.CausalPhaseEstimator, "_update_tick", eager_tick)
        c = Controller([default_clas_program()] * rows, FS, latency_s=0.08, tick_s=tick_s)
        probs = np.repeat(N3, rows, axis=0)
        probs[-1] = np.eye(5)[0]  # the last bed awake: its phases are never read for a click
        eeg = np.stack([np.roll(x, 37 * k) for k in range(rows)])
        for a in range(0, x.size, chunk):
            b = min(a + chunk, x.size)
            c.step(b / FS, eeg=eeg[:, a:b], probs=probs)
        return [(d.session, d.kind, round(d.t, 9), repr(d.inputs)) for d in c.decisions]


@pytest.mark.parametrize(("chunk", "tick_s"), [(10, 0.1), (100, 0.1), (10, None)])
def test_tick_phases_taken_only_where_read_give_the_same_decisions(chunk, tick_s, monkeypatch):
    # the controller keeps a tick's FIR outputs and takes the angles it reads (the last sample, the window before
    # a click): every decision, with its gates (down-state depth, SNR, envelope), equals the eager form's, whether
    # it decides ahead at each tick's end or at the crossings within the chunk (from the previous chunk's last phase)
    x = _train(seconds=90.0)
    got = _decisions(x, chunk, False, monkeypatch, tick_s)
    want = _decisions(x, chunk, True, monkeypatch, tick_s)
    assert got == want
    assert sum(kind == "click" for _, kind, _, _ in got) >= 20  # not a trivial comparison


def test_click_down_state_is_the_lowest_predicted_band_value_before_it():
    # an independent check of the window read at a click: the gate's down-state is within the depth of the
    # signal's own troughs (90 µV waves x 0.7-1.3 envelope, noise 8 µV) and never above the -down threshold
    x = _train(seconds=90.0)
    c = Controller([default_clas_program()], FS, latency_s=0.08, tick_s=0.1)
    for a in range(0, x.size, 10):
        c.step((a + 10) / FS, eeg=x[None, a : a + 10], probs=N3)
    lows = [d.inputs["down_state_uv"] for d in c.decisions if d.kind == "click"]
    down = default_clas_program().scenes["deep"].clas.min_down_state_uv
    assert len(lows) >= 10
    assert all(-140.0 <= v <= -down for v in lows)
