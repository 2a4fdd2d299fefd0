"""The monitor over whole recordings: silent on clean real data, finds faults in a synthetic EDF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nexus.formats.edf import Recording, Signal, read_edf, write_edf
from nexus.monitor.offline import glitch_frame, scan_recording, scan_signals

DATA = Path(__file__).resolve().parents[1] / "data"


def test_clean_real_recording_stays_silent():
    rec = read_edf(DATA / "sleep-edf" / "SC4001E0-PSG_first5min.edf")
    found, notes = scan_recording(rec)
    assert found == []
    assert len(notes) == 1 and "1 Hz" in notes[0] and "Temp rectal" in notes[0]


@pytest.mark.parametrize(
    ("name", "fs"), [("data_N2_spindles_15sec_200Hz.txt", 200.0), ("data_N3_no-spindles_30sec_100Hz.txt", 100.0)]
)
def test_clean_real_eeg_stays_silent(name, fs):
    x = np.loadtxt(DATA / "yasa-samples" / name)
    assert scan_signals(x[None, :], ["EEG"], fs) == []


def test_real_eeg_with_a_fault_pasted_in_is_found():
    x = np.loadtxt(DATA / "yasa-samples" / "data_N3_no-spindles_30sec_100Hz.txt")[None, :].copy()
    x[0, 1000:2000] = x[0, 999]  # the amplifier holds its last value for 10 s
    found = scan_signals(x, ["EEG Fpz-Cz"], 100.0)
    assert [(g.kind, g.channel) for g in found] == [("flat_line", "EEG Fpz-Cz")]
    assert 9.0 <= found[0].onset_s <= 11.0 and 8.0 <= found[0].duration_s <= 11.0


def test_units_are_converted_and_table_has_the_columns(tmp_path):
    rng = np.random.default_rng(1)
    fs = 256.0
    eeg = rng.normal(0, 20, int(120 * fs))
    t = np.arange(eeg.size) / fs
    hum = eeg + 30.0 * np.sin(2 * np.pi * 60.0 * t) * (t >= 40)
    write_edf(tmp_path / "r.edf", [Signal("EEG C4-M1", eeg / 1000.0, fs, "mV"), Signal("EEG O1-M2", hum, fs)])
    rec = read_edf(tmp_path / "r.edf")
    found, notes = scan_recording(rec)
    assert notes == []
    assert [(g.kind, g.channel) for g in found] == [("line_noise", "EEG O1-M2")]
    df = glitch_frame(found)
    assert list(df.columns) == ["onset", "duration", "kind", "category", "priority", "channel", "evidence"]
    assert df.kind.iloc[0] == "line_noise" and '"line_hz": 60.0' in df.evidence.iloc[0]


def test_a_channel_given_in_volts_as_microvolts_is_flagged():
    rec = Recording([Signal("EEG C4-M1", np.random.default_rng(2).normal(0, 20e-6, 256 * 30), 256.0, "uV")])
    found, _ = scan_recording(rec)
    assert {g.kind for g in found} == {"electrode_off"}
    assert found[0].evidence["std_uv"] < 1e-3


def test_samples_lost_in_a_file_are_dropped_samples_not_electrodes(tmp_path):
    rng = np.random.default_rng(3)
    fs = 256.0
    x = rng.normal(0, 20, (3, int(90 * fs)))
    x[:, int(30 * fs) : int(50 * fs)] = 0.0  # lost on every channel; EDF stores 0 as a digital value near 0
    labels = ["EEG C4-M1", "EOG E1-M2", "ECG"]
    write_edf(tmp_path / "r.edf", [Signal(c, row, fs) for c, row in zip(labels, x, strict=True)])
    found, _ = scan_recording(read_edf(tmp_path / "r.edf"))
    assert [(g.kind, g.channel) for g in found] == [("dropped_samples", None)]
    assert abs(found[0].onset_s - 30.0) <= 1.0 and abs(found[0].duration_s - 20.0) <= 2.0
