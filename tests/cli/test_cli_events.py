import numpy as np

from nexus.cli.main import main
from nexus.formats.edf import Signal, write_edf
from nexus.formats.events import read_events
from nexus.formats.hypnogram import write_hypnogram

FS = 256.0


def _recording(path, with_eeg=True):
    rng = np.random.default_rng(0)
    n = int(60 * FS)
    t = np.arange(n) / FS
    spec = np.fft.rfft(rng.normal(0, 1, n)) / np.maximum(np.fft.rfftfreq(n, 1 / FS), 0.5) ** 0.8
    eeg = np.fft.irfft(spec, n)
    eeg *= 10 / eeg.std()  # pink-ish background, 10 µV
    m = (t >= 20) & (t < 21)
    eeg[m] += 50 * np.sin(2 * np.pi * 13 * t[m]) * np.hanning(m.sum())
    ecg = rng.normal(0, 10, n)
    for b in np.arange(0.5, 59, 0.9):
        ecg += 900 * np.exp(-0.5 * ((t - b) / 0.012) ** 2)
    sigs = [Signal("ECG", ecg / 1000.0, FS, "mV")]  # stored in mV: read_edf returns µV
    if with_eeg:
        sigs.insert(0, Signal("EEG C4-M1", eeg, FS))
    write_edf(path, sigs)
    return path


def test_events_command_writes_tsv(tmp_path, capsys):
    rec = _recording(tmp_path / "night.edf")
    rc = main(["events", str(rec), "-o", str(tmp_path / "ev.tsv")])
    assert rc == 0
    out = capsys.readouterr()
    assert "spindle" in out.out and "no 3-axis accelerometer" in out.err
    ev = read_events(tmp_path / "ev.tsv")
    sp = ev[ev.description == "spindle"]
    assert len(sp) == 1 and abs(sp.onset.iloc[0] - 20) < 0.4
    assert sp.channel.iloc[0] == "EEG C4-M1"
    hr = ev[ev.description == "heart_rate"]
    assert len(hr) == 2 and abs(hr.hr_bpm.iloc[0] - 60 / 0.9) < 1.5


def test_events_command_errors(tmp_path, capsys):
    rec = _recording(tmp_path / "night.edf")
    assert main(["events", str(tmp_path / "missing.edf"), "-o", str(tmp_path / "e.tsv")]) == 3
    assert main(["events", str(rec), "--channel", "C5", "-o", str(tmp_path / "e.tsv")]) == 2
    assert "No channel 'C5'" in capsys.readouterr().err
    assert main(["events", str(rec), "-o", str(tmp_path / "nofolder" / "e.tsv")]) == 2
    (tmp_path / "bad.edf").write_bytes(b"0       garbage")
    assert main(["events", str(tmp_path / "bad.edf"), "-o", str(tmp_path / "e.tsv")]) == 65


def test_events_on_real_sleep_edf_excerpt_with_its_whole_night_hypnogram(data_dir, tmp_path, capsys):
    edf = data_dir / "sleep-edf" / "SC4001E0-PSG_first5min.edf"
    hyp = data_dir / "sleep-edf" / "SC4001EC-Hypnogram.edf"
    out = tmp_path / "ev.tsv"
    assert main(["events", str(edf), "--hypno", str(hyp), "--channel", "Fpz-Cz", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: The hypnogram 'SC4001EC-Hypnogram.edf'" in err  # a whole night for 5 min
    ev = read_events(out)
    # the first 5 minutes of this night are scored Wake: no sleep event may be reported there
    assert not ev["description"].isin(["spindle", "slow_oscillation", "arousal"]).any()
    assert "fewer than two EOG channels" in err


def test_events_flag_a_hypnogram_that_does_not_cover_the_recording(tmp_path, capsys, data_dir):
    rec = _recording(tmp_path / "night.edf")  # 60 s
    hyp, out = tmp_path / "h.tsv", tmp_path / "ev.tsv"
    write_hypnogram(hyp, np.full(4, 2, dtype=np.int8))  # 2 min
    assert main(["events", str(rec), "--hypno", str(hyp), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert ("warning: The hypnogram 'h.tsv' (4 epochs, 2 min) is longer than the recording 'night.edf' (1 min): "
            "its last 2 epochs have no signal and are ignored. Check that both belong to the same night.") in err
    assert (read_events(out).description == "spindle").sum() == 1  # detected on the epochs that have signal
    write_hypnogram(hyp, np.full(3, 2, dtype=np.int8))  # within one epoch of the recording's end: fine
    assert main(["events", str(rec), "--hypno", str(hyp), "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    edf = data_dir / "sleep-edf" / "SC4001E0-PSG_first5min.edf"  # 5 min, scored for 1 min: refused
    out.unlink()
    assert main(["events", str(edf), "--hypno", str(hyp), "--only", "movement", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "(3 epochs, 2 min) is shorter than the recording 'SC4001E0-PSG_first5min.edf' (5 min)" in err
    assert not out.exists()


def test_events_reads_only_the_channels_its_detectors_use(tmp_path, monkeypatch, capsys):
    import nexus.formats.edf as edf
    from nexus.events.run_all import Channels, detect_all

    rng = np.random.default_rng(1)
    n = int(60 * FS)
    base = edf.read_edf(_recording(tmp_path / "base.edf"))
    eeg, ecg = base.channel("EEG C4-M1").data, base.channel("ECG").data
    sigs = [Signal("EEG C4-M1", eeg, FS), Signal("EEG Fpz-Cz", rng.normal(0, 20, n), FS),
            Signal("EOG E1-M2", rng.normal(0, 30, n), FS), Signal("EOG E2-M2", rng.normal(0, 30, n), FS),
            Signal("EMG Chin", rng.normal(0, 5, n), FS), Signal("ECG", ecg, FS),
            Signal("Resp", rng.normal(0, 1, 1920), 32.0, "au")]
    rec = write_edf(tmp_path / "night.edf", sigs)
    real, read = edf.read_edf, []

    def spy(*args, **kwargs):  # the real reader; remembers what it returned
        out = real(*args, **kwargs)
        read.append(out.labels)
        return out

    monkeypatch.setattr(edf, "read_edf", spy)
    assert main(["events", str(rec), "-o", str(tmp_path / "ev.tsv")]) == 0
    assert read == [["EEG C4-M1", "EOG E1-M2", "EOG E2-M2", "EMG Chin", "ECG"]]  # not Fpz-Cz, not Resp
    full = real(rec)  # every channel, as before: the same events
    ch = Channels(eeg={"EEG C4-M1": (eeg, FS)}, loc=("EOG E1-M2", full.signals[2].data, FS),
                  roc=("EOG E2-M2", full.signals[3].data, FS), emg=("EMG Chin", full.signals[4].data, FS),
                  ecg=("ECG", full.channel("ECG").data, FS))
    expected, _ = detect_all(ch)
    got = read_events(tmp_path / "ev.tsv")
    assert len(got) == len(expected) > 0
    assert got["description"].tolist() == expected["description"].tolist()
    np.testing.assert_allclose(got["onset"], expected["onset"], atol=1e-3)
    read.clear()
    assert main(["events", str(rec), "--only", "spindle", "--channel", "Fpz-Cz", "-o", str(tmp_path / "s.tsv")]) == 0
    assert read == [["EEG Fpz-Cz"]]
    read.clear()
    assert main(["events", str(rec), "--only", "rem", "--only", "heart_rate", "-o", str(tmp_path / "r.tsv")]) == 0
    assert read == [["EOG E1-M2", "EOG E2-M2", "ECG"]]
    capsys.readouterr()
