"""Figures: the hand-made per-epoch Welch spectra equal scipy's; plots draw without pyplot."""

import datetime as dt

import numpy as np
import pytest
from scipy.signal import welch

from nexus.reports.plots import epoch_spectra, plot_hypnogram, plot_spectrogram, to_png


@pytest.mark.parametrize("fs", [100.0, 256.0])
def test_epoch_spectra_equal_scipy_welch(fs):
    rng = np.random.default_rng(0)
    n = int(fs * 30)
    t = np.arange(5 * n) / fs
    x = rng.normal(0, 20, t.size) + 40 * np.sin(2 * np.pi * 1.2 * t) + 7
    f, p = epoch_spectra(np.append(x, np.zeros(17)), fs)  # a trailing part under one epoch is dropped
    f2, p2 = welch(x.reshape(5, n), fs=fs, nperseg=int(4 * fs), axis=-1)
    keep = f2 <= 25
    np.testing.assert_allclose(f, f2[keep])
    assert p.shape == (5, keep.sum())
    np.testing.assert_allclose(p[:, 1:], p2[:, keep][:, 1:], rtol=1e-4)  # DC: welch does not double it
    assert f[p[0].argmax()] == pytest.approx(1.25)  # the 1.2-Hz wave, on the 0.25-Hz grid


def test_hypnogram_and_spectrogram_render_with_clock_times():
    stages = np.array([0, 0, 1, 2, 2, 3, 3, 2, 4, 4, -1, 0] * 10)
    probs = np.eye(5)[np.clip(stages, 0, 4)]
    fig = plot_hypnogram(stages, 30.0, start=dt.datetime(2026, 1, 1, 23, 30), probabilities=probs,
                         duration_s=stages.size * 30 + 600)
    ax = fig.axes[-1]
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert {"23:30", "23:45", "00:00", "00:30"} <= set(labels)
    assert to_png(fig)[:4] == b"\x89PNG"
    x = np.random.default_rng(1).normal(0, 10, 100 * 600)
    assert to_png(plot_spectrogram(x, 100.0))[:4] == b"\x89PNG"


@pytest.mark.parametrize(("minutes", "start", "want"), [
    (12, dt.datetime(2026, 1, 1, 22, 0), ["22:00", "22:02", "22:04", "22:06", "22:08", "22:10", "22:12"]),
    (30, None, ["0 min", "5 min", "10 min", "15 min", "20 min", "25 min", "30 min"]),
    (480, None, ["0 h", "1 h", "2 h", "3 h", "4 h", "5 h", "6 h", "7 h", "8 h"]),
], ids=["excerpt-clock", "half-hour", "night"])
def test_time_axis_has_readable_ticks_for_an_excerpt_and_a_night(minutes, start, want):
    # a 12-min excerpt had one tick (22:00) on a 15-min grid; elapsed minutes read better than 0.0833333 h
    x = np.random.default_rng(2).normal(0, 10, int(100 * 60 * minutes))
    fig = plot_spectrogram(x, 100.0, start=start)
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    shown = [t.get_text() for t in ax.get_xticklabels() if lo - 1e-9 <= t.get_position()[0] <= hi + 1e-9]
    assert shown == want
