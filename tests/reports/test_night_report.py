"""Night reports of a recording + hypnogram: sections, numbers equal to the statistics module, bad input on the page."""

import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from nexus.cli.main import main
from nexus.formats.edf import Signal, write_edf
from nexus.formats.hypnogram import Hypnogram, read_hypnogram, write_hypnogram
from nexus.reports.document import Image, Note, Table, to_html, write_report
from nexus.reports.night import NightData, build_night_report, night_from_recording
from nexus.staging.stats import sleep_statistics


@pytest.fixture(scope="module")
def synthetic_night(tmp_path_factory):
    """One hour of the synthetic sleeper at 128 Hz (EDF+ with a start time) and its true hypnogram."""
    d = tmp_path_factory.mktemp("night")
    assert main(["synth", "--hours", "1", "--seed", "4", "--fs", "128", "-o", str(d / "night.edf"),
                 "--truth", str(d / "truth.tsv")]) == 0
    return d / "night.edf", d / "truth.tsv"


def _blocks(rep, title, kind):
    sec = rep.find(title)
    assert sec is not None, f"no section {title!r}; have {[s.title for s in rep.sections]}"
    return [b for b in sec.blocks if isinstance(b, kind)]


def _notes(rep):
    return " ".join(b.text for b in _blocks(rep, "Summary", Note))


def test_sections_and_numbers_equal_nexus_stats(synthetic_night, tmp_path, capsys):
    edf, truth = synthetic_night
    rep = build_night_report(night_from_recording(edf, truth))
    titles = [s.title for s in rep.sections]
    assert titles == ["Summary", "Sleep statistics (AASM)", "Hypnogram", "Spectrogram", "Events",
                      "Signal quality and glitches"]
    # the statistics table shows what `nexus stats --json` prints, to the 2 decimals shown
    assert main(["stats", str(truth), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    table = _blocks(rep, "Sleep statistics (AASM)", Table)[0]
    shown = {row[0]: row[1] for row in table.rows}
    assert list(shown) == list(cli)
    for key, value in cli.items():
        assert shown[key] == ("n/a" if value is None else f"{value:.2f}"), key
    # the client summary quotes the same TST and efficiency
    st = sleep_statistics(read_hypnogram(truth).stages)
    summary = " ".join(b for b in rep.find("Summary").blocks if isinstance(b, str))
    assert f"sleep efficiency {st['SE']:.0f}%" in summary
    assert f"{int(st['TST'])} min" in summary or f"{int(st['TST']) // 60} h" in summary
    # clock times: the synthetic night starts at 22:00
    assert "started 2000-01-01 22:00" in rep.subtitle
    # events per stage add up to the total of events that fall in scored epochs
    ev_rows = _blocks(rep, "Events", Table)[0].rows
    so = next(r for r in ev_rows if r[0] == "slow oscillations")
    per_stage = [int(c.split()[0]) for c in so[2:]]
    assert sum(per_stage) == int(so[1]) > 0
    assert per_stage[3] == max(per_stage)  # slow oscillations are an N3 event
    assert not _blocks(rep, "Summary", Note)  # a clean night has no warning


def test_html_is_self_contained_and_pdf_renders(synthetic_night, tmp_path):
    edf, truth = synthetic_night
    rep = build_night_report(night_from_recording(edf, truth, reference=truth, detect=False))
    assert rep.find("Agreement with truth.tsv") is not None
    html_path = write_report(rep, tmp_path / "r.html")
    text = html_path.read_text()
    assert not re.search(r"(src|href)=\"(?!data:)", text), "external reference in the HTML"
    assert "http://" not in text and "https://" not in text
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == sum(isinstance(b, Image) for s in rep.sections for b in s.blocks) >= 3
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    pdf = write_report(rep, tmp_path / "r.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) not installed")
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    import matplotlib.image as mpimg

    first = mpimg.imread(pages[0])
    assert first.std() > 0.05  # not a blank page


def test_real_excerpt_with_whole_night_hypnogram_says_so_on_the_page(data_dir):
    edf = data_dir / "sleep-edf" / "SC4001E0-PSG_first5min.edf"
    hyp = data_dir / "sleep-edf" / "SC4001EC-Hypnogram.edf"
    rep = build_night_report(night_from_recording(edf, hyp, channel="Fpz-Cz"))
    notes = _notes(rep)
    assert "longer than the recording" in notes and "Check that both belong to the same night" in notes
    assert rep.find("Spectrogram").blocks and isinstance(rep.find("Spectrogram").blocks[0], Image)
    # the first 5 minutes are Wake: no sleep event is counted in a sleep stage there
    rows = _blocks(rep, "Events", Table)[0].rows
    assert all(r[1] == "0" for r in rows if r[0] in ("spindles", "slow oscillations"))
    # no sleep within the 5 recorded minutes: no arousal index (not 0 over the whole night's sleep)
    assert "Arousal index: n/a per hour of sleep (over the 0 min of sleep" in to_html(rep)
    assert "interrupted about" not in to_html(rep)


def test_no_eeg_no_sleep_short_and_empty_hypnograms(tmp_path):
    fs = 100.0
    rng = np.random.default_rng(1)
    write_edf(tmp_path / "ecg.edf", [Signal("ECG", rng.normal(0, 50, int(600 * fs)), fs)])
    write_hypnogram(tmp_path / "wake.tsv", [0] * 20)
    rep = build_night_report(night_from_recording(tmp_path / "ecg.edf", tmp_path / "wake.tsv"))
    notes = _notes(rep)
    assert "No EEG channel found" in notes and "--channel" in notes
    assert "No sleep was scored" in notes
    assert isinstance(rep.find("Spectrogram").blocks[0], Note)
    write_report(rep, tmp_path / "nosleep.pdf")  # renders without failing
    write_hypnogram(tmp_path / "short.tsv", [0, 1, 2, 2])
    rep = build_night_report(night_from_recording(tmp_path / "ecg.edf", tmp_path / "short.tsv"))
    assert "remaining 8 min are not scored" in _notes(rep)
    rep = build_night_report(NightData("empty", hypnogram=Hypnogram(np.zeros(0, np.int8))))
    assert "hypnogram is empty" in _notes(rep)
    assert "cannot say how you slept" in to_html(rep)


def test_report_command(synthetic_night, tmp_path, capsys):
    edf, truth = synthetic_night
    out = tmp_path / "r.html"
    assert main(["report", str(edf), "--hypno", str(truth), "--no-events", "-o", str(out)]) == 0
    assert "Wrote" in capsys.readouterr().out and out.stat().st_size > 50_000
    assert main(["report", str(edf), "--hypno", str(truth), "-o", str(tmp_path / "r.docx")]) == 2
    assert "*.html or *.pdf" in capsys.readouterr().err
    assert main(["report", str(edf), "--hypno", str(truth), "--channel", "C5", "-o", str(out)]) == 2
    assert "No channel 'C5'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.edf"), "--hypno", str(truth), "-o", str(out)]) == 3


