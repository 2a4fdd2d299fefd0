"""detect_all: the detectors side by side on threads give the very table they give one after the other."""

import numpy as np
import pandas as pd
import pytest

from nexus.core.errors import InvalidInputError
from nexus.events import run_all
from nexus.events.arousals import detect_arousals
from nexus.events.rems import detect_rems
from nexus.events.run_all import Channels, detect_all
from nexus.events.slow_waves import detect_slow_waves
from nexus.events.spindles import detect_spindles

FS = 128.0


def _channels(minutes: float = 4.0) -> Channels:
    rng = np.random.default_rng(4)
    n = int(minutes * 60 * FS)
    t = np.arange(n) / FS
    eeg = np.cumsum(rng.normal(0, 3, n))
    eeg -= np.convolve(eeg, np.ones(256) / 256, mode="same")  # drift removed: a wandering 10-µV background
    for at in (20, 50, 95, 140, 200):  # spindles
        m = (t >= at) & (t < at + 1)
        eeg[m] += 60 * np.sin(2 * np.pi * 13 * t[m]) * np.hanning(m.sum())
    eeg += 120 * np.sin(2 * np.pi * 0.8 * t) * (t % 60 < 20)  # slow oscillations, 20 s a minute
    eeg[(t > 160) & (t < 166)] += 40 * np.sin(2 * np.pi * 10 * t[(t > 160) & (t < 166)])  # an alpha burst
    loc = rng.normal(0, 5, n)
    for at in np.arange(5, minutes * 60 - 5, 3.0):  # conjugate eye movements
        loc += 150 * np.exp(-0.5 * ((t - at) / 0.15) ** 2)
    ecg = rng.normal(0, 10, n)
    for b in np.arange(0.5, minutes * 60 - 1, 0.9):
        ecg += 900 * np.exp(-0.5 * ((t - b) / 0.012) ** 2)
    acc = rng.normal(0, 2, (3, n))
    acc[:, (t > 100) & (t < 104)] += 300
    emg = rng.normal(0, 5, n)
    emg[(t > 160) & (t < 166)] *= 4  # the chin tenses with the alpha burst in REM: an arousal there
    ch = Channels(eeg={"EEG C4": (eeg, FS)}, loc=("EOG L", loc, FS), roc=("EOG R", -loc, FS),
                  emg=("EMG", emg, FS), ecg=("ECG", ecg, FS), acc=(acc, FS))
    return ch


def test_threads_give_the_same_events_as_one_after_the_other():
    stages = np.array([2, 2, 3, 3, 4, 4, 2, 2])  # N2, N3, R, N2: every detector has its stages
    one, notes_one = detect_all(_channels(), stages, threads=1)
    many, notes_many = detect_all(_channels(), stages, threads=4)
    assert set(one["description"]) >= {"spindle", "slow_oscillation", "rem", "heart_rate", "movement"}
    pd.testing.assert_frame_equal(many, one)
    assert notes_many == notes_one


def test_heavy_detectors_run_one_at_a_time_with_the_same_events(monkeypatch):
    import threading

    stages = np.array([2, 2, 3, 3, 4, 4, 2, 2])
    together = []
    active: set[str] = set()
    guard = threading.Lock()

    def spied(name, real):
        def detector(*args, **kwargs):
            with guard:
                active.add(name)
                together.append(frozenset(active))
            try:
                return real(*args, **kwargs)
            finally:
                with guard:
                    active.discard(name)
        return detector

    import nexus.events.rems as rems_mod
    import nexus.events.spindles as spindles_mod

    monkeypatch.setattr(spindles_mod, "detect_spindles", spied("spindle", detect_spindles))
    monkeypatch.setattr(rems_mod, "detect_rems", spied("rem", detect_rems))
    one, notes_one = detect_all(_channels(), stages, threads=1)
    calm, notes_calm = detect_all(_channels(), stages, threads=4, heavy_alone=True)
    pd.testing.assert_frame_equal(calm, one)
    assert notes_calm == notes_one
    assert not any({"spindle", "rem"} <= s for s in together)


def test_heavy_jobs_wait_for_each_other_while_light_ones_fill_the_threads():
    import threading

    light_ran = threading.Event()
    active: set[str] = set()
    seen: dict[str, frozenset[str]] = {}
    guard = threading.Lock()

    def job(name):
        def run():
            with guard:
                active.add(name)
                seen[name] = frozenset(active)
            if name == "light":
                light_ran.set()
            else:
                light_ran.wait(5)  # a heavy job lets the light one start beside it
                threading.Event().wait(0.05)  # and lingers: a second heavy job would start meanwhile
            with guard:
                active.discard(name)
            return [pd.DataFrame({"job": [name]})]
        return run

    jobs = [job("heavy 1"), job("heavy 2"), job("light")]
    out = run_all._run(jobs, 2, [True, True, False])
    assert [part[0]["job"].iloc[0] for part in out] == ["heavy 1", "heavy 2", "light"]  # the jobs' order
    assert "heavy 1" in seen["light"]  # the light job ran beside the first heavy one
    assert "heavy 1" not in seen["heavy 2"]  # the second heavy one started after the first ended


