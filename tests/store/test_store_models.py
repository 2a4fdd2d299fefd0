"""Storage round trips on SQLite and PostgreSQL: migrations, every table, the session state machine."""

import pytest
from sqlalchemy import select, text

from nexus.core.errors import MigrationError, StateError, StorageError
from nexus.core.glitches import AlarmPriority, GlitchCategory
from nexus.core.lifecycle import SessionState
from nexus.core.settings import load_settings
from nexus.store import check_schema, current_revision, head_revision, open_store, upgrade
from nexus.store.models import (
    AuditEntry,
    Client,
    DecisionRow,
    DreamscapeProgram,
    Event,
    GlitchRow,
    HypnogramRow,
    NightSession,
    SessionMode,
    StaffRole,
    StaffUser,
)


def test_upgrade_reaches_head_and_is_idempotent(store):
    assert current_revision(store.engine) == head_revision()
    before, after = upgrade(store.engine)
    assert before == after == head_revision()
    check_schema(store.engine)


def test_full_round_trip(store):
    with store.session() as s:
        client = Client(
            code="C-001",
            birth_year=1990,
            sex="F",
            intake={"goals": ["deeper_sleep"]},
            consent_scopes=["record", "stimulate"],
        )
        tech = StaffUser(username="tess", role=StaffRole.TECHNICIAN)
        prog = DreamscapeProgram(client=client, name="Forest", body={"dreamscape": 1}, sha256="0" * 64)
        s.add_all([client, tech, prog])
        s.flush()
        night = NightSession(client=client, program_id=prog.id, bed="B12", mode=SessionMode.RECORD_ONLY)
        s.add(night)
        s.flush()
        night.hypnograms.append(HypnogramRow(kind="live", stages=[0, 1, 2, 3, 4, -1, -2], confidence=[0.9] * 7))
        night.events.append(
            Event(
                onset_s=12.5,
                duration_s=0.8,
                description="spindle",
                channel="EEG C4-M1",
                extra={"freq_hz": 13.1},
            )
        )
        night.glitches.append(
            GlitchRow(
                onset_s=60.0,
                category=GlitchCategory.TECHNICAL,
                kind="electrode_off",
                priority=AlarmPriority.MEDIUM,
                channel="EEG C4-M1",
                message="C4 off",
            )
        )
        night.decisions.append(
            DecisionRow(
                t_s=61.0,
                kind="silence",
                command={"for_s": 60},
                inputs={"glitch": "electrode_off"},
                reason="glitch",
            )
        )
        s.add(
            AuditEntry(
                seq=1,
                actor="system",
                action="session.create",
                subject=night.id,
                payload={"bed": "B12"},
                prev_hash="0" * 64,
                hash="a" * 64,
            )
        )
        night_id = night.id

    with store.session() as s:
        night = s.get(NightSession, night_id)
        assert night.state is SessionState.PREPARED
        assert night.mode is SessionMode.RECORD_ONLY
        assert night.client.code == "C-001"
        assert night.client.intake == {"goals": ["deeper_sleep"]}
        assert night.hypnograms[0].stages == [0, 1, 2, 3, 4, -1, -2]
        assert night.events[0].extra["freq_hz"] == pytest.approx(13.1)
        assert night.glitches[0].priority is AlarmPriority.MEDIUM
        assert night.decisions[0].command == {"for_s": 60}
        assert s.scalars(select(StaffUser.role)).one() is StaffRole.TECHNICIAN
        assert s.get(AuditEntry, 1).payload == {"bed": "B12"}


def test_session_state_machine_persists(store):
    with store.session() as s:
        c = Client(code="C-2")
        n = NightSession(client=c)
        s.add(n)
        s.flush()
        for target in ("calibrating", "running", "extracting", "ended"):
            n.transition_to(target, reason="night over")
        nid = n.id
    with store.session() as s:
        n = s.get(NightSession, nid)
        assert n.state is SessionState.ENDED
        assert n.started_at is not None and n.ended_at is not None
        assert n.end_reason == "night over"
        with pytest.raises(StateError, match="cannot go from 'ended' to 'running'"):
            n.transition_to("running")


def test_database_refuses_invalid_enum_values(store):
    with store.session() as s:
        s.add(Client(id="c1", code="C-3"))
    with pytest.raises(Exception, match=r"(?i)check|constraint"), store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sessions (id, client_id, mode, state, created_at, state_changed_at) "
                "VALUES ('s1', 'c1', 'stimulation', 'lost', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )


def test_deleting_a_client_erases_their_nights(store):
    with store.session() as s:
        c = Client(code="C-4")
        n = NightSession(client=c)
        n.events.append(Event(onset_s=1.0, description="spindle"))
        s.add(n)
    with store.session() as s:
        s.delete(s.scalars(select(Client)).one())
    with store.session() as s:
        assert s.scalars(select(NightSession)).all() == []
        assert s.scalars(select(Event)).all() == []


def test_newer_database_is_refused_and_left_untouched(store):
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(MigrationError, match="newer than this code"):
        check_schema(store.engine)
    with pytest.raises(MigrationError, match="newer than this code"):
        upgrade(store.engine)
    assert current_revision(store.engine) == "9999_future"


def test_empty_database_must_be_upgraded(db_url):
    s = open_store(load_settings(database_url=db_url), create=True, check=False)
    try:
        with pytest.raises(MigrationError, match="Run 'nexus db upgrade'"):
            check_schema(s.engine)
    finally:
        s.close()


def test_missing_sqlite_file_is_not_created_without_upgrade(tmp_path):
    settings = load_settings(data_dir=tmp_path / "data")
    with pytest.raises(StorageError, match=r"cannot be created|No database"):
        open_store(settings)
    assert not (tmp_path / "data").exists()
