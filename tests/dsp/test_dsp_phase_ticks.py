"""Live ticks (chunks short enough for the compiled kernel, ``nexus.dsp._fir.predict_tick``) against rules stated
independently of the code: the SNR is the envelope over the running RMS of the high-passed EEG, whose power is the
start-up-corrected exponential mean of its square (scipy here), and a learned bias of either sign turns the phase
and every horizon's prediction by exactly the bias (a twin estimator without the bias is the reference).

The analytic tests of ``test_dsp_phase.py`` feed whole signals, which take the FFT path; these pin the tick path."""

import numpy as np
import pytest
from scipy import signal

from nexus.dsp.phase import _POWER_TAU_S, _PRE_HP_HZ, DIRECT_FIR_MAX, CausalPhaseEstimator

FS = 100.0
TICK = 25  # samples per live tick (a 0.25-s tick)


def _feed(est, x):
    """Feed (rows, n) in ticks; the phases, envelopes, SNRs and multi-horizon predictions, joined."""
    assert TICK <= DIRECT_FIR_MAX
    parts = [est.update(x[:, a:a + TICK]) for a in range(0, x.shape[1], TICK)]
    ahead = [p.ahead_phase for p in parts if p.ahead_phase is not None]
    return (np.concatenate([p.phase for p in parts], axis=1), np.concatenate([p.amp for p in parts], axis=1),
            np.concatenate([p.snr for p in parts], axis=1), np.concatenate(ahead, axis=1) if ahead else None)


def _wrap(a):
    return np.angle(np.exp(1j * a))


def test_live_snr_is_the_envelope_over_the_started_up_running_rms():
    t = np.arange(int(20 * FS)) / FS
    rng = np.random.default_rng(5)
    x = np.stack([50 * np.cos(2 * np.pi * t), 20 * np.cos(2 * np.pi * 0.8 * t)]) + rng.normal(0, 5, (2, t.size))
    _, amp, snr, _ = _feed(CausalPhaseEstimator(2, FS), x)
    y = signal.sosfilt(signal.butter(1, _PRE_HP_HZ, btype="highpass", fs=FS, output="sos"), x, axis=-1)
    a = 1.0 / (_POWER_TAU_S * FS)
    power = signal.lfilter([a], [1.0, -(1.0 - a)], y**2, axis=-1) / (1.0 - (1.0 - a) ** np.arange(1, t.size + 1))
    np.testing.assert_allclose(snr, amp / np.sqrt(2.0 * power), rtol=1e-9)
    assert snr[0, 0] == pytest.approx(amp[0, 0] / (np.sqrt(2.0) * abs(y[0, 0])), rel=1e-9)  # one sample: its square


@pytest.mark.parametrize("late_s", [0.1, -0.1], ids=["late-pulses", "early-pulses"])
def test_a_learned_bias_of_either_sign_turns_live_phases_and_predictions_by_itself(late_s):
    t = np.arange(int(40 * FS)) / FS
    x = (50 * np.cos(2 * np.pi * t))[None]  # up-states (phase 0) at whole seconds

    def make():
        return CausalPhaseEstimator(1, FS, horizon_s=0.1, ahead_s=(0.05, 0.1, 0.15), decide_every=10)

    est, plain = make(), make()
    cut = int(10 * FS)
    for e in (est, plain):
        _feed(e, x[:, :cut])
    est.note_pulses(np.zeros(8, dtype=int), 11.0 + late_s + np.arange(8), 0.0)  # aimed at up-states, off by late_s
    for e in (est, plain):
        _feed(e, x[:, cut:int(30 * FS)])
    bias = est.bias[0]
    assert np.sign(bias) == np.sign(late_s) and abs(bias) > 0.05 and plain.bias[0] == 0.0
    phase, _, _, ahead = _feed(est, x[:, int(30 * FS):])
    phase0, _, _, ahead0 = _feed(plain, x[:, int(30 * FS):])
    np.testing.assert_allclose(_wrap(phase - phase0 - bias), 0.0, atol=1e-9)
    assert ahead is not None and ahead0 is not None and ahead.shape[-1] == 3
    np.testing.assert_allclose(_wrap(ahead - ahead0 - bias), 0.0, atol=1e-9)
