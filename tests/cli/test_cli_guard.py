"""``nexus audit``, ``nexus user`` and ``nexus client``: outputs, exit codes, one-line errors (SQLite in tmp)."""

import json
import sqlite3
import zipfile


def test_client_consent_and_audit_verify(db, cli):
    assert cli("client", "add", "C-1", "--consent", "recording,audio,stimulation")[0] == 0
    code, out, _ = cli("client", "consent", "C-1", "--revoke", "audio")
    assert code == 0 and "Consent: recording\n" in out and "record_only" in out
    code, out, _ = cli("audit", "verify", "--json")
    rep = json.loads(out)
    assert code == 0 and rep["ok"] and rep["entries"] == 3
    code, out, _ = cli("audit", "log", "--client", "C-1", "--json")
    assert [json.loads(x)["action"] for x in out.splitlines()] == [
        "client.add", "access.consent.change", "consent.change"]


def test_tampered_database_fails_verify_and_names_the_entry(db, tmp_path, cli):
    cli("client", "add", "C-1", "--consent", "recording")
    cli("client", "consent", "C-1", "--grant", "audio")
    assert cli("audit", "checkpoint", "-o", str(tmp_path / "cp.json"))[0] == 0
    with sqlite3.connect(db) as c:
        c.execute("UPDATE audit_entries SET payload = '{\"scopes\": []}' WHERE seq = 1")
    code, _, err = cli("audit", "verify")
    assert code == 1 and err.startswith("Error: Audit chain BROKEN at entry 1:") and "edited" in err
    code, out, _ = cli("audit", "verify", "--json")
    assert code == 1 and json.loads(out)["first_bad_seq"] == 1


def test_truncation_found_with_an_outside_checkpoint(db, tmp_path, cli):
    cli("client", "add", "C-1", "--consent", "recording")
    cli("client", "consent", "C-1", "--grant", "audio")
    cli("audit", "checkpoint", "-o", str(tmp_path / "cp.json"))
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM audit_entries WHERE seq >= 2")
        c.execute("DELETE FROM audit_checkpoints")
        c.execute("DELETE FROM audit_head")
    assert cli("audit", "verify")[0] == 0
    code, _, err = cli("audit", "verify", "--checkpoint", str(tmp_path / "cp.json"))
    assert code == 1 and "cut" in err


def test_users_tokens_and_roles(db, cli):
    assert cli("user", "add", "tess", "--role", "technician", "--no-password")[0] == 0
    assert cli("user", "add", "audrey", "--role", "auditor", "--no-password")[0] == 0
    code, out, _ = cli("user", "list", "--json")
    assert [(u["username"], u["role"]) for u in json.loads(out)] == [("audrey", "auditor"), ("tess", "technician")]
    code, out, _ = cli("user", "token", "tess", "--days", "1")
    assert code == 0 and out.startswith("nxt_")
    # an auditor may not add users or read personal fields; a technician may not read the audit log
    code, _, err = cli("user", "add", "eve", "--role", "admin", "--no-password", "--as", "audrey")
    assert code == 77 and "auditor 'audrey' may not user.manage" in err
    code, _, err = cli("audit", "log", "--as", "tess")
    assert code == 77 and "may not audit.read" in err
    code, _, err = cli("user", "add", "x", "--role", "admin", "--no-password", "--as", "nobody")
    assert code == 3 and "No staff user 'nobody'" in err


def test_break_glass_needs_a_reason(db, cli):
    cli("user", "add", "tess", "--role", "technician", "--no-password")
    code, _, err = cli("user", "break-glass", "tess", "--reason", "help")
    assert code == 2 and err.startswith("Error: Break-glass needs a reason")
    code, out, err = cli("user", "break-glass", "tess", "--reason", "console down, bed 2 must be woken",
                          "--minutes", "10")
    assert code == 0 and out.strip().splitlines()[-1].startswith("nxt_") and "BREAK-GLASS" in err
    code, out, _ = cli("audit", "log", "--action", "break_glass", "--json")
    assert json.loads(out)["payload"]["reason"] == "console down, bed 2 must be woken"


def test_bad_consent_input_gets_one_line_errors(db, cli):
    cli("client", "add", "C-1")
    code, _, err = cli("client", "consent", "C-1", "--grant", "stimulation")
    assert code == 2 and "'stimulation' needs 'audio' too" in err
    code, _, err = cli("client", "consent", "C-1", "--grant", "recordng")
    assert code == 2 and "Did you mean 'recording'" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("client", "consent", "C-404", "--grant", "recording")
    assert code == 3 and "No client 'C-404'" in err


