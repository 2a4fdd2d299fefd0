"""The compiled CLAS kernels against the NumPy formulation they replace (kept here as the oracle).

:func:`nexus.dsp._fir.predict_tick` (the phase estimator's update on live ticks) and
:func:`nexus.dreamscape._kernels.envelope_tick` (the controller's artefact hold and envelope mean) must give
what the NumPy passes gave, to the rounding level, through resets, learned phase biases and artefacts.
"""

import numpy as np
from scipy import signal

from nexus.dreamscape._kernels import envelope_tick
from nexus.dsp.phase import CausalPhaseEstimator, PhaseTrack, _hilbert_row, reference_band, reference_phase

FS = 100.0
AHEAD = (0.05, 0.07, 0.09, 0.11, 0.13)  # an odd number of horizons (the kernel sums them four at a time)


class _NumpyEstimator(CausalPhaseEstimator):
    """The estimator's update as NumPy passes (the formulation before the compiled kernel)."""

    def update(self, x):
        a = np.asarray(x, dtype=np.float64)
        m = a.shape[1]
        y, self._hp_zi = signal.sosfilt(self._hp, a, axis=-1, zi=self._hp_zi)
        full = np.concatenate([self._y_hist, y], axis=1)
        win = np.lib.stride_tricks.sliding_window_view(full, self._b.size, axis=1)
        z = win[:, :m] @ (self._taps_re + 1j * self._taps_im)
        ahead_idx, ahead_phase = self._ahead(full, m)
        self._y_hist = full[:, -self._y_hist.shape[1]:].copy()
        alpha = self._pow_a
        pw, self._pow_zi = signal.lfilter([alpha], [1.0, -(1.0 - alpha)], y * y, axis=-1, zi=self._pow_zi)
        count = self._pow_n[:, None] + np.arange(1, m + 1)[None, :]
        pw = pw / (1.0 - (1.0 - alpha) ** count)
        self._pow_n += m
        amp = np.abs(z) * self._amp_scale
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.where(pw > 0, amp / np.sqrt(2.0 * pw), 0.0)
        t = (self._n_seen + np.arange(m)) / self.fs
        size = self._ring.shape[1]
        cols = (self._n_seen + np.arange(max(0, m - size), m)) % size
        self._ring[:, cols] = a[:, max(0, m - size):]
        self._n_seen += m
        self._learn()
        phase = np.angle(z)
        if self._bias.any():
            phase = np.angle(np.exp(1j * (phase + self._bias[:, None])))
        if ahead_phase is not None and self._bias.any():
            ahead_phase = np.angle(np.exp(1j * (ahead_phase + self._bias[:, None, None])))
        return PhaseTrack(t=t, phase=phase, amp=amp, horizon_s=self.horizon_s, snr=snr, ahead_idx=ahead_idx,
                          ahead_phase=ahead_phase)


def _eeg(rows, n, rng):
    """Slow waves of 0.6-1.4 Hz, 40-120 µV, with noise, drift and (finite) artefacts of up to 1e5 µV."""
    t = np.arange(n) / FS
    f = rng.uniform(0.6, 1.4, (rows, 1))
    x = rng.uniform(40, 120, (rows, 1)) * np.cos(2 * np.pi * f * t + rng.uniform(0, 6, (rows, 1)))
    x += rng.normal(0, 10, (rows, n)) + 30 * np.sin(2 * np.pi * 0.05 * t)
    spikes = rng.random((rows, n)) < 0.002
    x[spikes] = rng.choice([-1e5, 1e5, 3e3], spikes.sum())
    return x


def _wrapped(a, b):
    return np.abs(np.angle(np.exp(1j * (np.asarray(a) - np.asarray(b)))))


