import numpy as np
import pytest
from scipy.signal import welch

from nexus.core.errors import InvalidInputError
from nexus.core.stages import Stage
from nexus.formats.edf import read_edf, write_edf
from nexus.sources.synthetic import (
    CHANNELS,
    FAULT_KINDS,
    Fault,
    SyntheticFleet,
    schedule_faults,
    synthesize_batch,
    synthesize_night,
)


@pytest.fixture(scope="module")
def night():
    return synthesize_night("typical_adult", hours=2.0, seed=4, distress=1)


def test_same_seed_gives_the_same_night_byte_for_byte():
    a = synthesize_night("teen", hours=0.1, seed=11)
    b = synthesize_night("teen", hours=0.1, seed=11)
    c = synthesize_night("teen", hours=0.1, seed=12)
    assert a.signals.tobytes() == b.signals.tobytes()
    assert not np.array_equal(a.signals, c.signals)


def test_shape_units_and_channels(night):
    assert night.signals.shape == (10, (2 * 3600 * 256))
    assert night.channels == CHANNELS
    assert night.stages.size == 240
    assert np.isfinite(night.signals).all()
    assert 800 < night.channel("ECG").max() < 1400  # R peaks in µV
    assert 900 < np.abs(night.channel("Acc Y") + night.channel("Acc Z")).mean() < 1100  # gravity in mg


def _epochs(night, name):
    x = night.channel(name)
    n = night.stages.size
    return x[: n * 30 * 256].reshape(n, -1)


def test_stage_signatures(night):
    st = night.stages
    eeg = _epochs(night, "EEG C4-M1")
    f, p = welch(eeg, 256, nperseg=1024, axis=1)
    band = lambda lo, hi: p[:, (f >= lo) & (f < hi)].sum(axis=1)  # noqa: E731
    rel_alpha = band(8, 12) / band(0.5, 30)
    rel_delta = band(0.5, 4) / band(0.5, 30)
    sigma = band(12, 16)
    wake, n2, n3, rem = (st == Stage.W), (st == Stage.N2), (st == Stage.N3), (st == Stage.R)
    assert n3.any() and rem.any() and n2.any()
    assert rel_alpha[wake].mean() > 3 * rel_alpha[n3].mean()
    assert rel_delta[n3].mean() > rel_delta[n2].mean() > rel_delta[wake].mean()
    assert sigma[n2].mean() > 1.5 * sigma[rem].mean()
    assert np.ptp(eeg[n3], axis=1).mean() > 150  # slow waves > 75 µV peak to peak
    emg = _epochs(night, "EMG Chin").std(axis=1)
    assert emg[wake].mean() > emg[n2].mean() > emg[rem].mean()  # atonia in REM
    eog = _epochs(night, "EOG E1-M2") - _epochs(night, "EOG E2-M2")
    assert eog[rem].std(axis=1).mean() > 1.5 * eog[n3].std(axis=1).mean()  # rapid eye movements


