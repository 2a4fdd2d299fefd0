"""Client data rights on SQLite and PostgreSQL: consent changes, journal privacy, export, erasure."""

import json
import zipfile

import pytest

from nexus.core.errors import InvalidInputError, NotFoundError, StateError
from nexus.core.glitches import AlarmPriority, GlitchCategory
from nexus.guard.policy import SYSTEM, AccessDenied, Principal, Role
from nexus.store.access import add_user
from nexus.store.audit import entries, verify
from nexus.store.clients import (
    add_client,
    add_journal_entry,
    client_scopes,
    client_view,
    erase_client,
    export_client,
    psyche_glitches,
    read_journal,
    research_export,
    set_consent,
)
from nexus.store.models import (
    Client,
    DecisionRow,
    Event,
    GlitchRow,
    HypnogramRow,
    JournalEntry,
    NightSession,
    SessionMode,
)

SECRET_DREAM = "I was back at school and the stairs never ended."


@pytest.fixture
def world(store, tmp_path):
    data = tmp_path / "nexus-data"
    data.mkdir(exist_ok=True)
    with store.session() as s:
        c = add_client(s, "C-7", display_name="Rosa Example", birth_year=1985, sex="F",
                       scopes=["recording", "audio", "stimulation"])
        add_user(s, "tess", "technician")
        night = NightSession(client_id=c.id, bed="B1", mode=SessionMode.STIMULATION)
        s.add(night)
        s.flush()
        for st in ("calibrating", "running", "extracting", "ended"):
            night.transition_to(st)
        rec = data / "recordings" / f"{night.id}.edf"
        rec.parent.mkdir()
        rec.write_bytes(b"0       fake edf bytes")
        night.recording_path = str(rec.relative_to(data))
        night.hypnograms.append(HypnogramRow(kind="live", stages=[0, 1, 2, 2, 3, 3, 2, 4, 0]))
        night.events.append(Event(onset_s=40.0, duration_s=0.8, description="spindle", channel="C4"))
        night.glitches.append(GlitchRow(onset_s=300.0, category=GlitchCategory.PSYCHE, kind="distress",
                                        priority=AlarmPriority.HIGH, message="HR surge in R"))
        night.decisions.append(DecisionRow(t_s=120.0, kind="click", command={"level_db": -30},
                                           inputs={"phase_deg": 3.0}, reason="CLAS"))
        other = add_client(s, "C-8", scopes=["recording"])
        return {"client": c.id, "session": night.id, "data": data, "rec": rec, "other": other.id}


def _me(world):
    return Principal(f"client:{world['client']}", Role.CLIENT, client_id=world["client"])


def test_consent_change_is_audited_and_effective(store, world):
    ch = set_consent(store, _me(world), "C-7", revoke=["audio"])
    assert ch.revoked == ["audio", "stimulation"]
    with store.session() as s:
        assert client_scopes(s, "C-7") == ["recording"]
        (e,) = entries(s, action_prefix="consent.change")
    assert e.actor == f"client:{world['client']}" and e.payload["after"] == ["recording"]
    with pytest.raises(AccessDenied, match="only on their own data"):
        set_consent(store, _me(world), "C-8", grant=["audio"])
    with pytest.raises(AccessDenied, match="may not consent"):
        set_consent(store, Principal("tess", Role.TECHNICIAN), "C-7", grant=["audio"])
    with pytest.raises(NotFoundError, match="No client 'C-99'"):
        set_consent(store, SYSTEM, "C-99", grant=["audio"])
    with store.session() as s:
        assert client_scopes(s, "C-7") == ["recording"]  # refusals changed nothing


def test_journal_is_private_to_the_client(store, world):
    add_journal_entry(store, _me(world), world["client"], SECRET_DREAM, mood="uneasy")
    assert [e["text"] for e in read_journal(store, _me(world), "C-7")] == [SECRET_DREAM]
    for role in (Role.TECHNICIAN, Role.AUDITOR, Role.ADMIN, Role.BREAK_GLASS):
        with pytest.raises(AccessDenied):
            read_journal(store, Principal("staff", role), "C-7")
    with pytest.raises(AccessDenied):
        add_journal_entry(store, Principal("tess", Role.TECHNICIAN), "C-7", "planted text")
    with pytest.raises(InvalidInputError, match="Empty journal entry"):
        add_journal_entry(store, _me(world), "C-7", "  ")
    with pytest.raises(InvalidInputError, match="NUL character"):
        add_journal_entry(store, _me(world), "C-7", "a\x00b")
    with pytest.raises(InvalidInputError, match="printable"), store.session() as s:
        add_client(s, "C\x00")
    with store.session() as s:
        texts = json.dumps([e.payload for e in entries(s)])
    assert "stairs" not in texts  # the audit log holds no journal content