def test_the_compiled_update_gives_the_numpy_update_through_resets_biases_and_artefacts():
    rng = np.random.default_rng(11)
    rows = 5
    new = CausalPhaseEstimator(rows, FS, horizon_s=0.05, ahead_s=AHEAD, decide_every=10)
    old = _NumpyEstimator(rows, FS, horizon_s=0.05, ahead_s=AHEAD, decide_every=10)
    x = _eeg(rows, 4000, rng)
    at, seen_bias, decided = 0, False, 0
    while at < x.shape[1]:
        m = int(rng.integers(1, 60))
        chunk = x[:, at : at + m]
        got, want = new.update(chunk), old.update(chunk)
        at += chunk.shape[1]
        np.testing.assert_allclose(got.amp, want.amp, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(got.snr, want.snr, rtol=1e-9, atol=1e-12)
        assert _wrapped(got.phase, want.phase).max(initial=0) < 1e-9
        np.testing.assert_array_equal(got.ahead_idx, want.ahead_idx)
        assert got.ahead_phase.shape == want.ahead_phase.shape
        assert _wrapped(got.ahead_phase, want.ahead_phase).max(initial=0) < 1e-9
        decided += got.ahead_idx.size
        np.testing.assert_array_equal(new.bias, old.bias)
        seen_bias |= bool(np.any(new.bias != 0))
        if rng.random() < 0.3:  # pulses to learn from: the phase bias moves
            s, target = rng.integers(0, rows, 2), rng.uniform(-1, 1)
            for est in (new, old):
                est.note_pulses(s, [at / FS - 0.5] * 2, target)
        if rng.random() < 0.05:  # a glitch: some rows start again
            bad = rng.choice(rows, 2, replace=False)
            new.reset(bad)
            old.reset(bad)
    assert seen_bias and decided > 300


def _numpy_envelope(amp, max_amp, t0, hold_until, alpha, env_zi, env_n):
    """The controller's hold and envelope mean as NumPy passes (before the compiled kernel)."""
    m = amp.shape[1]
    eeg_times = t0 + np.arange(m) / FS
    over = amp > max_amp[:, None]
    last_over = np.maximum.accumulate(np.where(over, np.arange(m)[None, :], -1), axis=1)
    hold = np.where(last_over >= 0, t0 + last_over / FS + 3.0, hold_until[:, None])
    hold = np.maximum(hold, hold_until[:, None])
    held = eeg_times[None, :] < hold
    env_in = np.where(held, env_zi / (1.0 - alpha), amp)
    ema, zi = signal.lfilter([alpha], [1.0, -(1.0 - alpha)], env_in, axis=-1, zi=env_zi)
    count = env_n[:, None] + np.arange(1, m + 1)[None, :]
    return hold, ema / (1.0 - (1.0 - alpha) ** count), hold[:, -1].copy(), zi, env_n + m


def test_the_compiled_envelope_gates_give_the_numpy_ones_through_artefacts_and_resets():
    rng = np.random.default_rng(4)
    rows, alpha = 6, 0.05  # a short mean, so that its start-up correction settles in the test
    settled = float(np.ceil(-60.0 * np.log(2.0) / np.log1p(-alpha)))
    max_amp = np.array([150.0, 150.0, np.inf, 80.0, 150.0, 300.0])
    hold_until, env_zi, env_n = np.full(rows, -np.inf), np.zeros(rows), np.zeros(rows)
    ref = (hold_until.copy(), env_zi[:, None].copy(), env_n.copy())
    t0, held, total = 0.0, 0, 0
    for _ in range(150):
        m = int(rng.integers(1, 40))
        amp = rng.gamma(4.0, 20.0, (rows, m))
        amp[rng.random((rows, m)) < 0.001] = 1e4  # artefacts
        hold, mean = np.empty((rows, m)), np.empty((rows, m))
        envelope_tick(amp, max_amp, t0, FS, 3.0, hold_until, alpha, env_zi, env_n, settled, hold, mean)
        want_hold, want_mean, *ref = _numpy_envelope(amp, max_amp, t0, *ref[:1], alpha, *ref[1:])
        np.testing.assert_array_equal(hold, want_hold)
        np.testing.assert_allclose(mean, want_mean, rtol=1e-12)
        np.testing.assert_array_equal(hold_until, ref[0])
        np.testing.assert_allclose(env_zi, ref[1][:, 0], rtol=1e-12)
        held += int(np.sum(t0 + np.arange(m) / FS < hold))
        total += rows * m
        if rng.random() < 0.05:  # a reset of one row's mean (the controller's glitch handling)
            r = int(rng.integers(rows))
            env_zi[r] = env_n[r] = ref[1][r] = ref[2][r] = 0.0
        t0 += m / FS
    assert 100 < held < 0.8 * total and env_n.max() > settled  # the hold was met, and the correction settled


def test_the_calibration_takes_the_reference_phase_at_the_pulse_without_ffts():
    rng = np.random.default_rng(2)
    for n, at in ((901, 600), (900, 300)):  # odd and even windows (the Hilbert multiplier differs)
        x = np.cumsum(rng.normal(0, 5, (4, n)), axis=1) + _eeg(4, n, rng)
        want = reference_phase(x, FS)[:, at]
        got = np.angle(reference_band(x, FS) @ _hilbert_row(n, at))
        assert _wrapped(got, want).max() < 1e-9