def test_arousal_index_counts_only_the_sleep_the_recording_covers():
    # 10 min of N2 scored, a recording (and its events) of the first 2 min only: 2 arousals in 2 min of sleep
    events = pd.DataFrame({"onset": [20.0, 70.0], "duration": [5.0, 5.0], "description": ["arousal"] * 2,
                           "channel": ["EEG"] * 2})
    hyp = Hypnogram(np.full(20, 2, dtype=np.int8))
    rep = build_night_report(NightData("x", hypnogram=hyp, duration_s=120.0, events=events, events_span_s=120.0))
    line = next(b for b in rep.find("Events").blocks if isinstance(b, str) and b.startswith("Arousal index"))
    assert line.startswith("Arousal index: 60.0 per hour of sleep (over the 2 min of sleep that the recording covers).")
    # events of the whole night (a stored session's): the whole hypnogram's sleep
    rep = build_night_report(NightData("x", hypnogram=hyp, duration_s=120.0, events=events))
    line = next(b for b in rep.find("Events").blocks if isinstance(b, str) and b.startswith("Arousal index"))
    assert line.startswith("Arousal index: 12.0 per hour of sleep. ")


def test_the_summary_says_the_durations_of_the_statistics_table():
    # 1.5 min in bed: the summary said '2 min' (rounded) next to the table's TIB 1.50 min
    page = to_html(build_night_report(NightData("x", hypnogram=Hypnogram(np.array([0, 2, 2], np.int8)))))
    tib = float(re.search(r"<td>TIB</td><td>([0-9.]+)</td>", page)[1])
    assert tib == 1.5 and "You slept 1 min of the 1 min 30 s in bed" in page


def test_events_detected_in_the_background_give_the_same_report(tmp_path):
    from concurrent.futures import Future

    fs = 128.0
    rng = np.random.default_rng(5)
    n = int(900 * fs)
    eeg = np.cumsum(rng.normal(0, 3, n)) * 0.05 + rng.normal(0, 15, n)
    write_edf(tmp_path / "n.edf", [Signal("EEG C4-M1", eeg, fs), Signal("EMG Chin", rng.normal(0, 5, n), fs)])
    write_hypnogram(tmp_path / "h.tsv", [0, 0, 1, 2, 2, 2, 3, 3, 3, 3, 2, 2, 4, 4, 4, 4, 2, 2, 1, 0, 0, 2, 2, 3, 3,
                                         3, 2, 2, 4, 0])
    now = night_from_recording(tmp_path / "n.edf", tmp_path / "h.tsv")
    later = night_from_recording(tmp_path / "n.edf", tmp_path / "h.tsv", background=True)
    assert later.events is None and later.pending_events is not None  # still running, or done and not yet taken
    a, b = build_night_report(now), build_night_report(later)
    b.created = a.created
    assert later.pending_events is None
    pd.testing.assert_frame_equal(later.events, now.events)
    assert "Events: fewer than two EOG channels" in _notes(b)  # the detectors' notes come along
    assert to_html(b) == to_html(a)
    failed: Future = Future()
    failed.set_exception(ValueError("detector broke"))
    with pytest.raises(ValueError, match="detector broke"):  # an error of the detectors is not swallowed
        build_night_report(NightData("x", pending_events=failed))