def test_a_detector_error_reaches_the_caller_from_its_thread():
    with pytest.raises(InvalidInputError, match="Invalid hypnogram: 2 epochs of 30 s"):
        detect_all(_channels(), np.array([2, 2]), threads=4)


STAGES = np.array([2, 2, 3, 3, 4, 4, 2, 2])


def test_each_detector_gets_its_channels_stages_and_names():
    ch = _channels()
    got, _ = detect_all(ch, STAGES)
    eeg, loc, roc = ch.eeg["EEG C4"][0], ch.loc[1], ch.roc[1]
    want = {
        "spindle": detect_spindles(eeg, FS, ["EEG C4"], STAGES).events,
        "slow_oscillation": detect_slow_waves(eeg, FS, ["EEG C4"], STAGES).events,
        "rem": detect_rems(loc, roc, FS, STAGES, channel="EOG L,EOG R").events,
        "arousal": detect_arousals(eeg, FS, STAGES, emg=ch.emg[1], channel="EEG C4").events,
    }
    for kind, w in want.items():
        g = got[got.description == kind].dropna(axis=1, how="all").reset_index(drop=True)
        pd.testing.assert_frame_equal(g[list(w.columns)], w.reset_index(drop=True), check_dtype=False)
    assert len(want["spindle"]) and len(want["rem"]) and len(want["slow_oscillation"])
    # the alpha burst with a tense chin in REM is an arousal only with the EMG
    assert ((want["arousal"].onset > 150) & (want["arousal"].onset < 170)).any()
    assert not (detect_arousals(eeg, FS, STAGES, channel="EEG C4").events.onset.between(150, 170)).any()
    assert not detect_spindles(eeg, FS, ["EEG C4"], None).events.equals(want["spindle"])  # the stages matter


@pytest.mark.parametrize(("kinds", "note"), [
    (("spindle",), True), (("slow_oscillation",), True), (("arousal",), True), (("heart_rate",), False),
], ids=lambda k: str(k))
def test_notes_say_what_was_skipped_and_why(kinds, note):
    ch = _channels()
    no_eeg = Channels(loc=ch.loc, ecg=ch.ecg)
    _, notes = detect_all(no_eeg, STAGES, kinds)
    assert ("no EEG channel: spindles, slow oscillations and arousals skipped" in notes) is note
    _, notes = detect_all(ch, STAGES, kinds)
    assert not any("no EEG" in n for n in notes)


def test_missing_and_mismatched_channels_are_named():
    ch = _channels()
    one_eog = Channels(eeg=ch.eeg, loc=ch.loc, emg=("EMG", ch.emg[1][::2], FS / 2))
    df, notes = detect_all(one_eog, STAGES, ("rem", "arousal", "heart_rate", "movement"))
    assert notes == ["fewer than two EOG channels: rapid eye movements skipped",
                     "EMG 'EMG' has another rate than the EEG: arousals in REM skipped",
                     "no ECG channel: heart rate skipped", "no 3-axis accelerometer: movements skipped"]
    assert set(df.description) <= {"arousal"}
    df, _ = detect_all(ch, STAGES, ("spindle", "heart_rate"))
    assert set(df.description) == {"spindle", "heart_rate"}  # only the kinds asked for
    assert list(df.index) == list(range(len(df))) and "index" not in df.columns  # renumbered, not kept
    bad = Channels(loc=ch.loc, roc=("EOG R", ch.roc[1][:-1], FS))
    with pytest.raises(InvalidInputError, match="EOG channels 'EOG L' and 'EOG R' differ in rate or length"):
        detect_all(bad, STAGES, ("rem",))


@pytest.mark.parametrize(("affinity", "count", "want"), [(8, 2, 4), (3, 16, 3), (None, 2, 2)])
def test_default_threads_follow_the_cpus_this_process_may_use(monkeypatch, affinity, count, want):
    used: list[int] = []

    class Pool(run_all.ThreadPoolExecutor):
        def __init__(self, max_workers, **kw):
            used.append(max_workers)
            super().__init__(max_workers, **kw)

    monkeypatch.setattr(run_all, "ThreadPoolExecutor", Pool)
    monkeypatch.setattr(run_all.os, "cpu_count", lambda: count)
    if affinity is None:
        monkeypatch.delattr(run_all.os, "sched_getaffinity")
    else:
        monkeypatch.setattr(run_all.os, "sched_getaffinity", lambda pid: set(range(affinity)))
    detect_all(_channels(1.0), None)  # six detectors
    assert used == [want]
