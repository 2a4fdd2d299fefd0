"""Stage signatures of the synthetic sleeper: spectra, event waveforms and channel mixing.

Background activity is synthesised in the frequency domain, frame by frame (overlap-add of
sqrt-Hann windowed inverse FFTs of random spectra), so that every 1-s frame gets the
power spectrum of its stage mixture: a 1/f^α background with stage-dependent α and level, alpha
in relaxed wake, theta in N1 and REM, delta in N2/N3 and a flat 10–100 Hz band for chin EMG.
Transient events (slow oscillations and smaller delta waves, K-complexes, vertex waves, spindles, sawtooth waves, eye
movements, blinks, EMG twitches, movements) are waveforms from a kernel table, added where the
schedule puts them. Everything is vectorised over sessions, sources and time.

The real and imaginary parts of the random spectra are independent uniform draws scaled to zero
mean and unit variance (a uniform draw costs a fifth of a normal one). Each output sample sums many
of them (tens to hundreds, weighted by the spectrum), so it is Gaussian by the central limit theorem;
the expected spectrum is that of complex Gaussian coefficients, only the per-frame spread of the periodogram is
narrower (relative variance of |X|² 0.4 instead of 1), invisible once averaged over an epoch
(YASA's κ over 10 nights: 0.892 with uniform, 0.893 with Gaussian coefficients). The EOG electrodes'
own white noise (2.5 µV RMS) is drawn the same way; it is always mixed with frontal EEG.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

CHANNELS: tuple[str, ...] = (
    "EEG C4-M1",
    "EEG Fpz-Cz",
    "EOG E1-M2",
    "EOG E2-M2",
    "EMG Chin",
    "ECG",
    "Resp",
    "Acc X",
    "Acc Y",
    "Acc Z",
)
"""All channels the synthetic sleeper can produce (µV; Resp in arbitrary units; Acc in milli-g)."""

UNITS: dict[str, str] = {c: "uV" for c in CHANNELS} | {"Resp": "au", "Acc X": "mg", "Acc Y": "mg", "Acc Z": "mg"}

SPECTRAL_SOURCES: tuple[str, ...] = ("central", "frontal", "emg")
EVENT_SOURCES: tuple[str, ...] = ("slow", "fast", "eye_h", "blink", "emg", "move")

# channel gains of the spectral sources (rows: CHANNELS, columns: SPECTRAL_SOURCES)
SPECTRAL_MIX = np.zeros((len(CHANNELS), len(SPECTRAL_SOURCES)))
SPECTRAL_MIX[0, 0] = 1.0
SPECTRAL_MIX[1, 1] = 1.0
SPECTRAL_MIX[2, 1] = 0.55  # the EOG electrodes, referenced to M2, pick up frontal EEG
SPECTRAL_MIX[3, 1] = 0.5
SPECTRAL_MIX[4, 2] = 1.0

# channel gains of the event sources (rows: CHANNELS, columns: EVENT_SOURCES)
EVENT_MIX = np.zeros((len(CHANNELS), len(EVENT_SOURCES)))
EVENT_MIX[:4, 0] = (1.0, 0.9, 0.55, 0.5)  # slow waves: central and frontal, seen on EOG
EVENT_MIX[:4, 1] = (1.0, 0.4, 0.12, 0.12)  # spindles, sawtooth waves: central
EVENT_MIX[1:4, 2] = (0.08, 1.0, -1.0)  # horizontal eye movements: E1 and E2 in opposition
EVENT_MIX[1:4, 3] = (0.6, 0.5, 0.5)  # blinks
EVENT_MIX[[0, 4], 4] = (0.05, 1.0)  # EMG bursts and twitches
EVENT_MIX[[0, 1, 4, 7, 8, 9], 5] = (0.3, 0.4, 0.5, 60.0, 80.0, 30.0)  # movements (artefact, mg)

# RMS amplitude in µV of each spectral component per stage (W, N1, N2, N3, R)
_CENTRAL = {
    "pink": (9.0, 11.0, 14.0, 16.0, 9.0),
    "theta": (3.0, 10.0, 6.0, 5.0, 8.0),
    "alpha": (12.0, 3.0, 1.5, 1.0, 2.0),
    "sigma": (1.0, 1.0, 2.5, 1.5, 1.0),
    "beta": (6.0, 2.5, 1.5, 1.0, 3.5),
}
_CENTRAL_DELTA = (2.0, 6.0, 11.0, 28.0, 5.0)
_PINK_ALPHA = (1.0, 1.4, 1.8, 2.2, 1.3)
_FRONTAL_GAIN = {"pink": 0.8, "theta": 0.8, "alpha": 0.35, "sigma": 0.5, "beta": 0.9}
_FRONTAL_DELTA_GAIN = 1.0
_EMG_RMS = (14.0, 7.0, 5.0, 4.5, 1.6)
_BUMPS = {"theta": (6.0, 1.2), "alpha": (10.0, 1.0), "sigma": (13.0, 1.0), "beta": (21.0, 5.0)}


def _unit_power(shape2: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Normalise a power shape so that its components sum to 1 (unit variance)."""
    s = shape2.sum()
    return shape2 / s if s > 0 else shape2


