"""``nexus worker``: open a floor, see who runs what, and one clear line for a database a worker cannot reach."""

from __future__ import annotations

import json

import pytest

from nexus.cli.main import main


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("NEXUS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_open_then_status_lists_the_beds_waiting_for_a_worker(data, capsys):
    assert main(["worker", "open", "--clients", "3", "--hours", "0.5", "--run", "c1"]) == 0
    assert "Opened 3 beds (c1-0001 … c1-0003)" in capsys.readouterr().out
    assert main(["worker", "status"]) == 0
    assert "3 open beds (3 waiting for a worker), 0 takeovers so far." in capsys.readouterr().out
    assert main(["worker", "status", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert [b["session"] for b in st["beds"]] == ["c1-0001", "c1-0002", "c1-0003"]
    assert {b["state"] for b in st["beds"]} == {"prepared"}
    # the same run id again: refused, nothing written twice
    assert main(["worker", "open", "--clients", "2", "--run", "c1"]) == 4
    assert "already exist" in capsys.readouterr().err
    assert main(["sessions", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_a_worker_that_cannot_reach_the_database_says_so_in_one_line(data, monkeypatch, capsys):
    monkeypatch.setenv("NEXUS_DATABASE_URL", "postgresql+psycopg://nobody:x@127.0.0.1:9/nexus")
    assert main(["worker", "run", "--seconds", "1"]) == 74
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: Cannot open the database")
    assert "Check NEXUS_DATABASE_URL" in err
    assert len(err.splitlines()) == 1


def test_a_heartbeat_slower_than_half_the_lease_is_refused(data, capsys):
    assert main(["worker", "open", "--clients", "1", "--run", "c2"]) == 0
    assert main(["worker", "run", "--lease", "1", "--heartbeat", "0.8", "--seconds", "1"]) == 2
    assert "beat at least twice per lease" in capsys.readouterr().err