def test_export_erase_export(store, world, tmp_path):
    add_journal_entry(store, _me(world), "C-7", SECRET_DREAM)
    first = export_client(store, _me(world), "C-7", tmp_path / "before.zip", data_dir=world["data"])
    with zipfile.ZipFile(tmp_path / "before.zip") as z:
        names = set(z.namelist())
        client = json.loads(z.read("client.json"))
        sessions = json.loads(z.read("sessions.json"))
        journal = json.loads(z.read("journal.json"))
        manifest = json.loads(z.read("manifest.json"))
        hyp = z.read(next(n for n in names if n.startswith("hypnograms/"))).decode()
        for name, meta in manifest["files"].items():
            import hashlib
            assert hashlib.sha256(z.read(name)).hexdigest() == meta["sha256"]
    assert manifest == first
    assert client["display_name"] == "Rosa Example"
    assert sessions[0]["glitches"][0]["kind"] == "distress" and sessions[0]["decisions"][0]["kind"] == "click"
    assert journal[0]["text"] == SECRET_DREAM
    assert f"recordings/{world['session']}.edf" in names and f"events/{world['session']}.tsv" in names
    assert hyp.splitlines()[0].split("\t")[:3] == ["onset", "duration", "stage"]

    counts = erase_client(store, SYSTEM, "C-7", data_dir=world["data"])
    assert counts == {"sessions": 1, "journal_entries": 1, "programs": 0, "files": 1}
    assert not world["rec"].exists()
    with store.session() as s:
        c = s.get(Client, world["client"])
        assert (c.display_name, c.birth_year, c.sex, c.intake, c.consent_scopes) == (None, None, None, {}, [])
        assert c.erased_at is not None
        assert s.get(NightSession, world["session"]) is None
        assert s.query(JournalEntry).count() == 0
        assert s.query(HypnogramRow).count() == s.query(Event).count() == s.query(GlitchRow).count() == 0
        assert s.query(DecisionRow).count() == 0
    assert verify(store).ok  # the audit chain is untouched by the erasure

    export_client(store, SYSTEM, world["client"], tmp_path / "after.zip", data_dir=world["data"])
    with zipfile.ZipFile(tmp_path / "after.zip") as z:
        assert json.loads(z.read("sessions.json")) == []
        assert json.loads(z.read("journal.json")) == []
        assert json.loads(z.read("programs.json")) == []
        assert not [n for n in z.namelist() if n.startswith(("recordings/", "hypnograms/", "events/"))]
        after = json.loads(z.read("client.json"))
        audit = json.loads(z.read("audit.json"))
    assert after["display_name"] is None and after["erased_at"] is not None
    erasures = [a for a in audit if a["action"] == "client.erase"]
    assert len(erasures) == 1 and erasures[0]["payload"] == counts
    assert "Rosa" not in json.dumps(audit) and "stairs" not in json.dumps(audit)
    with pytest.raises(StateError, match="already erased"):
        erase_client(store, SYSTEM, world["client"])


def test_erasure_during_a_running_session_is_refused(store, world):
    with store.session() as s:
        n = NightSession(client_id=world["client"])
        s.add(n)
        s.flush()
        n.transition_to("calibrating")
        n.transition_to("running")
        running = n.id
    with pytest.raises(StateError, match="extract it first"):
        erase_client(store, SYSTEM, "C-7", data_dir=world["data"])
    with store.session() as s:
        assert s.get(Client, world["client"]).display_name == "Rosa Example"  # nothing changed
        assert s.get(NightSession, running) is not None
        assert [e.payload["active_sessions"] for e in entries(s, action_prefix="client.erase.refused")] == [[running]]
    assert world["rec"].exists()


def test_technician_may_not_export_or_erase(store, world, tmp_path):
    tech = Principal("tess", Role.TECHNICIAN)
    with pytest.raises(AccessDenied):
        export_client(store, tech, "C-7", tmp_path / "x.zip")
    with pytest.raises(AccessDenied):
        erase_client(store, tech, "C-7")
    assert not (tmp_path / "x.zip").exists()
    with pytest.raises(InvalidInputError, match=r"must end in \.zip"):
        export_client(store, SYSTEM, "C-7", tmp_path / "x.json")