def stage_power(fs: float, nfft: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-stage power spectra of the spectral sources.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    nfft : int
        Frame length in samples.

    Returns
    -------
    base, delta : ndarray, shape (n_sources, 5, nfft // 2 + 1)
        Variance share per frequency bin, in µV², such that summing a row gives the variance of that
        source in that stage. ``delta`` is the slow-wave part, scaled down through the night.
    """
    f = np.fft.rfftfreq(nfft, 1.0 / fs)
    nyq = fs / 2.0
    hp = 1.0 / (1.0 + (0.3 / np.maximum(f, 1e-3)) ** 8)  # gentle high-pass at 0.3 Hz
    lp = 1.0 / (1.0 + (f / min(45.0, 0.45 * fs)) ** 8)
    base = np.zeros((len(SPECTRAL_SOURCES), 5, f.size))
    delta = np.zeros_like(base)
    dshape = _unit_power(np.exp(-0.5 * ((f - 1.2) / 0.8) ** 2) * hp)
    for s in range(5):
        pink = _unit_power(np.maximum(f, 0.3) ** -_PINK_ALPHA[s] * hp * lp)
        comps = {"pink": pink} | {
            k: _unit_power(np.exp(-0.5 * ((f - f0) / bw) ** 2) * hp * lp) for k, (f0, bw) in _BUMPS.items()
        }
        for k, shape in comps.items():
            base[0, s] += _CENTRAL[k][s] ** 2 * shape
            base[1, s] += (_FRONTAL_GAIN[k] * _CENTRAL[k][s]) ** 2 * shape
        delta[0, s] = _CENTRAL_DELTA[s] ** 2 * dshape
        delta[1, s] = (_FRONTAL_DELTA_GAIN * _CENTRAL_DELTA[s]) ** 2 * dshape
        emg = ((f >= 10.0) & (f <= min(100.0, 0.95 * nyq))).astype(float)
        base[2, s] = _EMG_RMS[s] ** 2 * _unit_power(emg)
    return base, delta


@dataclass(frozen=True)
class KernelTable:
    """Waveforms of transient events, sampled at one rate.

    Attributes
    ----------
    waves : ndarray of float32, shape (n_kernels, max_len)
        Unit waveforms (peak-to-peak 1), zero-padded.
    lengths : ndarray of int, shape (n_kernels,)
        Samples of each waveform.
    source : ndarray of int, shape (n_kernels,)
        Index into :data:`EVENT_SOURCES`.
    kind : tuple of str
        Event kind of each kernel (``"slow_oscillation"``, ``"spindle"``, …).
    freq : ndarray of float, shape (n_kernels,)
        Main frequency in Hz (0 where it has none).
    """

    waves: npt.NDArray[np.float32]
    lengths: npt.NDArray[np.int64]
    source: npt.NDArray[np.int64]
    kind: tuple[str, ...]
    freq: npt.NDArray[np.float64]

    def ids(self, kind: str) -> npt.NDArray[np.int64]:
        """Kernel indices of one event kind."""
        return np.array([i for i, k in enumerate(self.kind) if k == kind], dtype=np.int64)


def _ptp1(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    r = float(x.max() - x.min())
    return x / r if r > 0 else x


def build_kernels(fs: float) -> KernelTable:
    """Build the event waveform table for sampling rate ``fs`` (deterministic)."""
    rng = np.random.default_rng(12345)  # fixed: kernels are part of the model, not of a night
    waves: list[npt.NDArray[np.float64]] = []
    meta: list[tuple[str, str, float]] = []

    def add(x: npt.NDArray[np.float64], kind: str, source: str, freq: float = 0.0) -> None:
        waves.append(_ptp1(x))
        meta.append((kind, source, freq))

    def t(dur: float) -> npt.NDArray[np.float64]:
        return np.arange(max(2, round(dur * fs))) / fs

    # slow waves, 0.57–1.43 Hz: a down-state then a smaller up-state of varied lengths and heights; the same
    # shapes twice: "slow_oscillation" (>= 75 µV peak to peak, by definition) and smaller "delta_wave"
    for kind in ("slow_oscillation", "delta_wave"):
        for down in (0.35, 0.5, 0.65, 0.8, 0.95):
            for up in (0.35, 0.55, 0.8):
                for height in (0.45, 0.7):
                    tt = t(down + up)
                    x = np.where(tt < down, -np.sin(np.pi * tt / down), height * np.sin(np.pi * (tt - down) / up))
                    add(x, kind, "slow", 1.0 / (down + up))
    for neg in (0.25, 0.35):  # K-complexes: small positive, sharp negative, slower positive
        tt = t(0.1 + neg + 0.7)
        x = np.where(tt < 0.1, 0.15 * np.sin(np.pi * tt / 0.1), 0.0)
        m = (tt >= 0.1) & (tt < 0.1 + neg)
        x[m] = -np.sin(np.pi * (tt[m] - 0.1) / neg)
        m = tt >= 0.1 + neg
        x[m] = 0.45 * np.sin(np.pi * (tt[m] - 0.1 - neg) / 0.7)
        add(x, "k_complex", "slow", 1.0 / (2 * neg))
    for dur in (0.2, 0.3):  # vertex sharp waves
        tt = t(dur)
        add(-(np.sin(np.pi * tt / dur) ** 2), "vertex_wave", "slow")
    for f0 in (11.5, 12.5, 13.5, 14.5):  # spindles
        for dur in (0.7, 1.1, 1.6):
            tt = t(dur)
            env = np.sin(np.pi * tt / dur) ** 2
            add(env * np.sin(2 * np.pi * f0 * tt), "spindle", "fast", f0)
    for f0 in (2.5, 3.2):  # sawtooth trains
        tt = t(2.4)
        saw = np.where((f0 * tt) % 1.0 < 0.75, (f0 * tt % 1.0) / 0.75, (1 - f0 * tt % 1.0) / 0.25) - 0.5
        add(np.sin(np.pi * tt / 2.4) ** 2 * saw, "sawtooth", "fast", f0)
    for rise, ret in ((0.06, 0.35), (0.08, 0.5), (0.1, 0.7)):  # rapid eye movements
        tt = t(rise + ret)
        x = np.where(tt < rise, np.sin(0.5 * np.pi * tt / rise), np.cos(0.5 * np.pi * (tt - rise) / ret))
        add(x, "rem", "eye_h")
    for hold in (0.6, 1.2):  # waking saccades: step, hold, return
        tt = t(hold + 0.2)
        add(np.clip(np.minimum(tt / 0.04, (hold + 0.2 - tt) / 0.12), 0, 1), "saccade", "eye_h")
    for dur in (2.0, 3.0, 4.0):  # slow rolling eye movements
        tt = t(dur)
        add(np.sin(np.pi * tt / dur) ** 2, "sem", "eye_h", 1.0 / dur)
    for dur in (0.25, 0.35):  # blinks
        tt = t(dur)
        add(np.sin(np.pi * tt / dur) ** 2, "blink", "blink")
    for dur in (0.12, 0.25):  # EMG twitches
        tt = t(dur)
        add(np.sin(np.pi * tt / dur) * _hf_noise(tt.size, fs, rng), "twitch", "emg")
    for dur in (1.5, 3.0):  # EMG bursts of movements and arousals
        tt = t(dur)
        add(np.sin(np.pi * tt / dur) ** 0.5 * _hf_noise(tt.size, fs, rng), "emg_burst", "emg")
    for dur in (1.5, 3.0):  # body movements (accelerometer and EEG artefact)
        tt = t(dur)
        lf = np.cumsum(rng.standard_normal(tt.size)) / np.sqrt(tt.size)
        lf -= np.linspace(lf[0], lf[-1], tt.size)
        add(np.sin(np.pi * tt / dur) * lf, "movement", "move")
    max_len = max(w.size for w in waves)
    table = np.zeros((len(waves), max_len), dtype=np.float32)
    for i, w in enumerate(waves):
        table[i, : w.size] = w
    return KernelTable(
        waves=table,
        lengths=np.array([w.size for w in waves], dtype=np.int64),
        source=np.array([EVENT_SOURCES.index(m[1]) for m in meta], dtype=np.int64),
        kind=tuple(m[0] for m in meta),
        freq=np.array([m[2] for m in meta]),
    )


def _hf_noise(n: int, fs: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """White noise band-limited to 15–100 Hz (EMG-like)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    spec[(f < 15.0) | (f > 100.0)] = 0.0
    return np.fft.irfft(spec, n)


def ecg_template(n: int = 512) -> npt.NDArray[np.float64]:
    """One heartbeat (P, QRS, T) over one cycle of phase 0..1, in µV (R peak ≈ 1000 µV)."""
    ph = np.arange(n) / n

    def g(mu: float, sd: float, a: float) -> npt.NDArray[np.float64]:
        return a * np.exp(-0.5 * ((ph - mu) / sd) ** 2)

    return g(0.1, 0.025, 120) + g(0.2, 0.008, -120) + g(0.22, 0.01, 1000) + g(0.24, 0.008, -200) + g(0.45, 0.04, 250)
