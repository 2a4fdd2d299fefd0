"""Night reports of stored sessions and a client's trend, from rows written to a migrated test database."""

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from nexus.cli.main import main
from nexus.core.errors import InvalidInputError, NotFoundError
from nexus.core.glitches import AlarmPriority, GlitchCategory
from nexus.core.lifecycle import SessionState
from nexus.formats.hypnogram import read_hypnogram
from nexus.reports.document import Note, Table, to_html
from nexus.reports.facility import alarm_table, build_facility_report, facility_night
from nexus.reports.night import LiveBed, build_night_report, night_from_session
from nexus.reports.trend import build_trend_report, client_trend
from nexus.staging.stats import sleep_statistics
from nexus.store.models import Client, DecisionRow, Event, GlitchRow, HypnogramRow, NightSession, SessionMode

PHASES = [10.0, 20.0, -10.0, 0.0, 30.0, -20.0]  # degrees; circular mean 5°


@pytest.fixture
def nights(store, data_dir):
    """Client C-7: a stimulated night (live + truth hypnograms, events, glitches, decisions, a real recording)
    and a natural night the day after."""
    real = read_hypnogram(data_dir / "yasa-samples" / "data_full_6hrs_100Hz_hypno_30s.txt").stages.tolist()
    live = list(real)
    live[100:110] = [2] * 10  # the live stager disagrees on 10 epochs (some of them already N2)
    start = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
    with store.session() as s:
        client = Client(code="C-7")
        s.add(client)
        s.flush()
        stim = NightSession(id="night-1", client_id=client.id, bed="B3", mode=SessionMode.STIMULATION,
                            state=SessionState.PREPARED,
                            recording_path=str(data_dir / "sleep-edf" / "SC4001E0-PSG_first5min.edf"))
        # the natural night has only its summary counts (as nexus simulate writes), the third night nothing
        nat = NightSession(id="night-2", client_id=client.id, bed="B3", mode=SessionMode.RECORD_ONLY,
                           state=SessionState.PREPARED,
                           summary={"events": {"arousal": 5, "spindle": 40}, "so_power_n3_uv2": 812.5})
        bare = NightSession(id="night-3", client_id=client.id, bed="B4", mode=SessionMode.STIMULATION,
                            state=SessionState.PREPARED)
        for row, t0 in ((stim, start), (nat, start + timedelta(days=1)), (bare, start + timedelta(days=2))):
            row.transition_to(SessionState.CALIBRATING)
            row.transition_to(SessionState.RUNNING)
            row.started_at = t0
            row.transition_to(SessionState.EXTRACTING)
            if row is bare:  # extracted at once and ended early
                row.transition_to(SessionState.ABORTED, reason="extraction: immediate (distress)")
            else:
                row.transition_to(SessionState.ENDED, reason="morning")
            s.add(row)
        s.flush()
        s.add_all([
            HypnogramRow(session_id="night-1", kind="live", stages=live),
            HypnogramRow(session_id="night-1", kind="truth", stages=real),
            HypnogramRow(session_id="night-2", kind="live", stages=real[:600], confidence=[0.9] * 600),
            HypnogramRow(session_id="night-3", kind="live", stages=real[100:]),
        ])
        s.add_all([Event(session_id="night-1", onset_s=3600.0 + 60 * k, duration_s=5.0, description="arousal",
                         channel="EEG C4-M1") for k in range(12)])
        s.add_all([Event(session_id="night-1", onset_s=30.0 * (300 + k), duration_s=0.8, description="spindle",
                         channel="EEG C4-M1") for k in range(5)])
        s.add(GlitchRow(session_id="night-1", onset_s=7200.0, duration_s=60.0, category=GlitchCategory.PSYCHE,
                        kind="distress", priority=AlarmPriority.HIGH, message="HR surge in REM",
                        acknowledged_at=start + timedelta(seconds=7245)))
        s.add(GlitchRow(session_id="night-1", onset_s=100.0, duration_s=30.0, category=GlitchCategory.TECHNICAL,
                        kind="electrode_off", priority=AlarmPriority.MEDIUM, channel="EEG C4-M1"))
        # as the controller logs them: the decision's kind, and the command it issued (with its own kind)
        d = [DecisionRow(session_id="night-1", t_s=0.0, kind="scene", command={"kind": "scene", "name": "forest"}),
             DecisionRow(session_id="night-1", t_s=600.0, kind="cue",
                         command={"kind": "cue", "scene": "forest", "index": 0}),
             DecisionRow(session_id="night-1", t_s=900.0, kind="scene",
                         command={"kind": "silence", "for_s": None, "fade": True}),
             DecisionRow(session_id="night-1", t_s=950.0, kind="quiet", command={"kind": "silence", "for_s": 120.0},
                         inputs={"arousal": True}),
             DecisionRow(session_id="night-1", t_s=1000.0, kind="clas_rate", inputs={"phase_deg": 170.0})]
        d += [DecisionRow(session_id="night-1", t_s=2000.0 + 3 * k, kind="click",
                          command={"kind": "click", "duration_s": 0.05}, inputs={"phase_deg": ph})
              for k, ph in enumerate(PHASES)]
        d.append(DecisionRow(session_id="night-1", t_s=21000.0, kind="wake",
                             command={"kind": "wake", "sound": "birds"}))
        s.add_all(d)
    return real, live


