"""``nexus record`` from a BrainFlow board (the real synthetic board, offline) and from EDF replays."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nexus.cli.main import main
from nexus.formats.edf import read_edf


def _summary(out: Path) -> dict:
    return json.loads((out / "record.json").read_text())


def _rows(ids: list[str]) -> list:
    from sqlalchemy import select

    from nexus.facility.records import open_db
    from nexus.store.models import NightSession

    store = open_db()
    try:
        with store.session() as s:
            rows = list(s.scalars(select(NightSession).where(NightSession.id.in_(ids))))
            s.expunge_all()
            return rows
    finally:
        store.close()


@pytest.mark.slow
def test_brainflow_synthetic_board_through_record(tmp_path, capsys):
    pytest.importorskip("brainflow")
    out = tmp_path / "bf"
    assert main(["record", "--source", "brainflow:synthetic", "--seconds", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Recorded 1 bed(s); 0 refused" in text
    (bed,) = _summary(out)["beds"]
    assert bed["fs"] == 250.0 and len(bed["channels"]) == 16 and bed["channels"][0] == "EEG Fz"
    r = read_edf(bed["edf"])
    assert [s.label for s in r.signals] == bed["channels"]
    assert not [a for a in r.annotations if a.text.startswith("gap")]  # sample for sample, no hole
    x = np.array([s.data for s in r.signals])
    assert x.shape[1] >= 2 * 250 and 1 < np.std(x) < 1000  # µV scale
    assert bed["counts"]["duplicate"] == 0 and "clock_skew" not in bed["glitches"]
    (row,) = _rows([bed["session"]])
    assert row.state.value == "ended" and row.mode.value == "record_only" and row.source == "brainflow:synthetic"


def test_brainflow_board_not_connected_is_one_line(tmp_path, capsys):
    pytest.importorskip("brainflow")
    rc = main(["record", "--source", "brainflow:cyton:serial=/dev/nonexistent-nexus", "--seconds", "2",
               "--out", str(tmp_path / "o"), "--no-db"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 3
    assert len(err) == 1 and err[0].startswith("Error: Cannot start BrainFlow board 0")


def test_replay_of_real_recordings_gives_back_the_same_samples(tmp_path, data_dir, capsys):
    src = tmp_path / "nights"
    src.mkdir()
    shutil.copy(data_dir / "sleep-edf" / "SC4001E0-PSG_first5min.edf", src)
    shutil.copy(data_dir / "sleep-edf" / "SC4001EC-Hypnogram.edf", src)  # annotations only: refused, alone
    out = tmp_path / "replayed"
    rc = main(["record", "--source", f"replay:{src}:speed=200", "--seconds", "600", "--out", str(out),
               "--no-analyze"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "Refused: Recording 'SC4001EC-Hypnogram.edf' has no signal in a potential unit" in text
    (bed,) = _summary(out)["beds"]
    orig = read_edf(src / "SC4001E0-PSG_first5min.edf")
    got = read_edf(bed["edf"])
    assert [s.label for s in got.signals] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]  # the 100-Hz potentials
    for s in got.signals:
        o = orig.channel(s.label)
        assert len(s.data) == len(o.data) == 30000
        step = (s.data.max() - s.data.min()) / 65535  # the EDF's 16-bit resolution
        np.testing.assert_allclose(s.data, o.data, atol=step, rtol=0)
    assert not [a for a in got.annotations if a.text.startswith("gap")]


def test_bed_map_matches_clients_and_their_consent_decides(tmp_path, data_dir, capsys):
    from nexus.facility.records import open_db
    from nexus.store.models import Client

    store = open_db()
    try:
        with store.session() as s:
            s.add(Client(code="C-1", consent_scopes=["research"]))  # never consented to recording
            s.add(Client(code="C-2", consent_scopes=["recording"]))
    finally:
        store.close()
    src = tmp_path / "nights"
    src.mkdir()
    for name in ("a", "b", "c", "d"):
        shutil.copy(data_dir / "sleep-edf" / "SC4001E0-PSG_first5min.edf", src / f"{name}.edf")
    (tmp_path / "beds.yaml").write_text("a: C-1\nb: {client: C-2, bed: bed-7}\nc: C-404\n")
    out = tmp_path / "o"
    rc = main(["record", "--source", f"replay:{src}:speed=400", "--seconds", "600", "--out", str(out),
               "--no-analyze", "--beds", str(tmp_path / "beds.yaml")])
    text = capsys.readouterr().out
    assert rc == 0
    assert "Refused: replay:a.edf could not start: Session" in text and "consented to 'recording'" in text
    assert "client C-404 of the bed map is not in the facility database; it records as an unassigned bed" in text
    beds = {b["label"]: b for b in _summary(out)["beds"]}
    assert set(beds) == {"b", "c", "d"}
    assert beds["b"]["client"] == "C-2" and beds["c"]["client"] is None and beds["d"]["client"] is None
    rows = {r.id: r for r in _rows([b["session"] for b in beds.values()])}
    assert rows[beds["b"]["session"]].bed == "bed-7"
    assert len(rows) == 3 and {r.state.value for r in rows.values()} == {"ended"}


@pytest.mark.parametrize(("spec", "says"), [
    ("replay:x:speed=q", "Bad --source 'replay:x:speed=q': speed= must be a number, not 'q'"),
    ("lsl:type=EEG:nme=x", "Bad --source"),
])
def test_run_shares_the_source_spec(spec, says, capsys):
    assert main(["run", "--source", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]


def test_run_from_a_replay_folder_that_is_not_there_is_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rc = main(["run", "--source", f"replay:{tmp_path / 'none'}", "--port", str(port)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "Replay folder" in err[0] and "does not exist" in err[0]


def test_an_unassigned_bed_is_assigned_by_a_technician(tmp_path, data_dir, capsys):
    from sqlalchemy import select

    from nexus.facility.records import open_db
    from nexus.store.models import AuditEntry, Client, NightSession

    src = tmp_path / "n"
    src.mkdir()
    shutil.copy(data_dir / "sleep-edf" / "SC4001E0-PSG_first5min.edf", src / "amp3.edf")
    assert main(["record", "--source", f"replay:{src}:speed=400", "--seconds", "600", "--out", str(tmp_path / "o"),
                 "--no-analyze"]) == 0
    (bed,) = _summary(tmp_path / "o")["beds"]
    store = open_db()
    try:
        with store.session() as s:
            s.add(Client(code="C-9", consent_scopes=[]))
            s.add(Client(code="C-8", consent_scopes=["recording"]))
    finally:
        store.close()
    capsys.readouterr()
    assert main(["assign", bed["session"], "C-9"]) == 4  # no consent to recording
    assert "has not consented to 'recording'" in capsys.readouterr().err
    assert main(["assign", bed["session"], "C-8"]) == 0
    assert main(["assign", bed["session"], "C-8"]) == 4  # already assigned
    assert main(["assign", "nope", "C-8"]) == 3
    store = open_db()
    try:
        with store.session() as s:
            row = s.get(NightSession, bed["session"])
            assert s.get(Client, row.client_id).code == "C-8"
            assert not s.scalars(select(Client).where(Client.code.like("unassigned-%"))).all()  # placeholder gone
            assert s.scalars(select(AuditEntry).where(AuditEntry.action == "session.assigned")).one().subject \
                == bed["session"]
    finally:
        store.close()
