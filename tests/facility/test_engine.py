"""The whole engine: synthetic fleet and EDF replay through the default analyzers, simulate and bench CLIs."""

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from nexus.cli.main import main
from nexus.core.clock import ManualClock
from nexus.facility.supervisor import Supervisor
from nexus.sources.edf_replay import EdfReplaySource
from nexus.sources.synthetic.fleet import SyntheticFleet
from nexus.store.recording import RecordingJournal, recover_journal

DATA = Path(__file__).resolve().parents[1] / "data" / "sleep-edf" / "SC4001E0-PSG_first5min.edf"
CH = ("EEG C4-M1", "EOG E1-M2", "EOG E2-M2", "EMG Chin", "ECG")


def test_fleet_through_default_analyzers_records_everything(tmp_path):
    clock = ManualClock()
    journal = RecordingJournal(tmp_path / "j", sync_s=0.0)
    sup = Supervisor(clock, journal=journal)
    fleet = SyntheticFleet("typical_adult", seeds=[1, 2, 3], hours=0.2, fs=128, channels=CH)
    names = ["a", "b", "c"]
    sup.add_fleet(fleet, names)
    sup.run(90.0, tick_s=0.5)
    assert sup.counts["received"] == 3 * 90 * 128
    assert sup.counts["missing"] == 0
    assert sup.event_counts.get("r_peak", 0) > 3 * 60  # a heart beats about once a second
    sup.close()
    journal.close()
    assert sup.lanes[0].staged
    assert sup.epochs_staged == 3 * 3  # three 30-s epochs of three beds, staged live
    rec = recover_journal(tmp_path / "j")
    stages = [r for r in rec.records if r["kind"] == "stage"]
    assert sorted({r["onset"] for r in stages}) == [0.0, 30.0, 60.0]
    assert all(-2 <= r["stage"] <= 4 for r in stages)
    # the recording holds exactly what the fleet generated (same seeds, same night)
    ref = SyntheticFleet("typical_adult", seeds=[1, 2, 3], hours=0.2, fs=128, channels=CH).next_chunk(90 * 128)
    for k, name in enumerate(names):
        np.testing.assert_allclose(rec.samples(name), ref[k], rtol=1e-5, atol=1e-3)
    beats = [r for r in rec.records if r["kind"] == "event" and r["description"] == "r_peak"]
    assert {r["session"] for r in beats} == set(names)
    assert all(0 <= r["onset"] <= 90 and r["channel"] == "ECG" for r in beats)


def test_edf_replay_session_in_fast_forward():
    clock = ManualClock()
    sup = Supervisor(clock, analyzers=[])
    src = EdfReplaySource(DATA, clock, "replay", channels=["EEG Fpz-Cz", "EEG Pz-Oz"])
    sup.add_session("replay", src)
    sup.run(20.0, tick_s=1.0)
    assert sup.session_counts("replay")["received"] == 2000
    assert sup.glitches == []