def test_session_report_sections_and_numbers(store, nights):
    real, live = nights
    data = night_from_session(store, "night-1", detect=False)
    assert data.mode == "stimulation" and len(data.decisions) == 12 and len(data.glitches) == 2
    rep = build_night_report(data)
    titles = [s.title for s in rep.sections]
    assert titles == ["Summary", "Sleep statistics (AASM)", "Hypnogram", "Spectrogram", "Events", "Dreamscape",
                      "Agreement with truth hypnogram", "Signal quality and glitches"]
    stats = sleep_statistics(live)
    table = next(b for b in rep.find("Sleep statistics (AASM)").blocks if isinstance(b, Table))
    assert {r[0]: r[1] for r in table.rows}["TST"] == f"{stats['TST']:.2f}"
    events = " ".join(b for b in rep.find("Events").blocks if isinstance(b, str))
    assert f"Arousal index: {12 / (stats['TST'] / 60):.1f} per hour" in events
    assert "Distress episodes: 1" in events
    dream = rep.find("Dreamscape")
    rows = next(b for b in dream.blocks if isinstance(b, Table)).rows
    assert rows == [["clas_rate", "(none)", "1"], ["click", "click", "6"], ["cue", "cue", "1"],
                    ["quiet", "silence", "1"], ["scene", "scene", "1"], ["scene", "silence", "1"],
                    ["wake", "wake", "1"]]
    # the skipped click (clas_rate, 170°) is not a click: the mean phase is of the 6 given
    assert "6 clicks; mean phase at the click 5°" in " ".join(b for b in dream.blocks if isinstance(b, str))
    agree = " ".join(b for b in rep.find("Agreement with truth hypnogram").blocks if isinstance(b, str))
    n_diff = sum(a != b for a, b in zip(live, real, strict=True))
    assert f"{n_diff} epochs disagree" in agree and n_diff > 0
    quality = rep.find("Signal quality and glitches")
    glitch_rows = next(b for b in quality.blocks if isinstance(b, Table) and b.columns[0] == "category").rows
    assert ["psyche", "distress", "high", "1", "1.0"] in glitch_rows
    # the stored recording is 5 minutes, the hypnogram 6 hours: said on the page
    notes = " ".join(b.text for b in rep.find("Summary").blocks if isinstance(b, Note))
    assert "longer than the recording" in notes
    assert "1 unsettled moment (possible bad dreams) was noticed" in to_html(rep)


def test_natural_night_and_missing_session(store, nights):
    real, _ = nights
    rep = build_night_report(night_from_session(store, "night-2"))
    assert rep.find("Dreamscape") is None
    data = night_from_session(store, "night-2")
    assert data.confidence is not None and data.confidence.shape == (600,) and data.hypnogram.probabilities is None
    assert "no hypnodensity" not in to_html(rep)  # the confidence is drawn instead
    # no events stored one by one and no recording: the summary's counts give the arousal index
    events = rep.find("Events")
    tst = sleep_statistics(real[:600])["TST"]
    assert f"Arousal index: {5 / (tst / 60):.1f} per hour" in events.blocks[0]
    counts = next(b for b in events.blocks if isinstance(b, Table))
    assert counts.rows == [["arousals", "5"], ["spindles", "40"]]
    assert "The events themselves were not detected for this report" in counts.caption
    notes = " ".join(b.text for b in rep.find("Summary").blocks if isinstance(b, Note))
    assert "No recording is stored" in notes
    assert "natural night" in to_html(rep)
    with pytest.raises(NotFoundError, match=r"No session 'night-9'.*Recent sessions"):
        night_from_session(store, "night-9")


def test_client_trend(store, nights):
    real, live = nights
    code, df = client_trend(store, "C-7")
    tst = [sleep_statistics(h)["TST"] for h in (live, real[:600], real[100:])]
    assert code == "C-7" and df["session"].tolist() == ["night-1", "night-2", "night-3"]
    assert df["stimulated"].tolist() == [True, False, True]
    assert df["TST"].tolist() == tst
    assert df["arousal_index"][0] == pytest.approx(12 / (tst[0] / 60))  # from the stored events
    assert df["arousal_index"][1] == pytest.approx(5 / (tst[1] / 60))  # from the summary counts
    assert math.isnan(df["arousal_index"][2])  # nothing stored: unknown, not 0
    assert df["clicks"].tolist() == [6, 0, 0]
    assert df["so_power_n3"][1] == 812.5 and math.isnan(df["so_power_n3"][0])
    rep = build_trend_report(code, df)
    assert rep.subtitle == "3 nights with a hypnogram."
    assert "1 natural (record-only) and 2 stimulated nights; 67% of nights" in rep.sections[0].blocks[0]
    side = next(b for b in rep.sections[0].blocks if isinstance(b, Table)).rows
    row = next(r for r in side if r[0].startswith("TST"))
    stim_mean = (tst[0] + tst[2]) / 2
    assert row[1:] == [f"{tst[1]:.1f}", f"{stim_mean:.1f}", f"{stim_mean - tst[1]:.1f}"]
    clicks = next(r for r in side if r[0].startswith("CLAS"))
    assert clicks[1:] == ["0.0", "3.0", "3.0"]
    with pytest.raises(NotFoundError, match="No client 'nobody'"):
        client_trend(store, "nobody")


