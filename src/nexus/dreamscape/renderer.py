"""Audio synthesis of a session's commands at 48 kHz, block by block, into a sink.

The renderer turns the controller's :class:`~nexus.dreamscape.controller.Command` list into sound: noise
colours (white, pink, brown), textures (rain, ocean, wind, forest, soft tones, birdsong), cues (WAV files or
espeak-ng speech), CLAS clicks placed at their exact sample and the wake ramp. All generators carry their state
between blocks, so a night renders in constant memory and the result does not depend on the block size
(except for the random textures' draws). Levels are RMS in dBFS; the sink's limiter caps the peak at the
program's ``limits.max_level_db`` (and never above the facility ceiling).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import signal

from nexus.core.checks import check_number
from nexus.core.errors import ConfigError, DataFormatError
from nexus.dreamscape.check import espeak_available
from nexus.dreamscape.controller import Command
from nexus.dreamscape.schema import SILENCE, Cue, Layer, Program
from nexus.sinks.base import AUDIO_FS, Sink
from nexus.sinks.limiter import db_to_amp
from nexus.sinks.wav import read_wav

Array = npt.NDArray[np.float64]

# 1/f ("pink") approximation: a 3-pole/3-zero IIR filter of white noise, within ±0.5 dB from 10 Hz to 20 kHz
# at 44.1–48 kHz (coefficients published by J. O. Smith, "Spectral Audio Signal Processing").
_PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
_PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])


class _Noise:
    """A coloured-noise generator with carried filter state, unit RMS."""

    def __init__(self, colour: str, rng: np.random.Generator) -> None:
        self.rng = rng
        if colour == "pink":
            self.b, self.a, self.norm = _PINK_B, _PINK_A, 1.0 / 0.087
        elif colour == "brown":
            self.b, self.a, self.norm = np.array([1.0]), np.array([1.0, -0.997]), 1.0 / 12.9
        else:
            self.b, self.a, self.norm = np.array([1.0]), np.array([1.0]), 1.0
        self.zi = np.zeros(max(len(self.a), len(self.b)) - 1)

    def __call__(self, n: int) -> Array:
        w = self.rng.standard_normal(n)
        if self.zi.size:
            y, self.zi = signal.lfilter(self.b, self.a, w, zi=self.zi)
        else:
            y = w
        return np.asarray(y * self.norm)


class _Filtered:
    """Noise through a band filter with carried state."""

    def __init__(self, noise: _Noise, sos: Array) -> None:
        self.noise, self.sos = noise, sos
        self.zi = np.zeros((sos.shape[0], 2))

    def __call__(self, n: int) -> Array:
        y, self.zi = signal.sosfilt(self.sos, self.noise(n), zi=self.zi)
        return np.asarray(y)


class _Events:
    """Sparse short sounds (rain drops, bird chirps) at Poisson times, with tails carried across blocks."""

    def __init__(self, rng: np.random.Generator, fs: int, rate_hz: float, make: object) -> None:
        self.rng, self.fs, self.rate = rng, fs, rate_hz
        self.make = make  # callable(rng) -> waveform
        self.tail = np.zeros(0)

    def __call__(self, n: int) -> Array:
        out = np.zeros(n)
        k = min(self.tail.size, n)
        out[:k] += self.tail[:k]
        rest = self.tail[k:]
        count = self.rng.poisson(self.rate * n / self.fs)
        for start in np.sort(self.rng.integers(0, max(n, 1), count)):
            w = self.make(self.rng)  # type: ignore[operator]
            end = start + w.size
            out[start:min(end, n)] += w[: max(0, min(end, n) - start)]
            if end > n:
                over = w[n - start :]
                if rest.size < over.size:
                    rest = np.pad(rest, (0, over.size - rest.size))
                rest[: over.size] += over
        self.tail = rest
        return out


def _drop(fs: int) -> object:
    def make(rng: np.random.Generator) -> Array:
        n = int(fs * rng.uniform(0.004, 0.015))
        env = np.exp(-np.arange(n) / (n / 4))
        f = rng.uniform(1500, 5000)
        return np.asarray(rng.uniform(0.3, 1.0) * env * np.sin(2 * np.pi * f * np.arange(n) / fs))
    return make


def _chirp(fs: int) -> object:
    def make(rng: np.random.Generator) -> Array:
        notes = []
        for _ in range(int(rng.integers(2, 6))):
            n = int(fs * rng.uniform(0.05, 0.14))
            tt = np.arange(n) / fs
            f0, f1 = rng.uniform(2500, 4500), rng.uniform(2500, 5500)
            ph = 2 * np.pi * (f0 * tt + (f1 - f0) * tt**2 / (2 * tt[-1]))
            notes.append(np.sin(ph) * np.sin(np.pi * np.arange(n) / n) ** 2)
            notes.append(np.zeros(int(fs * rng.uniform(0.03, 0.12))))
        return np.concatenate(notes) * rng.uniform(0.4, 1.0)
    return make


class _Sound:
    """One named soundscape texture, unit-ish RMS, continuous across blocks."""

    def __init__(self, sound: str, fs: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.sound, self.fs = sound, fs
        self.n_done = 0
        if sound in ("white_noise", "pink_noise", "brown_noise"):
            self.parts = [(_Noise(sound.split("_")[0], rng), 1.0)]
        elif sound == "rain":
            hp = signal.butter(2, 400, btype="highpass", fs=fs, output="sos")
            self.parts = [(_Filtered(_Noise("pink", rng), hp), 1.6), (_Events(rng, fs, 40.0, _drop(fs)), 0.5)]
        elif sound == "ocean":
            lp = signal.butter(2, 1200, btype="lowpass", fs=fs, output="sos")
            self.parts = [(_Filtered(_Noise("pink", rng), lp), 1.6)]
        elif sound == "wind":
            bp = signal.butter(2, (150, 900), btype="bandpass", fs=fs, output="sos")
            self.parts = [(_Filtered(_Noise("pink", rng), bp), 3.0)]
        elif sound == "forest":
            bp = signal.butter(2, (200, 2000), btype="bandpass", fs=fs, output="sos")
            self.parts = [(_Filtered(_Noise("pink", rng), bp), 1.5), (_Events(rng, fs, 0.25, _chirp(fs)), 0.4)]
        elif sound == "birdsong":
            self.parts = [(_Events(rng, fs, 1.2, _chirp(fs)), 4.0)]
        elif sound == "soft_tones":
            self.parts = []
        else:  # pragma: no cover - the schema restricts names
            raise DataFormatError(f"Unknown sound '{sound}'.")
        self._phase_off = rng.uniform(0, 2 * np.pi, 8)

    def __call__(self, n: int) -> Array:
        t = (self.n_done + np.arange(n)) / self.fs
        self.n_done += n
        y = np.zeros(n)
        for gen, gain in self.parts:
            y += gain * gen(n)
        if self.sound == "ocean":  # slow swells like waves, ~10 s
            y *= 0.25 + 0.75 * (0.5 - 0.5 * np.cos(2 * np.pi * t / 10.5 + self._phase_off[0])) ** 2 * 1.6
        elif self.sound == "wind":
            y *= 0.6 + 0.4 * np.sin(2 * np.pi * t / 17.0 + self._phase_off[1]) * np.sin(2 * np.pi * t / 7.3)
        elif self.sound == "soft_tones":  # a low pentatonic pad, each tone breathing slowly
            for k, f in enumerate((110.0, 146.83, 164.81, 220.0, 261.63)):
                env = 0.5 - 0.5 * np.cos(2 * np.pi * t / (23.0 + 7 * k) + self._phase_off[k])
                y += 0.45 * env * np.sin(2 * np.pi * f * t + self._phase_off[k + 3 if k < 5 else 0])
        return y


@dataclass
class _Bed:
    kind: str  # "scene", "protect", "wake", "silence"
    t: float
    name: str = ""
    level_db: float = -90.0
    for_s: float | None = None
    from_db: float = -90.0
    to_db: float = -90.0
    over_s: float = 1.0
    soft: bool = False  # a scene before it fades out instead of stopping at once


def click_waveform(duration_s: float, level_db: float, fs: int = AUDIO_FS, seed: int = 0) -> Array:
    """A CLAS click: a pink-noise burst of ``duration_s`` with 5 ms raised-cosine ramps, peak at ``level_db``."""
    n = max(1, round(duration_s * fs))
    x = _Noise("pink", np.random.default_rng(seed))(n + 4800)[4800:]  # skip the filter start-up
    ramp = min(round(0.005 * fs), n // 2)
    env = np.ones(n)
    if ramp:
        r = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, ramp + 1) / (ramp + 1))  # non-zero at the onset sample
        env[:ramp], env[n - ramp :] = r, r[::-1]
    x = x * env
    return np.asarray(x / max(np.max(np.abs(x)), 1e-12) * db_to_amp(level_db))


def speak(text: str, fs: int = AUDIO_FS) -> Array:
    """Speak ``text`` through espeak-ng; returns mono audio at ``fs`` (raises ConfigError when absent)."""
    exe = espeak_available()
    if exe is None:
        raise ConfigError("Text cues need espeak-ng, which is not installed. Install it (e.g. 'apt install "
                          "espeak-ng') or record the cue as a WAV file.")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cue.wav"
        subprocess.run([exe, "-s", "130", "-w", str(out), text], check=True, capture_output=True, timeout=60)
        x, sr = read_wav(out)
    return _resample(x, sr, fs)


def _resample(x: Array, sr: int, fs: int) -> Array:
    if sr == fs:
        return x
    g = np.gcd(int(sr), int(fs))
    return np.asarray(signal.resample_poly(x, fs // g, sr // g))


def load_cue(cue: Cue, base_dir: Path | None = None, fs: int = AUDIO_FS) -> Array:
    """The cue's audio at ``fs``, scaled to its RMS level ``cue.level_db``."""
    if cue.text is not None:
        x = speak(cue.text, fs)
    else:
        path = Path(cue.file or "")
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        x, sr = read_wav(path)
        x = _resample(x, sr, fs)
    rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
    return x / rms * db_to_amp(cue.level_db) if rms > 0 else x