def test_simulate_cli_writes_recordings_database_and_summary(tmp_path, capsys):
    out = tmp_path / "night"
    rc = main(["simulate", "--clients", "2", "--hours", "0.04", "--out", str(out), "--signals", "--no-progress",
               "--natural-share", "0.5", "--reports", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["clients"] == 2 and (summary["programs"], summary["natural"]) == (1, 1)
    assert summary["samples"]["received"] == 2 * 144 * 100
    assert summary["recordings"] == 2
    assert summary["epochs_staged"] == 2 * 4
    names = sorted(b["session"] for b in summary["beds"])
    assert sorted(p.name for p in (out / "hypnograms").iterdir()) == [f"{n}.tsv" for n in names]
    assert json.loads((out / "summary.json").read_text())["clients"] == 2
    edfs = sorted(p for p in (out / "recordings").iterdir() if p.suffix == ".edf")
    assert [p.name for p in edfs] == [f"{n}.edf" for n in names]
    from nexus.formats.edf import read_edf

    rec = read_edf(edfs[0])
    assert names[0] + "-client" in rec.patient  # the client's code, not 'X X X X'
    assert rec.start is not None and (rec.start.hour, rec.start.minute) == (23, 0)  # the night's lights-out
    assert not (out / "nexus.db").exists()  # the facility database, not a private copy
    reports = sorted(p.name for p in (out / "reports").iterdir())
    assert reports == sorted(["facility.html", *(f"{n}.html" for n in names)])
    assert names[0] in (out / "reports" / f"{names[0]}.html").read_text()
    with sqlite3.connect("nexus-data/nexus.db") as db:
        rows = db.execute("select id, state, recording_path, mode, program_id, summary from sessions "
                          "order by id").fetchall()
        n_decisions = db.execute("select count(*) from decisions").fetchone()[0]
        hyp = db.execute("select stages, confidence from hypnograms").fetchall()
    assert [r[:2] for r in rows] == [(names[0], "ended"), (names[1], "ended")]
    assert all(r[2].endswith(".edf") for r in rows)
    assert sorted(r[3] for r in rows) == ["record_only", "stimulation"]
    assert [r[4] is None for r in rows] == [r[3] == "record_only" for r in rows]
    assert all(json.loads(r[5])["natural"] == (r[3] == "record_only") for r in rows)
    assert n_decisions == summary["decisions"] > 0
    with sqlite3.connect("nexus-data/nexus.db") as db:
        audited = db.execute("select count(*) from audit_entries where action like 'decision.%'").fetchone()[0]
    assert audited == n_decisions
    assert main(["audit", "verify"]) == 0  # every decision is in the tamper-evident chain, and it holds
    capsys.readouterr()
    assert len(hyp) == 2 and all(len(json.loads(c)) == 4 for _, c in hyp)
    # nexus sessions lists what ran
    assert main(["sessions", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(r["session"] for r in listed) == names
    assert {r["state"] for r in listed} == {"ended"} and {r["end_reason"] for r in listed} == {"simulated night over"}
    assert main(["sessions", "--state", "running", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["sessions"]) == 0
    assert names[0] in capsys.readouterr().out


def test_simulate_cli_refuses_bad_input(tmp_path, capsys):
    assert main(["simulate", "--clients", "0", "--hours", "1", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "clients" in capsys.readouterr().err
    rc = main(["simulate", "--clients", "1", "--hours", "1", "--profile", "typical_adlt", "--out", str(tmp_path)])
    assert rc == 2
    assert "Did you mean 'typical_adult'" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_live_prints_one_json_object(capsys):
    rc = main(["bench", "live", "--sessions", "3", "--seconds", "0.5", "--channels", "5", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("sessions", "channels", "fs", "seconds", "cpu_percent", "latency_ms_p50", "latency_ms_p99",
                "samples_dropped", "epochs_staged", "realtime"):
        assert key in res
    assert res["sessions"] == 3
    assert res["channels"] == 5
    assert res["samples_dropped"] == 0


def test_simulate_workers_give_the_same_night(tmp_path):
    from nexus.facility.simulate import simulate

    one = simulate(2, 0.02, tmp_path / "one", database=False, run_id="sim", natural_share=0.0)
    two = simulate(2, 0.02, tmp_path / "two", database=False, workers=2, run_id="sim", natural_share=0.0)
    assert one.samples == two.samples
    assert one.epochs_staged == two.epochs_staged == 4
    assert one.events == two.events
    assert one.commands == two.commands and one.decisions == two.decisions > 0
    for name in ("sim-0001.tsv", "sim-0002.tsv"):
        hyp = [(tmp_path / run / "hypnograms" / name).read_text() for run in ("one", "two")]
        assert hyp[0] == hyp[1]


def test_bench_live_can_cut_its_loop_later_in_the_night():
    from nexus.core.errors import InvalidInputError
    from nexus.facility.benchmark import _signals_at, bench_live

    x = _signals_at(150, 0, 0.02, 2.0, 128.0, ("EEG C4-M1", "ECG"))
    assert x.shape == (150, 2, 256)
    np.testing.assert_array_equal(x[120], x[20])  # 100 distinct sleepers, repeated
    assert not np.array_equal(x[0], x[1])
    hours = 0.02 + 2.0 / 3600 + 0.1  # the plan depends on the night's length
    fleet = SyntheticFleet("typical_adult", seeds=[0], hours=hours, fs=128.0, channels=("EEG C4-M1", "ECG"))
    fleet.next_chunk(round(0.02 * 3600 * 128))
    np.testing.assert_allclose(x[0], fleet.next_chunk(256)[0])  # the same sleeper, 72 s in
    with pytest.raises(InvalidInputError, match="pre-generated"):
        bench_live(2, 1.0, start_h=1.0, live_synth=True)
