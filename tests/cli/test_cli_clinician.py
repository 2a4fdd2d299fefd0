"""A clinician from the command line: added as staff, sees a client only while the client shares; 'client list'."""

import json


def test_client_list_and_a_clinician_who_sees_only_what_is_shared(db, cli):
    assert cli("user", "add", "dr-lee", "--role", "clinician", "--no-password")[0] == 0
    assert cli("client", "add", "C-1", "--consent", "recording,audio")[0] == 0
    code, out, _ = cli("client", "list", "--json")
    assert code == 0 and [(c["code"], c["consent"]) for c in json.loads(out)] == [("C-1", ["recording", "audio"])]
    code, _, err = cli("client", "show", "C-1", "--as", "dr-lee")
    assert code == 77 and err.count("\n") == 1 and "'clinician_sharing'" in err
    assert cli("client", "list", "--as", "dr-lee")[0] == 77  # no list of everyone for a clinician
    assert cli("client", "consent", "C-1", "--grant", "clinician_sharing")[0] == 0
    code, out, _ = cli("client", "show", "C-1", "--as", "dr-lee")
    assert code == 0 and "clinician_sharing" in out
    code, _, err = cli("client", "consent", "C-1", "--revoke", "audio", "--as", "dr-lee")
    assert code == 77 and "may not consent.change" in err
    code, out, _ = cli("audit", "log", "--json")
    denied = [json.loads(x) for x in out.splitlines() if json.loads(x)["action"] == "access.denied"]
    assert [d["actor"] for d in denied] == ["dr-lee"] * 3
    code, out, _ = cli("client", "show", "C-1")
    assert "Consent: recording, audio, clinician_sharing" in out  # the clinician changed nothing
