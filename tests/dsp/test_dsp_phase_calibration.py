"""The phase estimator learns each session's bias from where its pulses landed (causally)."""

import numpy as np

from nexus.dsp.phase import CausalPhaseEstimator, target_crossings

FS = 100.0
F0 = 0.9  # Hz


def _sine(seconds, amp=60.0, phase0=0.0):
    t = np.arange(int(seconds * FS)) / FS
    return amp * np.cos(2 * np.pi * F0 * t + phase0)


def _feed_with_pulses(est, x, late_deg, sessions=(0,), chunk=25):
    """Feed x to every row; report a pulse aimed at 0° on each up-state peak, but ``late_deg`` after it (open loop:
    the pulses do not follow the estimate, so the learned bias only grows, up to its bound)."""
    peaks = (np.arange(1, int(x.size / FS * F0)) - late_deg / -360.0) / F0  # k/F0 + late/360/F0
    noted = 0
    for a in range(0, x.size, chunk):
        est.update(np.tile(x[a : a + chunk], (est.n_sessions, 1)))
        now = (a + chunk) / FS
        while noted < peaks.size and peaks[noted] <= now:
            est.note_pulses(list(sessions), [peaks[noted]] * len(sessions), 0.0)
            noted += 1
    return noted


def test_closed_loop_learns_an_unmodelled_delay():
    """Pulses aimed at the up-state (0°) by the estimator's own crossings reach the ear 120 ms later than it
    predicts (a latency it was not told): at 0.9 Hz that is 38.9° late. The oracle is the cosine's phase."""
    est = CausalPhaseEstimator(2, FS, horizon_s=0.05)
    x = _sine(240)
    prev = np.zeros(2)
    truth = []
    for a in range(0, x.size, 25):
        tr = est.update(np.tile(x[a : a + 25], (2, 1)))
        p0 = np.concatenate([prev[:, None], tr.phase[:, :-1]], axis=1)
        prev = tr.phase[:, -1]
        crossed, _ = target_crossings(p0[0], tr.phase[0], 0.0)
        for i in np.flatnonzero(crossed):
            if tr.t[i] < 2.0:
                continue
            at = tr.t[i] + 0.05 + 0.12
            est.note_pulses([0], [at], 0.0)  # only row 0 reports its pulses
            truth.append(np.degrees(np.angle(np.exp(2j * np.pi * F0 * at))))
    truth = np.array(truth)
    assert truth.size > 150
    assert np.mean(truth[:5]) > 15.0  # at first the pulses land late ...
    assert abs(np.mean(truth[-50:])) < 3.0  # ... once learned, on the up-state peak
    assert np.degrees(est.bias[0]) > 15.0 and est.bias[1] == 0.0
    # the phase it reports for row 0 is ahead of row 1's (same EEG) by exactly the learned bias
    tr = est.update(np.tile(_sine(2, phase0=2 * np.pi * F0 * 240), (2, 1)))
    shift = np.degrees(np.angle(np.exp(1j * (tr.phase[0] - tr.phase[1]))))
    np.testing.assert_allclose(shift, np.degrees(est.bias[0]), atol=1e-6)


def test_a_pulse_teaches_nothing_before_its_after_window_has_been_fed():
    est = CausalPhaseEstimator(1, FS)
    x = _sine(30)
    est.update(x[None, : int(15 * FS)])
    est.note_pulses([0], [15.0], 0.0)  # at 15 s the cosine is at 13.5 x 360° = 180°: far from the target
    est.update(x[None, int(15 * FS) : int(17.9 * FS)])  # 2.9 s after the pulse: its reference is not ready
    assert est.bias[0] == 0.0
    est.update(x[None, int(17.9 * FS) : int(18.2 * FS)])
    assert est.bias[0] != 0.0


def test_reset_forgets_the_bias_and_pending_pulses():
    est = CausalPhaseEstimator(2, FS)
    _feed_with_pulses(est, _sine(60), late_deg=-25.0, sessions=(0, 1))
    assert np.all(np.degrees(est.bias) < -5.0)
    est.note_pulses([0], [est.n_seen / FS - 0.5], 0.0)
    est.reset([0])
    assert est.bias[0] == 0.0 and est.bias[1] < 0.0
    est.update(np.tile(_sine(5), (2, 1)))  # the forgotten pulse would have matured now
    assert est.bias[0] == 0.0


def test_calibration_off_keeps_the_plain_estimate():
    a = CausalPhaseEstimator(1, FS, calibrate=False)
    b = CausalPhaseEstimator(1, FS, calibrate=False)
    x = _sine(60)
    _feed_with_pulses(a, x, late_deg=30.0)
    assert a.bias[0] == 0.0
    np.testing.assert_allclose(a.update(x[None, :300]).phase, b.update(np.concatenate([x, x[:300]])[None])
                               .phase[:, -300:], atol=1e-12)


def test_the_bias_is_bounded():
    est = CausalPhaseEstimator(1, FS)
    _feed_with_pulses(est, _sine(300), late_deg=90.0)
    assert abs(est.bias[0]) <= np.pi / 4 + 1e-12
