"""A clinician from the command line: added as staff, sees a client only while the client shares; 'client list'."""

import json

import pytest

from nexus.cli.main import main


@pytest.fixture
def db(tmp_path, capsys):
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    return tmp_path / "nexus-data" / "nexus.db"


def _run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_client_list_and_a_clinician_who_sees_only_what_is_shared(db, capsys):
    assert _run(capsys, "user", "add", "dr-lee", "--role", "clinician", "--no-password")[0] == 0
    assert _run(capsys, "client", "add", "C-1", "--consent", "recording,audio")[0] == 0
    code, out, _ = _run(capsys, "client", "list", "--json")
    assert code == 0 and [(c["code"], c["consent"]) for c in json.loads(out)] == [("C-1", ["recording", "audio"])]
    code, _, err = _run(capsys, "client", "show", "C-1", "--as", "dr-lee")
    assert code == 77 and err.count("\n") == 1 and "'clinician_sharing'" in err
    assert _run(capsys, "client", "list", "--as", "dr-lee")[0] == 77  # no list of everyone for a clinician
    assert _run(capsys, "client", "consent", "C-1", "--grant", "clinician_sharing")[0] == 0
    code, out, _ = _run(capsys, "client", "show", "C-1", "--as", "dr-lee")
    assert code == 0 and "clinician_sharing" in out
    code, _, err = _run(capsys, "client", "consent", "C-1", "--revoke", "audio", "--as", "dr-lee")
    assert code == 77 and "may not consent.change" in err
    code, out, _ = _run(capsys, "audit", "log", "--json")
    denied = [json.loads(x) for x in out.splitlines() if json.loads(x)["action"] == "access.denied"]
    assert [d["actor"] for d in denied] == ["dr-lee"] * 3
    code, out, _ = _run(capsys, "client", "show", "C-1")
    assert "Consent: recording, audio, clinician_sharing" in out  # the clinician changed nothing