def test_report_and_trend_commands(store, nights, db_url, tmp_path, capsys):
    out = tmp_path / "night.pdf"
    assert main(["report", "night-1", "--database", db_url, "--no-events", "-o", str(out)]) == 0
    assert out.read_bytes()[:5] == b"%PDF-"
    assert main(["report", "--session", "night-2", "--database", db_url, "-o", str(tmp_path / "n2.html")]) == 0
    assert main(["report", "--client", "C-7", "--database", db_url, "-o", str(tmp_path / "trend.html")]) == 0
    assert main(["report", "night-9", "--database", db_url, "-o", str(tmp_path / "x.html")]) == 3
    assert "No session 'night-9'" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["trend", "C-7", "--database", db_url, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [n["mode"] for n in got["nights"]] == ["stimulation", "record_only", "stimulation"]
    assert got["nights"][2]["arousal_index"] is None
    assert main(["trend", "C-7", "--database", db_url]) == 0
    text = capsys.readouterr().out
    assert "natural" in text and "stimulated" in text and "TST (min)" in text
    assert np.isfinite(got["nights"][0]["TST"])


def test_facility_summary(store, nights, db_url, tmp_path, capsys):
    first = facility_night(store, "2026-03-01")
    assert [b["session"] for b in first.beds] == ["night-1"]
    rows = {r[0]: r[1:] for r in alarm_table(first.alarms)}
    assert rows["high"] == ["1", "1", "45.0", "45.0"]  # acknowledged 45 s after the distress alarm
    assert rows["medium"] == ["1", "0", "n/a", "n/a"]  # never acknowledged: no response time, not 0
    assert rows["low"] == ["0", "0", "n/a", "n/a"]
    latest = facility_night(store)  # the latest night: the bed extracted at once and aborted
    assert latest.date.isoformat() == "2026-03-03" and latest.extractions[0]["session"] == "night-3"
    rep = build_facility_report(latest)
    text = to_html(rep)
    assert "1 session started on 2026-03-03" in text
    assert "1 bed: 0 natural (record-only) and 1 stimulated night;" in text
    assert "1 extraction, 1 session ended early" in text and "extraction: immediate (distress)" in text
    with pytest.raises(InvalidInputError, match="expected YYYY-MM-DD"):
        facility_night(store, "03/01/2026")
    with pytest.raises(NotFoundError, match="No session started on 2026-04-01"):
        facility_night(store, "2026-04-01")
    out = tmp_path / "facility.html"
    assert main(["report", "--facility", "--date", "2026-03-02", "--database", db_url, "-o", str(out)]) == 0
    assert "Facility night of 2026-03-02" in out.read_text()
    assert main(["report", "--facility", "night-1", "--database", db_url, "-o", str(out)]) == 2
    assert "exactly one of" in capsys.readouterr().err


def test_a_night_still_running_from_its_live_bed(store, nights):
    # what the facility service holds of a running bed stands in for the rows written when the night ends
    dens = [[0.1, 0.1, 0.6, 0.1, 0.1]] * 4
    decisions = [{"t_s": 600.0 + k, "kind": "click", "command": {"kind": "click"}, "reason": "up-state"}
                 for k in range(200)]
    live = LiveBed({"epoch_s": 30.0, "stages": [0, 1, 2, 2], "confidence": [0.9] * 4, "hypnodensity": dens},
                   decisions, {"arousal": 3, "spindle": 7}, command_counts={"click": 950, "cue": 2})
    d = night_from_session(store, "night-3", detect=False, live=live)
    assert d.hypnogram is not None and d.hypnogram.stages.tolist() == [0, 1, 2, 2]
    assert d.hypnogram.probabilities is not None and d.hypnogram.probabilities.shape == (4, 5)
    assert d.event_counts == {"arousal": 3, "spindle": 7} and len(d.decisions) == 200
    page = to_html(build_night_report(d))
    assert "Arousal index: 120.0 per hour of sleep" in page  # 3 arousals in 1.5 min of sleep so far
    assert "latest 200 decisions (from 10 min into the night)" in page
    assert "The recording is stored when the night ends" in page
    assert "The program played 950 soft clicks" in page  # all night's, not the 200 decisions kept
    assert "Every decision" not in page  # the caption says which decisions the table counts
    assert "The latest 200 decisions of the dreamscape controller (from 10 min into the night)" in page