class Renderer:
    """Render one session's commands into audio.

    Parameters
    ----------
    program : Program
        The session's checked program.
    fs : int
        Audio sampling rate in Hz.
    seed : int
        Seed of the textures' random draws.
    base_dir : Path, optional
        Folder that relative cue files are resolved against.
    """

    def __init__(self, program: Program, fs: int = AUDIO_FS, seed: int = 0, base_dir: Path | None = None) -> None:
        check_number("fs", fs, ge=8000, unit="Hz")
        self.program, self.fs, self.seed, self.base_dir = program, int(fs), int(seed), base_dir
        self._sounds: dict[tuple[str, int], _Sound] = {}
        self._cue_audio: dict[tuple[str, int], Array] = {}

    def _sound(self, name: str, slot: int) -> _Sound:
        key = (name, slot)
        if key not in self._sounds:
            self._sounds[key] = _Sound(name, self.fs, self.seed * 1000 + slot * 31 + sum(map(ord, name)))
        return self._sounds[key]

    def _layer_gain(self, layer: Layer, scene_fade: float | None, since: Array) -> Array:
        env = layer.envelope
        g = np.full(since.shape, float(db_to_amp(layer.level_db)))
        if env.fade_in_s > 0:
            g *= np.clip(since / env.fade_in_s, 0.0, 1.0)
        for after in (env.fade_out_after_min, scene_fade):
            if after is not None:
                g *= np.clip(1.0 - (since - after * 60.0) / max(env.fade_out_s, 1e-3), 0.0, 1.0)
        if env.swell_db > 0:
            swell = env.swell_db * (0.5 - 0.5 * np.cos(2 * np.pi * since / env.swell_period_s))
            g *= 10.0 ** (-swell / 20.0)
        return g

    def render(self, commands: Sequence[Command], sink: Sink, duration_s: float, *, block_s: float = 10.0,
               start_s: float = 0.0) -> dict[str, float]:
        """Render ``[start_s, start_s + duration_s)`` of the session into ``sink``.

        Returns
        -------
        dict
            Seconds of audio per bed kind (``scene:<name>``, ``protect``, ``wake``, ``silence``) and counts
            of clicks and cues rendered.
        """
        check_number("duration_s", duration_s, gt=0, unit="s")
        cmds = sorted(commands, key=lambda c: c.t)
        beds = [_Bed("silence", -np.inf)]
        clicks: list[Command] = []
        cues: list[Command] = []
        for c in cmds:
            if c.kind == "scene":
                beds.append(_Bed("scene", c.t, name=c.params["name"]))
            elif c.kind == "silence":
                beds.append(_Bed("silence", c.t, for_s=c.params.get("for_s"), soft=bool(c.params.get("fade"))))
            elif c.kind == "protect":
                beds.append(_Bed("protect", c.t, name=c.params["sound"], level_db=c.params["level_db"],
                                 for_s=c.params["for_s"]))
            elif c.kind == "wake":
                beds.append(_Bed("wake", c.t, name=c.params["sound"], from_db=c.params["from_db"],
                                 to_db=c.params["to_db"], over_s=c.params["over_s"]))
            elif c.kind == "click":
                clicks.append(c)
            elif c.kind == "cue":
                cues.append(c)
        bed_t = np.array([b.t for b in beds])
        click_t = np.array([c.t for c in clicks])
        stats: dict[str, float] = {"clicks": 0.0, "cues": 0.0}
        n_total = round(duration_s * self.fs)
        step = max(1, round(block_s * self.fs))
        a0 = round(start_s * self.fs)
        for i0 in range(a0, a0 + n_total, step):
            n = min(step, a0 + n_total - i0)
            t = (i0 + np.arange(n)) / self.fs
            y = np.zeros(n)
            idx = np.searchsorted(bed_t, t, side="right") - 1
            for bi in np.unique(idx):
                bed = beds[bi]
                sel = idx == bi
                since = t[sel] - bed.t
                key = f"scene:{bed.name}" if bed.kind == "scene" else bed.kind
                stats[key] = stats.get(key, 0.0) + sel.sum() / self.fs
                y[sel] += self._bed_audio(bed, since, int(sel.sum()))
                prev = beds[bi - 1] if bi > 0 else None
                if prev is not None and prev.kind == "scene" and (bed.kind == "scene" or bed.soft):
                    fade = self._fade_out_s(prev.name)
                    tail = since < fade
                    if fade > 0 and tail.any():  # the previous scene fades out under the new bed
                        k = np.flatnonzero(sel)[tail]
                        y[k] += self._bed_audio(prev, t[k] - prev.t, k.size, slot0=50) * (1.0 - since[tail] / fade)
            t_lo, t_hi = t[0] - 1.0, t[-1] + 1.0
            for c in clicks[int(np.searchsorted(click_t, t_lo)) : int(np.searchsorted(click_t, t_hi))]:
                k = round(c.t * self.fs) - i0  # exact sample of the onset
                w = click_waveform(c.params["duration_s"], c.params["level_db"], self.fs, seed=self.seed)
                if -w.size < k < n and beds[int(np.searchsorted(bed_t, c.t, side="right") - 1)].kind == "scene":
                    lo, hi = max(k, 0), min(k + w.size, n)
                    y[lo:hi] += w[lo - k : hi - k]
                    if k >= 0:
                        stats["clicks"] += 1
            for c in cues:
                w = self._cue(c)
                k = round(c.t * self.fs) - i0
                if -w.size < k < n:
                    # cues stop with everything else: cut where a non-scene bed starts after the cue
                    later = [b.t for b in beds if b.t > c.t and b.kind != "scene"]
                    stop = round(min(later) * self.fs) - i0 if later else n
                    lo, hi = max(k, 0), min(k + w.size, n, max(stop, 0))
                    if hi > lo:
                        y[lo:hi] += w[lo - k : hi - k]
                    if k >= 0:
                        stats["cues"] += 1
            sink.write(y, now=float(t[0]))
        return stats

    def _cue(self, c: Command) -> Array:
        key = (c.params["scene"], int(c.params["index"]))
        if key not in self._cue_audio:
            cue = self.program.scenes[key[0]].cues[key[1]]
            self._cue_audio[key] = load_cue(cue, self.base_dir, self.fs)
        return self._cue_audio[key]

    def _fade_out_s(self, name: str) -> float:
        scene = self.program.scenes.get(name)
        return max((la.envelope.fade_out_s for la in scene.layers), default=0.0) if scene else 0.0

    def _bed_audio(self, bed: _Bed, since: Array, n: int, slot0: int = 0) -> Array:
        y = np.zeros(n)
        if bed.kind == "silence":
            return y
        if bed.kind == "protect":
            g = np.full(n, float(db_to_amp(bed.level_db)))
            g *= np.clip(since / 5.0, 0.0, 1.0) * (since < (bed.for_s or np.inf))
            return self._sound(bed.name, 90)(n) * g
        if bed.kind == "wake":
            db = bed.from_db + (bed.to_db - bed.from_db) * np.clip(since / bed.over_s, 0.0, 1.0)
            return self._sound(bed.name, 91)(n) * 10.0 ** (db / 20.0)
        scene = self.program.scenes.get(bed.name)
        if scene is None or bed.name == SILENCE:
            return y
        for j, layer in enumerate(scene.layers):
            y += self._sound(layer.sound, slot0 + j)(n) * self._layer_gain(layer, scene.fade_out_after_min, since)
        return y