def test_export_and_erase(db, tmp_path, cli):
    cli("client", "add", "C-1", "--name", "Rosa", "--consent", "recording")
    code, out, _ = cli("client", "export", "C-1", "-o", str(tmp_path / "c1.zip"))
    assert code == 0
    with zipfile.ZipFile(tmp_path / "c1.zip") as z:
        assert json.loads(z.read("client.json"))["display_name"] == "Rosa"
    code, out, _ = cli("client", "erase", "C-1", "--yes")
    assert code == 0 and out.startswith("Erased: 0 sessions")
    code, out, _ = cli("client", "show", "C-1")
    assert code == 3  # the code was erased too
    code, out, _ = cli("audit", "verify")
    assert code == 0
    code, out, _ = cli("audit", "log", "--action", "client.erase", "--json")
    assert "Rosa" not in out and json.loads(out)["payload"]["sessions"] == 0


def test_audit_show_explains_each_stimulus_and_flags_exploitation(db, cli):
    from nexus.core.settings import load_settings
    from nexus.store import open_store
    from nexus.store.audit import append_many, decision_records
    from nexus.store.models import NightSession

    cli("client", "add", "C-1", "--consent", "recording,audio,stimulation")
    store = open_store(load_settings())
    try:
        with store.session() as s:
            from nexus.store.access import get_client

            night = NightSession(client_id=get_client(s, "C-1").id)
            s.add(night)
            s.flush()
            decisions = [
                {"t": 100.0, "session": 0, "kind": "click", "command": {"kind": "click", "level_db": -30},
                 "inputs": {"phase_deg": 2.0, "p_n3": 0.9}, "reason": "CLAS: up-state predicted"},
                {"t": 200.0, "session": 0, "kind": "quiet", "command": {"kind": "silence"},
                 "inputs": {"distress": True}, "reason": "Distress: stop at once."},
                {"t": 220.0, "session": 0, "kind": "cue", "command": {"kind": "cue", "level_db": -38},
                 "inputs": {"stage": "N1"}, "reason": "incubation cue"},
            ]
            append_many(s, decision_records(night.id, decisions))
    finally:
        store.close()
    code, out, _ = cli("audit", "show", "--client", "C-1")
    assert code == 0
    lines = out.splitlines()
    assert "CLAS: up-state predicted" in lines[0] and '"phase_deg": 2.0' in lines[0]
    assert "1 anti-exploitation violation(s)" in out and "after distress" in out
    assert cli("user", "add", "tess", "--role", "technician", "--no-password")[0] == 0
    code, out, _ = cli("audit", "show", "--client", "C-1", "--as", "tess", "--json")
    assert code == 0 and len(json.loads(out)["decisions"]) == 3


def test_research_export_needs_research_consent(db, tmp_path, cli):
    cli("client", "add", "C-1", "--consent", "recording")
    cli("client", "add", "C-2", "--consent", "recording,research")
    cli("user", "add", "tess", "--role", "technician", "--no-password")
    code, out, _ = cli("client", "research-export", "-o", str(tmp_path / "r.zip"))
    assert code == 0 and "1 client(s) with research consent, 1 skipped" in out
    code, _, err = cli("client", "research-export", "-o", str(tmp_path / "t.zip"), "--as", "tess")
    assert code == 77 and "may not research.export" in err


def test_client_invite_and_password_give_a_portal_login(db, cli, monkeypatch):
    from nexus.core.settings import load_settings
    from nexus.store import open_store
    from nexus.store.client_login import client_login, enrol_client

    assert cli("client", "add", "C-1", "--consent", "recording")[0] == 0
    assert cli("user", "add", "tom", "--role", "technician", "--no-password")[0] == 0
    code, _, err = cli("client", "invite", "C-1", "--as", "tom")
    assert code == 77 and err.count("\n") == 1  # only an admin invites
    code, out, err = cli("client", "invite", "C-1", "--days", "2")
    assert code == 0 and out.startswith("nxi_") and out.count("\n") == 1 and "valid until" in err
    code, _, err = cli("client", "invite", "C-404")
    assert code != 0 and err.count("\n") == 1 and "C-404" in err
    store = open_store(load_settings())
    try:
        assert enrol_client(store, "C-1", out.strip(), "a lighthouse in the pines").client_id
        monkeypatch.setattr("click.prompt", lambda *a, **k: "a new password of mine")  # asked twice, hidden
        code, out, _ = cli("client", "password", "C-1")
        assert code == 0 and "portal.html" in out
        assert client_login(store, "C-1", "a new password of mine").client_id
    finally:
        store.close()