def test_truth_events_follow_the_issue(night):
    ev = night.truth.events
    sp = ev[ev.kind == "spindle"]
    so = ev[ev.kind == "slow_oscillation"]
    assert len(sp) > 20 and len(so) > 20
    assert sp.frequency.between(11, 16).all() and sp.duration.between(0.5, 2).all()
    assert (so.amplitude > 75).all() and so.frequency.between(0.5, 1.5).all()  # slow oscillations, 0.5–1.5 Hz
    dw = ev[ev.kind == "delta_wave"]  # the smaller slow waves of N2/N3 (sleepers differ in amplitude)
    assert (dw.amplitude < 75).all() and dw.frequency.between(0.5, 1.5).all()
    epoch_stage = night.stages[(sp.onset // 30).astype(int)]
    assert np.isin(epoch_stage, (Stage.N1, Stage.N2, Stage.N3)).all()
    rems = ev[ev.kind == "rem"]
    assert (night.stages[(rems.onset // 30).astype(int)] == Stage.R).all()
    assert {"arousal", "k_complex"} <= set(ev.kind)


def test_distress_raises_heart_rate(night):
    d = night.truth.distress
    assert len(d) == 1
    o, dur = float(d.onset.iloc[0]), float(d.duration.iloc[0])
    ecg = night.channel("ECG")

    def bpm(a, b):
        x = ecg[int(a * 256) : int(b * 256)]
        peaks = np.flatnonzero((x[1:-1] > 600) & (x[1:-1] >= x[:-2]) & (x[1:-1] > x[2:]))
        return 60 * peaks.size / (b - a)

    assert bpm(o + dur / 3, o + dur) > bpm(o - 300, o - 60) + 12
    hr = night.truth.heart_rate
    e0 = int((o + dur / 3) // 30)
    assert hr.shape == night.stages.shape
    assert hr[e0] > hr[e0 - 10] + 10  # the surge is in the truth too
    assert abs(hr[e0] - bpm(e0 * 30, e0 * 30 + 30)) < 8
    assert night.truth.resp_rate[e0] > night.truth.resp_rate[e0 - 10]


def test_chunking_and_batch_do_not_change_the_night():
    whole = synthesize_night("typical_adult", hours=0.05, seed=2)
    fleet = SyntheticFleet("typical_adult", [2], hours=0.05, dtype=np.float64)
    parts = [fleet.next_chunk(n)[0] for n in (1, 255, 1000, 77, 3000, 6000, 15_000)]
    rest = fleet.next_chunk(whole.signals.shape[1] - sum(p.shape[1] for p in parts))[0]
    np.testing.assert_array_equal(np.concatenate([*parts, rest], axis=1), whole.signals)
    batch = synthesize_batch(["insomniac", "typical_adult"], [9, 2], hours=0.05, dtype=np.float64)
    np.testing.assert_array_equal(batch[1].signals, whole.signals)
    np.testing.assert_array_equal(batch[1].stages, whole.stages)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_stays_inside_its_window(kind):
    fault = Fault(kind, "*" if kind in ("dropped_samples", "clock_jitter") else "EEG C4-M1", 60.0, 30.0, seed=3)
    clean = synthesize_night(hours=0.05, seed=5)
    bad = synthesize_night(hours=0.05, seed=5, faults=[fault])
    inside = slice(60 * 256, 90 * 256)
    diff = np.any(bad.signals != clean.signals, axis=0)
    assert diff[inside].any()
    assert not diff[: 60 * 256].any() and not diff[90 * 256 :].any()
    c4 = bad.channel("EEG C4-M1")[inside]
    if kind == "dropped_samples":
        assert (bad.signals[:, inside] == 0).all()
    elif kind == "clipping":
        assert np.abs(c4).max() <= 100
    elif kind == "line_noise":
        f, p = welch(c4, 256, nperseg=512)
        assert p[np.argmin(np.abs(f - 50))] > 50 * np.median(p)
    elif kind == "electrode_off" and fault.variant == 0:
        assert np.ptp(c4) < 1
    assert list(bad.truth.faults.kind) == [kind]


def test_schedule_faults_is_deterministic_and_validated():
    a = schedule_faults(FAULT_KINDS, 8, CHANNELS, seed=1)
    assert a == schedule_faults(FAULT_KINDS, 8, CHANNELS, seed=1)
    assert [f.kind for f in a] == list(FAULT_KINDS)
    assert all(f.onset >= 600 and f.onset + f.duration <= 8 * 3600 for f in a)
    with pytest.raises(InvalidInputError, match="Did you mean 'clipping'"):
        schedule_faults(["cliping"], 8, CHANNELS, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hours": -1}, r"'hours': expected > 0"),
        ({"fs": 50}, r"'fs': expected >= 100 Hz, got 50 Hz"),
        ({"profile": "tean"}, r"Did you mean 'teen'"),
        ({"channels": ["EEG C3-M2"]}, r"Unknown channel 'EEG C3-M2'"),
    ],
    ids=["hours", "fs", "profile", "channel"],
)
def test_bad_input_is_one_clear_error(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        synthesize_night(**({"hours": 0.01} | kwargs))


def test_recording_carries_the_truth_as_edf_annotations(tmp_path):
    night = synthesize_night(hours=0.5, seed=1, faults=[Fault("electrode_off", "EEG C4-M1", 100, 20)])
    rec = night.to_recording()
    write_edf(tmp_path / "n.edf", rec.signals, rec.annotations)
    back = read_edf(tmp_path / "n.edf")
    texts = {a.text for a in back.annotations}
    assert {"Sleep stage W", "Sleep stage N1", "spindle", "fault:electrode_off C4-M1"} <= texts
    np.testing.assert_allclose(back.channel("EEG C4-M1").data, night.channel("EEG C4-M1"), atol=0.05)


@pytest.mark.parametrize("channel", ["EMG Chin", "EEG C4-M1"])
def test_a_clipping_fault_reaches_the_rail_even_on_a_quiet_channel(channel):
    # a saturated amplifier sits on its rail; a gain step alone left the chin EMG (a few µV) inside ±100 µV
    for seed in (3, 4):  # both rails
        bad = synthesize_night(hours=0.05, seed=5, faults=[Fault("clipping", channel, 60.0, 30.0, seed=seed)])
        x = bad.channel(channel)[60 * 256 : 90 * 256]
        assert np.abs(x).max() <= 100
        assert np.mean(np.abs(x) == 100) >= 0.2