def test_client_view_has_dependency_and_natural_night(store, world):
    view = client_view(store, _me(world), "C-7")
    assert view["dependency"]["nights"] == 1 and view["dependency"]["stimulated_nights"] == 1
    assert view["natural_night_tonight"]["due"] is False
    assert view["consent"] == ["recording", "audio", "stimulation"]
    assert view["natural_night_tonight"]["reason"].startswith("1 night so far")
    with store.session() as s:  # tonight's natural night under way: counted, and what tonight is
        night = NightSession(client_id=world["client"], bed="B1", mode=SessionMode.RECORD_ONLY)
        s.add(night)
        s.flush()
        night.transition_to("calibrating")
        night.transition_to("running")
    tonight = client_view(store, _me(world), "C-7")["natural_night_tonight"]
    assert tonight == {"due": True, "reason": "under way; 2 nights so far, tonight's included"}


def test_psyche_data_only_with_consent(store, world):
    tech = Principal("tess", Role.TECHNICIAN)
    with pytest.raises(AccessDenied, match="psyche_monitoring"):
        psyche_glitches(store, tech, "C-7")
    assert [g["kind"] for g in psyche_glitches(store, _me(world), "C-7")] == ["distress"]
    set_consent(store, _me(world), "C-7", grant=["psyche_monitoring"])
    assert [g["kind"] for g in psyche_glitches(store, tech, "C-7")] == ["distress"]
    with pytest.raises(AccessDenied):
        psyche_glitches(store, Principal("tess", Role.BREAK_GLASS), "C-7")


def test_research_export_only_with_research_consent(store, world, tmp_path):
    auditor = Principal("audrey", Role.AUDITOR)
    m = research_export(store, auditor, tmp_path / "r0.zip", key="k" * 40)
    assert m["clients"] == 0 and m["skipped_without_consent"] == 2 and m["files"] == {}
    set_consent(store, _me(world), "C-7", grant=["research"])
    m = research_export(store, auditor, tmp_path / "r1.zip", key="k" * 40)
    assert m["clients"] == 1
    with zipfile.ZipFile(tmp_path / "r1.zip") as z:
        blob = b"".join(z.read(n) for n in z.namelist())
    assert world["client"].encode() not in blob and b"Rosa" not in blob and b"distress" not in blob
    assert any(n.endswith(".tsv") for n in m["files"])
    with pytest.raises(AccessDenied, match=r"research\.export"):
        research_export(store, Principal("tess", Role.TECHNICIAN), tmp_path / "r2.zip", key="k" * 40)
    assert not (tmp_path / "r2.zip").exists()


def test_a_clinician_reads_only_what_the_client_shares_and_changes_nothing(store, world):
    """A clinician user (migration 0007) reads the journal and nights only with 'clinician_sharing', psyche detail
    only with 'psyche_monitoring' too; every refusal is audited; a clinician cannot change consent."""
    with store.session() as s:
        add_user(s, "dr-lee", "clinician")
    doc = Principal("dr-lee", Role.CLINICIAN)
    add_journal_entry(store, _me(world), world["client"], SECRET_DREAM)
    with pytest.raises(AccessDenied, match="'clinician_sharing'"):
        read_journal(store, doc, "C-7")
    set_consent(store, _me(world), "C-7", grant=["clinician_sharing"])
    assert [e["text"] for e in read_journal(store, doc, "C-7")] == [SECRET_DREAM]
    with pytest.raises(AccessDenied, match="'psyche_monitoring'"):
        psyche_glitches(store, doc, "C-7")
    set_consent(store, _me(world), "C-7", grant=["psyche_monitoring"])
    assert [g["kind"] for g in psyche_glitches(store, doc, "C-7")] == ["distress"]
    with pytest.raises(AccessDenied, match=r"may not consent\.change"):
        set_consent(store, doc, "C-7", revoke=["clinician_sharing"])
    set_consent(store, _me(world), "C-7", revoke=["clinician_sharing"])  # the client stops sharing: at once
    with pytest.raises(AccessDenied):
        read_journal(store, doc, "C-7")
    with store.session() as s:
        denied = [e.payload["action"] for e in entries(s, action_prefix="access.denied") if e.actor == "dr-lee"]
    assert denied == ["journal.read", "psyche.read", "consent.change", "journal.read"]
