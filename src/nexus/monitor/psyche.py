"""Psyche detectors: heart rate, breathing, movement and chin EMG per session, distress and arousal storms.

Per block (vectorised over the lane):

* **heart beats** from the ECG: upward crossings of the absolute first difference over
  ``beat_frac`` of its recent largest value (R waves are the steepest part of an ECG whatever its
  polarity), ``refractory_s`` apart; RR intervals of 0.3-2 s are kept. The recent largest value is
  the median of the largest of each of the last ``beat_peak_windows`` windows (3): with the last
  window's alone, one spike (a sample skipped on an R wave's upstroke by a wandering amplifier clock
  doubles that step; a movement artefact) set the next window's threshold over every R wave and no
  beat was counted in it. On bench seed 16019 (``clock_jitter`` through a nightmare) the 2-s heart rate
  fell 23 bpm for two windows in the middle of the climb and the nightmare was raised after 15.0 s;
  with the median, after 7.9 s (recorded monitor calls of seeds 16001-16020 replayed offline; the other
  39 nightmares raised as before, no other episode);
* **breaths** from the respiration channel: crossings from below ``-h`` to above ``+h`` around its
  running mean (hysteresis ``h`` = 0.3 × its running standard deviation).

Per window (1 s) and session: heart rate (bpm, over the last ``hr_windows`` s) against a slow
baseline (``hr_tau_s``); breathing rate (breaths/min from the last ``breath_intervals``
breath-to-breath intervals, or the pause since the last breath when longer) against its baseline
(``resp_tau_s``, from ``resp_windows`` s on); movement (accelerometer activity ≥ ``move_mg``
milli-g, the root of the summed per-axis variances, in the last ``move_windows`` s); chin EMG
(standard deviation over its baseline, ``emg_tau_s``, learnt from windows of ordinary tone: not from
bursts of 1.5x or more, nor from windows under ``emg_lost_ratio`` x (0.1), a lost or flat channel:
dropped samples read 0. Learning from those, the baseline of bench seed 17016 fell from ~6 to 0.44 µV
over a chin-EMG electrode off and a 160-s dropout, and since the burst gate kept it from rising again,
the chin EMG read 4-33x its baseline for the rest of the night, a distress sign that never went off).

``distress``, found by either of two rules (both need the stage gate: N1, N2, N3 or R, or the stage
unknown, or W within ``wake_grace_s`` of such sleep; settled wake is left out). N3 counts: sleep
terrors arise from it with the steepest surge of all (heart rate up to twice its rate, fast breathing,
movement), and a nightmare may run on while the hypnogram passes into it (the nightmares of bench seeds 18012 and
18018, begun in N2, went on in N3 and were raised 114 and 84 s after onset, when the gate left N3 out;
with it, within 10 s; replayed offline over 312 bed-hours of recorded bench runs, one N3 arousal whose
heart rate crept on along a +20-bpm plateau was raised more, seed 17012):

* **ramp** (early): the heart rate over the last ``ramp_hr_windows`` s (one window more when they hold fewer than
  2 beats: at a heart rate under ~60 bpm they often hold 1, and the unknown rate broke the run of windows; a
  nightmare of bench seed 17011 at 53 bpm was raised 3 s later for it) is ``ramp_bpm`` or more above
  its baseline, or above the lowest of its values 3-5 windows before when that was ``ramp_floor_bpm`` or more
  under the baseline (a climb from below the baseline: 4 of 5 nightmares raised more than 10 s after onset in
  recorded bench runs began 2-5 bpm under it) and is now ``ramp_floor_min_bpm`` (0) or more over it (an
  awakening of bench seed 18003 climbed from 5 bpm under its baseline to 2 over with a tense chin and was raised),
  and still climbing steadily; in W (within the grace after sleep) it
  must be ``ramp_wake_bpm`` over the sleep baseline, and the sustained rule's surge ``surge_wake_bpm``: on waking
  the heart rate rises by itself (a natural awakening from N2 of bench seed 16016 climbed 4 to 7 bpm over 8
  windows; a wake stretch of seed 17007 held +12 bpm, faster breathing and a tense chin for 20 s), a nightmare's
  surge is 20-40 bpm — by ``ramp_rise3_bpm`` to ``ramp_rise3_max_bpm`` over
  the last 3 s and by ``ramp_rise5_bpm`` or more over the last 5 s — for ``ramp_windows`` windows in
  a row in R (or an unknown stage), ``ramp_windows_light`` in N1/N2 and ``ramp_windows_wake`` in W
  (4, 4 and 7: in 72 bed-hours of synthetic nights, climbs outside distress lasted 3 windows in
  N1/N2 about twice per 24 bed-hours and never 4, each further window cutting them ~20-fold; in W,
  within the grace after sleep, 4 windows once per 24 bed-hours. REM once asked only 3, nightmares
  being REM events, but a short REM arousal's 2-s heart rate climbed for 3 windows (+8, +12, +13 bpm)
  before it fell (seed 9302, 8 h): an arousal's heart-rate response peaks within a few beats of its
  onset (Sforza et al. 2000), so a climb that outlasts it by a window is a nightmare's, at the
  cost of ~1 s of latency in REM), with one more sign at that
  moment: breathing over its last
  breath-to-breath interval ``ramp_resp_rise`` breaths/min faster than its baseline, chin EMG
  ``emg_ratio`` × its baseline, or movement in the last ``move_windows`` s. A nightmare's surge
  builds over many seconds (1-3 bpm/s: 20-40 bpm in 10-20 s); an arousal's heart rate jumps
  within a second or two (≈ 5 bpm/s) and then levels off, so it fails the 3-s rise band on the way
  up (more than ``ramp_rise3_max_bpm``, 11 bpm in 3 s) and on its plateau (less than
  ``ramp_rise3_bpm``, 2.5 bpm in 3 s: a surge that is still building keeps rising). Nor may the
  short-window surge fall more than ``ramp_fall_bpm`` below either of the two windows before it:
  an arousal's heart-rate response peaks within a few beats of its onset and falls back within
  seconds (Sforza et al. 2000, Clin Neurophysiol 111:1611; Azarbarzin et al. 2014, Sleep 37:645),
  while a nightmare's surge climbs on (a REM arousal of +10 bpm in 2 s that had begun to fall was
  confirmed on its third window before this check). The tolerance is 0.5 bpm, not 2: an N1 arousal of
  seed 11104 of the bench (2-s surge +4.6, +8.7, +12.6, +13.4, then +12.5 bpm with a movement) was
  confirmed on that fourth window, 0.9 bpm under its peak, its 3-s rise (3.8) still inside the band;
  at 0.5 bpm none of the 12 nightmares of seeds 11101-11106 was raised later (replayed offline).
  ``ramp_bpm`` is 4, not 5: a nightmare's heart rate may climb only ~1 bpm/s in its first seconds (the
  2-s rate of an episode of bench seed 11303: +2.9, +4.1, +4.8, +7.2 bpm), and at 5 bpm its four
  windows began one later (raised 11.0 s after onset, 9.0 s at 4). Replayed offline over seeds
  11101-11106, 11301-11303 and the clean 12001-12003, no window outside distress was raised more.
* **sustained**: the heart rate (over ``hr_windows`` s) is ``surge_bpm`` or more above its baseline and
  breathing ``resp_rise`` breaths/min faster than its baseline for ``sustain_windows`` windows in a row (20 s:
  an arousal has all of these too, but for 3-15 s; this rule catches the surges the ramp rule missed, late),
  with the chin EMG ``emg_ratio`` × its baseline or movement in the last ``move_windows`` s at least once in
  the run. Not in every window: a nightmare of bench seed 18006 moved in its first seconds and then lay tense
  (chin EMG 1.6-1.9x) with its heart rate 25 bpm and its breathing 7/min up for a minute; each time the
  movement left the 10-s ring the run broke, and it was raised 57 s after onset (31 s with the sign once in
  the run). A run that begins within ``blind_start_windows`` windows of the heart rate coming back after
  ``blind_windows`` or more windows without one (every channel dropped, an ECG lead off) needs only
  ``sustain_windows_blind`` windows (10): the surge climbed unseen, so the ramp rule cannot see it build, and
  an arousal caught there has at most the tail of its 3-15 s left, its heart rate falling back within seconds
  (Sforza et al. 2000) while a nightmare's stays up (seeds 10302 and 10303 of the bench: nightmares that began
  24 s and 66 s into dropouts of every channel, seen again 10 and 13 s after their onsets already 18-35 bpm
  up, were raised 33.6 and 35.4 s after onset by the 20-window run). That shortened run asks for the body sign
  in the window that confirms it (its 10th or any later one), not once in the run: an arousal seen as the
  signals come back has its chin EMG fall back seconds before its heart rate over 6 s does. Without a
  respiration channel the surge must reach ``surge_no_resp_bpm`` (with the same body sign); without an ECG the
  breathing rise (``resp_rise_no_ecg``) with it stands in for the surge (and there is no ramp rule).

The episode's onset is the start of the run of windows that confirmed it. Once confirmed, a
window stays distressed while the heart rate (over ``hr_windows`` s) is ``hold_bpm`` or more above
its baseline: a nightmare is one episode (one alarm) while the heart races, not one per rise. The
EEG is not used, so distress is found during a technical fault on the EEG.

``arousal_storm``: ``storm_count`` or more arousals in ``storm_window_s`` — arousals handed in by
the caller (e.g. the event detectors) plus the monitor's own. An own arousal is a window, outside
distress, with accelerometer activity of ``arousal_move_mg`` or more within the last
``arousal_move_windows`` s and an abrupt heart-rate rise in the same windows: the short-window heart
rate ``arousal_rise_bpm`` or more above its lowest value ``arousal_move_windows`` to
``arousal_pre_windows`` - 1 windows before (the pre-arousal level) and either ``arousal_hr_bpm`` above
the slow baseline, or ``arousal_hr_weak_bpm`` above it with a chin-EMG burst (``arousal_emg_ratio`` ×
its baseline) or an EEG shift to faster frequencies (the mean absolute first difference over the
standard deviation, a measure of the signal's mean frequency, ``arousal_eeg_ratio`` × its baseline on
some EEG channel: the AASM's arousal is an abrupt shift of EEG frequency) in the same windows, so that
one bad channel (a chin EMG clipping, an EEG electrode off) does not lose it. An arousal's heart rate
rises from the beats before it within a few beats (Sforza et al. 2000, Clin Neurophysiol 111:1611;
Azarbarzin et al. 2014, Sleep 37:645): the rise, not the level over a baseline set in sleep, is its
sign. The level alone counted every
movement of settled wake (heart rate ~8 bpm over its sleep baseline) as an arousal (36 arousals
found that were none, in 24 bed-hours of synthetic nights; 9 with the rise), and lost arousals whose
heart rate rose only 7-8 bpm; such a smaller rise counts when the chin EMG bursts with it (the AASM's
arousal in REM needs a chin-EMG rise). With both corroborating signs at once, each a jump of
``arousal_jump`` × its lowest value 3-5 windows before (a burst, not the tonic chin EMG and fast EEG of
wake), a still smaller rise counts: ``arousal_both_rise_bpm`` over the pre-arousal level and
``arousal_both_hr_bpm`` over the baseline (a 3.1-s REM arousal of seed 9903 of the bench, with a
movement, a chin-EMG burst (8.2x) and an EEG shift (7.2x), put the 2-s heart rate only 4 bpm over its
baseline (6 over the level before it) and was lost: its
storm came 29.5 s late). A new arousal counts only ``arousal_gap_s`` after the end of
the arousal before it (10 s: the AASM scoring rules ask for at least 10 s of stable sleep before an
arousal; the former 15 s merged arousals of a storm that came 12-16 s apart, and each lost one put the
storm off by its next arousal, ~30 s). An arousal ends where its short-window heart rate falls back
under ``arousal_end_bpm`` over the level before it (at most ``arousal_hold_s`` after its last burst
window), not at its last burst window: the movement and EMG burst come in an arousal's first seconds
and its heart rate stays up for the rest of it (3-14 s), so the gap measured from the burst counted a
second arousal 6-9 s after the end of a long one, which the AASM scores as the same (seed 9705 of the
bench: 4 such, the storm raised 62 s before its 12th arousal).

Distress is one long arousal-like surge (heart rate, movement, EMG, a faster EEG all through it): an
arousal that begins within a distress episode, or less than ``arousal_gap_s`` after its end (no
10 s of sleep before it), is not observable as an arousal of its own and is not counted (nor are the
caller's arousals then); when an episode is confirmed, the arousals counted in the windows of the
run that confirmed it (where the episode begins) are taken back: a nightmare's first movement on its
climbing heart rate is an arousal's burst before the distress is known. The bench's truth
(``bench/glitches.py``) counts arousals the same way. One such burst with movement across every EEG channel is also what
tells an arousal from electrode faults (see :mod:`nexus.monitor.live`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nexus.core.stages import stage_in
from nexus.monitor._kernels import ecg_beats, resp_breaths
from nexus.monitor.features import FloatArray, IntArray, WindowFeatures

SLEEP_FOR_DISTRESS = (1, 2, 3, 4)  # N1, N2, N3, R


@dataclass(frozen=True)
class PsycheParams:
    """Thresholds of the psyche detectors; see the module docstring (bpm, breaths/min, milli-g, s)."""

    beat_frac: float = 0.4
    beat_peak_windows: int = 3
    refractory_s: float = 0.3
    hr_windows: int = 6
    hr_tau_s: float = 300.0
    hr_tau_surge_s: float = 1800.0
    surge_bpm: float = 10.0
    surge_wake_bpm: float = 20.0
    resp_windows: int = 30
    breath_intervals: int = 3
    resp_tau_s: float = 300.0
    resp_rise: float = 4.0
    resp_rise_no_ecg: float = 6.0
    surge_no_resp_bpm: float = 15.0
    move_mg: float = 20.0
    move_windows: int = 10
    emg_ratio: float = 2.0
    emg_tau_s: float = 120.0
    emg_lost_ratio: float = 0.1
    arousal_hr_bpm: float = 8.0
    arousal_hr_weak_bpm: float = 5.0
    arousal_rise_bpm: float = 5.0
    arousal_pre_windows: int = 6
    arousal_emg_ratio: float = 2.0
    arousal_eeg_ratio: float = 2.0
    arousal_jump: float = 1.5
    arousal_both_rise_bpm: float = 3.0
    arousal_both_hr_bpm: float = 3.0
    eeg_tau_s: float = 120.0
    arousal_move_mg: float = 10.0
    arousal_move_windows: int = 3
    arousal_gap_s: float = 10.0
    arousal_end_bpm: float = 5.0
    arousal_hold_s: float = 15.0
    storm_count: int = 12
    storm_window_s: int = 600
    wake_grace_s: float = 120.0
    sustain_windows: int = 20
    blind_windows: int = 5
    blind_start_windows: int = 3
    sustain_windows_blind: int = 10
    hold_bpm: float = 8.0
    ramp_hr_windows: int = 2
    ramp_bpm: float = 4.0
    ramp_rise3_bpm: float = 2.3
    ramp_rise3_max_bpm: float = 11.0
    ramp_rise5_bpm: float = 3.0
    ramp_fall_bpm: float = 0.5
    ramp_windows: int = 4
    ramp_windows_light: int = 4
    ramp_windows_wake: int = 7
    ramp_wake_bpm: float = 10.0
    ramp_floor_bpm: float = 1.0
    ramp_floor_min_bpm: float = 0.0
    ramp_resp_rise: float = 1.0


class PsycheState:
    """Carried state of the psyche detectors for a lane (see the module docstring).

    Parameters
    ----------
    capacity : int
        Lane size.
    fs : float
        Sampling rate in Hz.
    ecg, resp, emg : int
        Channel index of the ECG, the respiration and the chin EMG (-1 when absent).
    acc : ndarray of int
        Channel indices of the accelerometer axes (empty when absent).
    params : PsycheParams
        Thresholds.
    eeg : ndarray of int
        Channel indices of the EEG (the arousals' frequency shift; empty: not used).
    """

    def __init__(
        self,
        capacity: int,
        fs: float,
        ecg: int,
        resp: int,
        emg: int,
        acc: IntArray,
        params: PsycheParams,
        eeg: IntArray | None = None,
    ) -> None:
        S, p = capacity, params
        self.p, self.fs = p, float(fs)
        self.ecg, self.resp, self.emg, self.acc = ecg, resp, emg, np.asarray(acc, dtype=np.int64)
        self.eeg = np.asarray(eeg if eeg is not None else (), dtype=np.int64)
        # beats
        self.last = np.zeros(S)
        self.has_last = np.zeros(S, dtype=bool)
        self.above = np.zeros(S, dtype=bool)
        self.thr = np.full(S, np.inf)
        self.peak = np.zeros(S)  # largest |diff| of the ECG in the current window
        self.ring_peak = np.full((S, p.beat_peak_windows), np.nan)  # the last windows' largest |diff| (NaN: flat)
        self.last_cross = np.full(S, -(10**12), dtype=np.int64)
        self.last_beat = np.full(S, -(10**12), dtype=np.int64)
        self.beats = np.zeros(S)
        self.rr_sum = np.zeros(S)
        self.samples = np.zeros(S, dtype=np.int64)
        # breaths
        self.r_base = np.full(S, np.nan)
        self.r_amp = np.zeros(S)
        self.r_sign = np.zeros(S, dtype=np.int8)
        self.last_breath = np.full(S, np.nan)  # session sample of the last breath
        self.ring_ibi = np.full((S, p.breath_intervals), np.nan)  # last breath-to-breath intervals, s
        self.n_breaths = np.zeros(S, dtype=np.int64)
        # per-window rings and baselines
        self.k = np.zeros(S, dtype=np.int64)  # windows since reset
        self.ring_beats = np.zeros((S, p.hr_windows))
        self.ring_rr = np.zeros((S, p.hr_windows))
        self.ring_move = np.zeros((S, p.move_windows), dtype=bool)
        self.ring_arousal = np.zeros((S, p.storm_window_s))
        self.arousal_total = np.zeros(S)
        self.hr_base = np.full(S, np.nan)
        self.rr_base = np.full(S, np.nan)
        self.emg_base = np.full(S, np.nan)
        self.last_burst = np.full(S, -np.inf)  # end of the last window with an arousal burst
        self.last_aroused = np.full(S, -np.inf)  # end of the last window an arousal or distress went on
        self.ar_open = np.zeros(S, dtype=bool)  # an arousal goes on (its heart rate still up)
        self.ar_pre = np.full(S, np.nan)  # the pre-arousal short-window surge of the arousal going on
        self.pending_arousals = np.zeros(S)
        # distress rules: recent short-window surges (newest last) and runs of windows meeting each rule
        self.ring_surge = np.full((S, max(6, p.arousal_pre_windows)), np.nan)
        self.ring_ramp = np.full((S, 6), np.nan)  # the ramp rule's short-window surges, newest last
        self.ring_act = np.zeros((S, p.arousal_move_windows))  # accelerometer activity, newest last
        n_sign = max(p.arousal_move_windows, p.arousal_pre_windows)
        self.ring_emg = np.zeros((S, n_sign))  # chin-EMG ratio to its baseline, newest last
        self.ring_eeg = np.zeros((S, n_sign))  # largest EEG frequency ratio to its baseline
        self.eeg_base = np.full((S, self.eeg.size), np.nan)  # mean |first difference| / SD per EEG channel
        self.run_ramp = np.zeros(S, dtype=np.int64)
        self.run_sustain = np.zeros(S, dtype=np.int64)
        self.blind = np.zeros(S, dtype=np.int64)  # windows in a row without a heart rate (over hr_windows s)
        self.since_blind = np.full(S, 10**9, dtype=np.int64)  # windows since a blind stretch ended
        self.run_blind = np.zeros(S, dtype=bool)  # the sustained run began just after a blind stretch
        self.sign_seen = np.zeros(S, dtype=bool)  # chin EMG or movement seen in the sustained run
        self.in_distress = np.zeros(S, dtype=bool)  # the last window's verdict (an episode holds while the surge does)
        # stage
        self.stage = np.full(S, -2, dtype=np.int64)
        self.last_sleep_stage = np.full(S, -2, dtype=np.int64)
        self.last_sleep_t = np.full(S, -np.inf)

    def reset(self, slots: IntArray) -> None:
        """Forget everything about ``slots``."""
        for name, value in (
            ("last", 0.0),
            ("has_last", False),
            ("above", False),
            ("thr", np.inf),
            ("peak", 0.0),
            ("ring_peak", np.nan),
            ("last_cross", -(10**12)),
            ("last_beat", -(10**12)),
            ("beats", 0.0),
            ("rr_sum", 0.0),
            ("samples", 0),
            ("r_base", np.nan),
            ("r_amp", 0.0),
            ("r_sign", 0),
            ("last_breath", np.nan),
            ("ring_ibi", np.nan),
            ("n_breaths", 0),
            ("k", 0),
            ("ring_beats", 0.0),
            ("ring_rr", 0.0),
            ("ring_move", False),
            ("ring_arousal", 0.0),
            ("arousal_total", 0.0),
            ("hr_base", np.nan),
            ("rr_base", np.nan),
            ("emg_base", np.nan),
            ("last_burst", -np.inf),
            ("last_aroused", -np.inf),
            ("ar_open", False),
            ("ar_pre", np.nan),
            ("pending_arousals", 0.0),
            ("ring_surge", np.nan),
            ("ring_ramp", np.nan),
            ("ring_act", 0.0),
            ("ring_emg", 0.0),
            ("ring_eeg", 0.0),
            ("eeg_base", np.nan),
            ("run_ramp", 0),
            ("run_sustain", 0),
            ("blind", 0),
            ("since_blind", 10**9),
            ("run_blind", False),
            ("sign_seen", False),
            ("in_distress", False),
            ("stage", -2),
            ("last_sleep_stage", -2),
            ("last_sleep_t", -np.inf),
        ):
            getattr(self, name)[slots] = value

    # ------------------------------------------------------------------ per block
    def set_stage(self, rows: IntArray, stage: IntArray, t: FloatArray) -> None:
        """The current stage of ``rows`` (YASA codes; -2 unknown) at session times ``t``."""
        self.stage[rows] = stage
        sleep = stage_in(stage, (1, 2, 3, 4))
        self.last_sleep_stage[rows] = np.where(sleep, stage, self.last_sleep_stage[rows])
        self.last_sleep_t[rows] = np.where(sleep, t, self.last_sleep_t[rows])

    def add_block(self, x: FloatArray, rows: IntArray) -> None:
        """Find beats and breaths in block ``x`` (rows, channels, samples), non-finite samples already 0."""
        n = x.shape[-1]
        if self.ecg >= 0:
            self._beats(x, rows)
        if self.resp >= 0:  # breathing is slow: about 25 samples per second are plenty
            dec = max(int(self.fs // 25), 1)
            self._breaths(x, rows, dec)
        self.samples[rows] += n

    def _beats(self, x: FloatArray, rows: IntArray) -> None:
        # one compiled pass per row (nexus.monitor._kernels.ecg_beats; its NumPy form is in the tests)
        ecg_beats(np.ascontiguousarray(x), self.ecg, rows, round(self.p.refractory_s * self.fs), self.fs,
                  self.samples, self.last, self.has_last, self.above, self.thr, self.peak, self.last_cross,
                  self.last_beat, self.beats, self.rr_sum)

    def _breaths(self, x: FloatArray, rows: IntArray, dec: int) -> None:
        base = self.r_base[rows]
        nan = np.isnan(base)
        if nan.any():  # a slot's first block: its own mean
            base = np.where(nan, x[:, self.resp, ::dec].mean(axis=1), base)
        # one compiled pass per row (nexus.monitor._kernels.resp_breaths; its NumPy form is in the tests)
        resp_breaths(np.ascontiguousarray(x), self.resp, dec, rows, base, self.fs, self.samples, self.r_amp,
                     self.r_sign, self.last_breath, self.ring_ibi, self.n_breaths)

    # ------------------------------------------------------------------ per window
    def window(self, f: WindowFeatures) -> dict[str, Any]:
        """Close the window of ``f.rows``: update rings and baselines, return the psyche verdicts.

        Returns a dict of arrays over the rows: ``distress`` and ``storm`` (bool), and the values
        behind them (``hr``, ``hr_base``, ``surge``, ``resp``, ``resp_base``, ``emg_ratio``,
        ``move_s``, ``arousals``, ``stage``; ``surge_short``, ``rise3``, ``rise5`` of the ramp rule,
        ``ramp`` whether it confirmed, ``run`` the windows in a row behind the verdict).
        """
        p, rows = self.p, f.rows
        R = rows.size
        pos = self.k[rows]
        # heart rate
        j = pos % p.hr_windows
        self.ring_beats[rows, j] = self.beats[rows]
        self.ring_rr[rows, j] = self.rr_sum[rows]
        nb, rr = self.ring_beats[rows].sum(axis=1), self.ring_rr[rows].sum(axis=1)
        hr = np.where((nb >= 3) & (rr > 0), 60.0 * nb / np.maximum(rr, 1e-9), np.nan)
        # the short-window heart rate of the ramp rule (the newest ``ramp_hr_windows`` windows)
        recent = (pos[:, None] - np.arange(p.ramp_hr_windows)[None, :]) % p.hr_windows
        nb_s = np.take_along_axis(self.ring_beats[rows], recent, axis=1).sum(axis=1)
        rr_s = np.take_along_axis(self.ring_rr[rows], recent, axis=1).sum(axis=1)
        hr_s = np.where((nb_s >= 2) & (rr_s > 0), 60.0 * nb_s / np.maximum(rr_s, 1e-9), np.nan)
        # the ramp rule's: with fewer than 2 beats in them (a heart rate under ~60 bpm often has 1), one window more,
        # not an unknown rate, whose NaN broke its run of windows (see the module docstring)
        older = (pos - p.ramp_hr_windows) % p.hr_windows
        few = nb_s < 2
        nb_r = np.where(few, nb_s + self.ring_beats[rows, older], nb_s)
        rr_r = np.where(few, rr_s + self.ring_rr[rows, older], rr_s)
        hr_r = np.where((nb_r >= 2) & (rr_r > 0), 60.0 * nb_r / np.maximum(rr_r, 1e-9), np.nan)
        # the next window's beat threshold: beat_frac of the median of the last windows' largest |diff| (one
        # window's alone let one spike blind the detector for the next window, see the module docstring)
        pk = self.ring_peak[rows]
        pk[:, :-1] = pk[:, 1:]
        pk[:, -1] = np.where(self.peak[rows] > 0, self.peak[rows], np.nan)
        self.ring_peak[rows] = pk
        srt = np.sort(pk, axis=1)  # NaN (a flat window) last; the median of the known ones (np.nanmedian: 4x slower)
        k = np.isfinite(srt).sum(axis=1)
        lo = np.take_along_axis(srt, np.maximum((k - 1) // 2, 0)[:, None], axis=1)[:, 0]
        hi = np.take_along_axis(srt, (k // 2)[:, None], axis=1)[:, 0]
        ref = 0.5 * (lo + hi)
        self.thr[rows] = np.where(self.peak[rows] > 0, p.beat_frac * ref, np.inf)
        self.peak[rows] = 0.0
        self.beats[rows] = 0.0
        self.rr_sum[rows] = 0.0
        base = self.hr_base[rows]
        base = np.where(np.isnan(base), hr, base)
        surge = hr - base
        tau = np.where(surge >= p.surge_bpm, p.hr_tau_surge_s, p.hr_tau_s)  # pragma: no mutate (> alike: float rates)
        upd = np.isfinite(hr)
        self.hr_base[rows] = np.where(upd, base + (hr - base) / tau, base)
        hr_ok = np.isfinite(surge) & (pos >= p.hr_windows)
        # breathing
        if self.resp >= 0:
            m, sd = f.mean[:, self.resp], f.std[:, self.resp]
            rb = self.r_base[rows]
            self.r_base[rows] = np.where(np.isnan(rb), m, rb + (m - rb) / 10.0)
            self.r_amp[rows] = np.where(self.r_amp[rows] == 0, sd, self.r_amp[rows] + (sd - self.r_amp[rows]) / 30.0)
            ibi = self.ring_ibi[rows]
            ok = np.isfinite(ibi)
            mean_ibi = np.where(ok.sum(axis=1) >= 2, np.nansum(ibi, axis=1) / np.maximum(ok.sum(axis=1), 1), np.nan)
            # a pause counts: the interval in progress is at least the time since the last breath
            since = (self.samples[rows] - self.last_breath[rows]) / self.fs
            # the pause since the last breath bounds the rate from above: alone (no interval known) it tells only of a
            # pause longer than any interval kept (20 s), not of fast breathing a moment after a breath
            since = np.where(np.isfinite(since), since, 0.0)
            mean_ibi = np.where(np.isnan(mean_ibi), np.where(since > 20.0, since, np.nan), np.fmax(mean_ibi, since))
            resp = 60.0 / np.where(mean_ibi > 0, mean_ibi, np.nan)
            resp_ok = np.isfinite(resp) & (pos >= p.resp_windows)
            rbase = self.rr_base[rows]
            rbase = np.where(np.isnan(rbase) & resp_ok, resp, rbase)
            self.rr_base[rows] = np.where(resp_ok, rbase + (resp - rbase) / p.resp_tau_s, rbase)
            rise = np.where(resp_ok, resp - rbase, 0.0)
            # the newest breath-to-breath interval alone (or the pause since, when longer): the ramp rule's
            newest = np.take_along_axis(ibi, ((self.n_breaths[rows] - 1) % p.breath_intervals)[:, None], axis=1)[:, 0]
            last_ibi = np.where(np.isnan(newest), np.where(since > 20.0, since, np.nan), np.fmax(newest, since))
            rise_last = np.where(resp_ok & (last_ibi > 0), 60.0 / np.where(last_ibi > 0, last_ibi, 1.0) - rbase, 0.0)
        else:
            resp = np.full(R, np.nan)
            rise = np.zeros(R)
            rbase = resp
            rise_last = np.zeros(R)
        rise = np.nan_to_num(rise)
        rise_last = np.nan_to_num(rise_last)
        # movement
        if self.acc.size:
            act = np.sqrt((f.std[:, self.acc] ** 2).sum(axis=1))
            move = act >= p.move_mg
        else:
            act = np.zeros(R)
            move = np.zeros(R, dtype=bool)
        self.ring_move[rows, pos % p.move_windows] = move
        move_s = self.ring_move[rows].sum(axis=1)
        # chin EMG
        if self.emg >= 0:
            sd = f.std[:, self.emg]
            eb = self.emg_base[rows]
            eb = np.where(np.isnan(eb) | (eb <= 0), sd, eb)
            ratio = sd / np.maximum(eb, 1e-6)
            # the baseline learns from windows of ordinary tone: not from bursts (1.5x) nor from a lost or flat
            # channel (under emg_lost_ratio x: dropped samples read 0), see the module docstring
            learn = (ratio < 1.5) & (ratio >= p.emg_lost_ratio)
            self.emg_base[rows] = np.where(learn, eb + (sd - eb) / p.emg_tau_s, eb)
        else:
            ratio = np.ones(R)
        # EEG frequency: mean |first difference| over SD, against its baseline (a flat or lost channel: no sign)
        if self.eeg.size:
            sd_e = f.std[:, self.eeg]
            q = np.where(sd_e > 1e-3, f.meandiff[:, self.eeg] / np.maximum(sd_e, 1e-3), np.nan)
            qb = self.eeg_base[rows]
            qb = np.where(np.isnan(qb), q, qb)
            with np.errstate(invalid="ignore"):
                q_ratio = q / qb
                self.eeg_base[rows] = np.where(q_ratio < 1.5, qb + (q - qb) / p.eeg_tau_s, qb)
            eeg_shift = np.fmax.reduce(np.nan_to_num(q_ratio, nan=0.0), axis=1)
        else:
            eeg_shift = np.zeros(R)
        # stage gate
        st = self.stage[rows]
        recent = (f.t1 - self.last_sleep_t[rows]) <= p.wake_grace_s
        stage_ok = (
            (st < 0)
            | stage_in(st, SLEEP_FOR_DISTRESS)
            | ((st == 0) & recent & stage_in(self.last_sleep_stage[rows], SLEEP_FOR_DISTRESS))
        )
        if self.ecg >= 0 and self.resp >= 0:
            sustained = (
                stage_ok
                & hr_ok
                & (surge >= np.where(st == 0, p.surge_wake_bpm, p.surge_bpm))
                & (rise >= p.resp_rise)
            )
        elif self.ecg >= 0:
            sustained = stage_ok & hr_ok & (surge >= p.surge_no_resp_bpm)
        else:
            sustained = stage_ok & (rise >= p.resp_rise_no_ecg)
        run_s = np.where(sustained, self.run_sustain[rows] + 1, 0)
        self.run_sustain[rows] = run_s
        # a heart rate back after a blind stretch (no beats: a dropout, an ECG lead off) whose climb was not seen
        known = np.isfinite(hr)
        was_blind = self.blind[rows] >= p.blind_windows
        since = np.where(known, np.where(was_blind, 0, self.since_blind[rows] + 1), self.since_blind[rows])
        self.since_blind[rows] = since
        self.blind[rows] = np.where(known, 0, self.blind[rows] + 1)
        run_blind = np.where(run_s == 1, since <= p.blind_start_windows, self.run_blind[rows] & (run_s > 0))
        self.run_blind[rows] = run_blind
        # its body sign (chin EMG or movement) once in the run, not in every window; in the confirming window of a run
        # just after a blind stretch (its shortened run is the one an arousal's tail could fill), see the docstring
        body = (ratio >= p.emg_ratio) | (move_s >= 1)
        seen = (run_s > 0) & (body | ((run_s > 1) & self.sign_seen[rows] & ~run_blind))
        self.sign_seen[rows] = seen
        need_s = np.where(run_blind, p.sustain_windows_blind, p.sustain_windows)
        # the ramp rule: a surge that keeps building (see the module docstring)
        s_ramp = hr_r - base
        rr_ = self.ring_ramp[rows]
        rr_[:, :-1] = rr_[:, 1:]
        rr_[:, -1] = s_ramp
        self.ring_ramp[rows] = rr_
        rise3, rise5 = s_ramp - rr_[:, -4], s_ramp - rr_[:, -6]
        # the arousals' short-window surge (unknown with fewer than 2 beats: a long RR interval, a dropped beat, is
        # no pre-arousal level)
        s_short = hr_s - base
        ring = self.ring_surge[rows]
        ring[:, :-1] = ring[:, 1:]
        ring[:, -1] = s_short
        self.ring_surge[rows] = ring
        with np.errstate(invalid="ignore"):
            # fallen below either of the two windows before (NaN: not known, not fallen)
            fallen = s_ramp < np.fmax(rr_[:, -2], rr_[:, -3]) - p.ramp_fall_bpm
            # the level: over the baseline, or over the lowest of 3-5 windows before when that was ramp_floor_bpm or
            # more under it (a climb from below the baseline); in W, ramp_wake_bpm over the sleep baseline (an
            # awakening's own rise is less)
            floor = np.fmin.reduce(rr_[:, -6:-3], axis=1)
            floor = np.where(floor < -p.ramp_floor_bpm, floor, 0.0)  # NaN: not known, the baseline
            level = np.where(
                st == 0, s_ramp >= p.ramp_wake_bpm, (s_ramp - floor >= p.ramp_bpm) & (s_ramp >= p.ramp_floor_min_bpm)
            )
            ramping = (
                stage_ok
                & hr_ok
                & level
                & (rise3 >= p.ramp_rise3_bpm)
                & (rise3 <= p.ramp_rise3_max_bpm)
                & (rise5 >= p.ramp_rise5_bpm)
                & ~fallen
            )
        run_r = np.where(ramping, self.run_ramp[rows] + 1, 0)
        self.run_ramp[rows] = run_r
        sign = (rise_last >= p.ramp_resp_rise) | (ratio >= p.emg_ratio) | (move_s >= 1)
        need = np.where((st < 0) | (st == 4), p.ramp_windows,
                        np.where(st == 0, p.ramp_windows_wake, p.ramp_windows_light))
        ramp = (self.ecg >= 0) & (run_r >= need) & sign
        confirmed = ramp | ((run_s >= need_s) & seen)
        # an episode goes on while the heart rate stays up: one episode (one alarm) per nightmare, not one per surge
        prev_distress = self.in_distress[rows]
        with np.errstate(invalid="ignore"):
            held = prev_distress & (surge >= p.hold_bpm)
        distress = confirmed | held
        self.in_distress[rows] = distress
        run = np.where(ramp, run_r, run_s)
        # arousals: own (movement with an abrupt heart-rate rise, see the module docstring; at most one per
        # ``arousal_gap_s``) plus the caller's
        k = p.arousal_move_windows
        ra = self.ring_act[rows]
        ra[:, :-1] = ra[:, 1:]
        ra[:, -1] = act
        self.ring_act[rows] = ra
        re = self.ring_emg[rows]
        re[:, :-1] = re[:, 1:]
        re[:, -1] = ratio
        self.ring_emg[rows] = re
        rq = self.ring_eeg[rows]
        rq[:, :-1] = rq[:, 1:]
        rq[:, -1] = eeg_shift
        self.ring_eeg[rows] = rq
        with np.errstate(all="ignore"):
            hr_k = np.nan_to_num(ring[:, -k:], nan=-np.inf).max(axis=1)  # short-window surge, last k windows
            pre = np.fmin.reduce(ring[:, -p.arousal_pre_windows : -k], axis=1)  # NaN: not known, no rise asked
            abrupt = ~(hr_k - pre < p.arousal_rise_bpm)
        e_k, q_k = re[:, -k:].max(axis=1), rq[:, -k:].max(axis=1)
        other = (e_k >= p.arousal_emg_ratio) | (q_k >= p.arousal_eeg_ratio)
        hr_up = (hr_k >= p.arousal_hr_bpm) | ((hr_k >= p.arousal_hr_weak_bpm) & other)
        # both corroborating signs, each a jump from the windows before (not the tonic EMG and fast EEG of wake)
        pre_w = p.arousal_pre_windows
        both = ((e_k >= p.arousal_emg_ratio) & (e_k >= p.arousal_jump * re[:, -pre_w:-k].min(axis=1))
                & (q_k >= p.arousal_eeg_ratio) & (q_k >= p.arousal_jump * rq[:, -pre_w:-k].min(axis=1)))
        with np.errstate(invalid="ignore"):
            small = both & (hr_k >= p.arousal_both_hr_bpm) & ~(hr_k - pre < p.arousal_both_rise_bpm)
        burst = (ra.max(axis=1) >= p.arousal_move_mg) & ((abrupt & hr_up) | small)
        # an arousal goes on after its burst while its short-window heart rate stays arousal_end_bpm over the level
        # before it (an unknown rate does not end it), for at most arousal_hold_s after its last burst window
        was_open = self.ar_open[rows]
        ar_pre = np.where(burst & ~was_open, pre, self.ar_pre[rows])
        with np.errstate(invalid="ignore"):
            still = ~(s_short < ar_pre + p.arousal_end_bpm)
        going = burst | (was_open & still & ((f.t1 - self.last_burst[rows]) <= p.arousal_hold_s))
        # a new arousal: a burst arousal_gap_s after the end of the arousal or distress before it, outside distress
        own = burst & ((f.t1 - self.last_aroused[rows]) > p.arousal_gap_s) & ~distress
        self.ar_open[rows], self.ar_pre[rows] = going, ar_pre
        self.last_burst[rows] = np.where(burst, f.t1, self.last_burst[rows])
        self.last_aroused[rows] = np.where(going | distress, f.t1, self.last_aroused[rows])
        ext = self.pending_arousals[rows]
        self.pending_arousals[rows] = 0.0
        new = np.where(distress, 0.0, own.astype(float) + ext)
        js = pos % p.storm_window_s
        self.arousal_total[rows] += new - self.ring_arousal[rows, js]
        self.ring_arousal[rows, js] = new
        # a distress episode just confirmed began where its run began: arousals counted since then were part of it
        began = np.flatnonzero(confirmed & ~prev_distress)
        for i in began:
            back = (pos[i] - np.arange(int(run[i]))) % p.storm_window_s
            self.arousal_total[rows[i]] -= self.ring_arousal[rows[i], back].sum()
            self.ring_arousal[rows[i], back] = 0.0
        storm = self.arousal_total[rows] >= p.storm_count
        self.k[rows] += 1
        return {
            "distress": distress,
            "storm": storm,
            "hr": hr,
            "hr_base": base,
            "surge": surge,
            "resp": resp,
            "resp_base": rbase,
            "resp_rise": rise,
            "emg_ratio": ratio,
            "move_s": move_s,
            "activity_mg": act,
            "arousals": self.arousal_total[rows].copy(),
            "stage": st,
            "movement": move,
            "burst": burst,
            "eeg_shift": eeg_shift,
            "surge_short": s_ramp,
            "rise3": rise3,
            "rise5": rise5,
            "resp_rise_last": rise_last,
            "ramp": ramp,
            "run": run,
        }

    def add_arousals(self, rows: IntArray, counts: FloatArray) -> None:
        """Arousals found by the caller in ``rows`` since the last step (counted at the next window)."""
        self.pending_arousals[rows] += counts


def distress_evidence(v: dict[str, Any], i: int, p: PsycheParams) -> dict[str, Any]:
    """Evidence of a distress verdict at row ``i`` of :meth:`PsycheState.window`'s output."""

    def r(name: str, nd: int = 1) -> float | None:
        x = float(v[name][i])
        return round(x, nd) if np.isfinite(x) else None

    return {
        "hr_bpm": r("hr"),
        "hr_baseline_bpm": r("hr_base"),
        "hr_surge_bpm": r("surge"),
        "threshold_surge_bpm": p.surge_bpm,
        "resp_per_min": r("resp"),
        "resp_rise_per_min": r("resp_rise"),
        "threshold_resp_rise": p.resp_rise,
        "emg_ratio": r("emg_ratio", 2),
        "threshold_emg_ratio": p.emg_ratio,
        "movement_s": int(v["move_s"][i]),
        "stage": int(v["stage"][i]),
        "rule": "ramp" if bool(v["ramp"][i]) else "sustained",
        "windows": int(v["run"][i]),
        "hr_surge_2s_bpm": r("surge_short"),
        "hr_rise_3s_bpm": r("rise3"),
        "hr_rise_5s_bpm": r("rise5"),
        "resp_rise_last_breath": r("resp_rise_last"),
        "threshold_ramp_bpm": p.ramp_bpm,
    }


def storm_evidence(v: dict[str, Any], i: int, p: PsycheParams) -> dict[str, Any]:
    """Evidence of an arousal storm at row ``i``."""
    return {"arousals": int(v["arousals"][i]), "window_s": p.storm_window_s, "threshold": p.storm_count}
