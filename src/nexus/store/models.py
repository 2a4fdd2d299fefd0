"""SQLAlchemy 2 models of the Nexus domain.

Tables: clients, staff_users, dreamscape_programs, sessions, hypnograms, events, glitches,
decisions, audit_entries, facility_runs, extraction_orders, bed_leases, alarms. Times of day are UTC ``datetime``; times
within a night are seconds since the session started (``*_s`` columns).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from nexus.core.glitches import AlarmPriority, GlitchCategory
from nexus.core.lifecycle import SessionState, check_transition


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new random identifier (UUID4 hex, 32 characters)."""
    return uuid.uuid4().hex


def _enum(cls: type[StrEnum], name: str) -> SAEnum:
    # store the value ("running"), not the member name, and check it in Python and SQL
    return SAEnum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base of all Nexus tables."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class StaffRole(StrEnum):
    """Roles of facility staff."""

    TECHNICIAN = "technician"
    CLINICIAN = "clinician"
    AUDITOR = "auditor"
    ADMIN = "admin"


class SessionMode(StrEnum):
    """Whether a night may stimulate, or only records (a natural night)."""

    STIMULATION = "stimulation"
    RECORD_ONLY = "record_only"


class Client(Base):
    """A sleeper. Owns their data; ``consent_scopes`` says what the facility may do with it."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True, doc="Pseudonymous code shown to staff.")
    display_name: Mapped[str | None] = mapped_column(String(200))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    sex: Mapped[str | None] = mapped_column(String(16))
    intake: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="Intake answers (goals, sensitivities).")
    consent_scopes: Mapped[list[Any]] = mapped_column(default=list, doc="Granted consent scopes.")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    password_hash: Mapped[str | None] = mapped_column(String(255), doc="argon2id hash of the portal password.")
    invite_hash: Mapped[str | None] = mapped_column(String(64), doc="SHA-256 of the one-time enrolment code.")
    invite_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0",
                                               doc="Wrong passwords in a row (reset by a good one).")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          doc="No portal login before this time (UTC).")

    sessions: Mapped[list[NightSession]] = relationship(
        back_populates="client", cascade="all, delete-orphan", passive_deletes=True
    )
    programs: Mapped[list[DreamscapeProgram]] = relationship(
        back_populates="client", cascade="all, delete-orphan", passive_deletes=True
    )


class StaffUser(Base):
    """A member of staff: technician, clinician, auditor or admin."""

    __tablename__ = "staff_users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(_enum(StaffRole, "staff_role"))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DreamscapeProgram(Base):
    """One version of a client's dreamscape program (the validated document and its hash)."""

    __tablename__ = "dreamscape_programs"
    __table_args__ = (UniqueConstraint("client_id", "name", "version", name="uq_program_version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    schema_version: Mapped[int] = mapped_column(Integer, default=1)
    body: Mapped[dict[str, Any]] = mapped_column(doc="The program document, as validated.")
    sha256: Mapped[str] = mapped_column(String(64))
    curator_reasons: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    client: Mapped[Client | None] = relationship(back_populates="programs")


class NightSession(Base):
    """One night of one client (named ``NightSession`` to avoid confusion with a database session)."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_state", "state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    program_id: Mapped[str | None] = mapped_column(ForeignKey("dreamscape_programs.id", ondelete="SET NULL"))
    bed: Mapped[str | None] = mapped_column(String(32))
    mode: Mapped[SessionMode] = mapped_column(
        _enum(SessionMode, "session_mode"), default=SessionMode.STIMULATION
    )
    state: Mapped[SessionState] = mapped_column(
        _enum(SessionState, "session_state"), default=SessionState.PREPARED
    )
    source: Mapped[str | None] = mapped_column(
        String(200), doc="Where signals come from (synthetic:seed, edf:path…)."
    )
    recording_path: Mapped[str | None] = mapped_column(Text)
    end_reason: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, doc="What the night held: events and dreamscape commands by kind, SO power in N3 (µV²)."
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    state_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    facility_run_id: Mapped[str | None] = mapped_column(
        String(32), index=True, doc="The facility run (process) that runs this session (see FacilityRun)."
    )

    client: Mapped[Client] = relationship(back_populates="sessions")
    hypnograms: Mapped[list[HypnogramRow]] = relationship(back_populates="session", cascade="all, delete-orphan")
    events: Mapped[list[Event]] = relationship(back_populates="session", cascade="all, delete-orphan")
    glitches: Mapped[list[GlitchRow]] = relationship(back_populates="session", cascade="all, delete-orphan")
    decisions: Mapped[list[DecisionRow]] = relationship(back_populates="session", cascade="all, delete-orphan")

    def transition_to(self, target: SessionState | str, reason: str | None = None) -> None:
        """Move to ``target`` if the state machine allows it (raises :class:`StateError` otherwise)."""
        new = check_transition(self.state, target)
        now = utcnow()
        if new is SessionState.RUNNING:
            self.started_at = now
        if new in (SessionState.ENDED, SessionState.ABORTED):
            self.ended_at = now
            self.end_reason = reason
        self.state = new
        self.state_changed_at = now


class HypnogramRow(Base):
    """A hypnogram of one session: ``stages`` holds YASA integer codes, one per epoch."""

    __tablename__ = "hypnograms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), doc="live, offline, expert or truth.")
    epoch_s: Mapped[float] = mapped_column(Float, default=30.0)
    stages: Mapped[list[Any]] = mapped_column(
        doc="Stage codes per epoch (W=0 … R=4, -1 artefact, -2 unscored)."
    )
    confidence: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    session: Mapped[NightSession] = relationship(back_populates="hypnograms")


class Event(Base):
    """A detected sleep event (spindle, slow oscillation, rapid eye movement, arousal, …)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_session_onset", "session_id", "onset_s"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    onset_s: Mapped[float] = mapped_column(Float)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    description: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(64))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)

    session: Mapped[NightSession] = relationship(back_populates="events")


class GlitchRow(Base):
    """An anomaly in a live session, triaged into a category with an alarm priority."""

    __tablename__ = "glitches"
    __table_args__ = (Index("ix_glitches_session_onset", "session_id", "onset_s"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    onset_s: Mapped[float] = mapped_column(Float)
    duration_s: Mapped[float | None] = mapped_column(Float)
    category: Mapped[GlitchCategory] = mapped_column(_enum(GlitchCategory, "glitch_category"))
    kind: Mapped[str] = mapped_column(
        String(32), doc="electrode_off, flat_line, distress, controller_late, …"
    )
    priority: Mapped[AlarmPriority] = mapped_column(_enum(AlarmPriority, "alarm_priority"))
    channel: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    session: Mapped[NightSession] = relationship(back_populates="glitches")


class DecisionRow(Base):
    """An automated decision of a controller, with the inputs it was based on."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_session_t", "session_id", "t_s"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    t_s: Mapped[float] = mapped_column(Float, doc="Seconds since the session started.")
    kind: Mapped[str] = mapped_column(String(32), doc="clas_pulse, cue, scene, silence, wake, extraction, …")
    command: Mapped[dict[str, Any]] = mapped_column(default=dict)
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    session: Mapped[NightSession] = relationship(back_populates="decisions")


class AuditEntry(Base):
    """One link of the tamper-evident audit chain: ``hash = sha256(prev_hash + canonical entry)``."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64), doc="system, a staff username, or client:<code>.")
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The head of the audit chain (one row, ``id = 1``): appends lock it, so ``seq`` is handed out in order.

    It is a lock and a hint, not a proof: :func:`nexus.store.audit.verify` recomputes the chain from the
    entries, and signed :class:`AuditCheckpoint` rows catch a truncated tail.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed tree head (after RFC 6962): the chain had ``size`` entries ending in ``head_hash`` at ``ts``.

    ``signature`` is HMAC-SHA256 with the facility's secret key (``key_id`` names which key, without revealing it).
    """

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(Integer, unique=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(64))


class ApiToken(Base):
    """An API token of a staff user or a client; only its SHA-256 is stored. Break-glass tokens carry a reason."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_user_id: Mapped[str | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), doc="client, technician, clinician, auditor, admin or break_glass.")
    label: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str | None] = mapped_column(Text, doc="Why (required for break-glass).")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JournalEntry(Base):
    """A client's private morning dream-journal entry."""

    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"))
    written_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    text: Mapped[str] = mapped_column(Text)
    mood: Mapped[str | None] = mapped_column(String(32))
    tags: Mapped[list[Any]] = mapped_column(default=list)


class FacilityRun(Base):
    """One run of the facility (a ``nexus simulate`` or ``nexus run`` process) and where it journals.

    The running facility refreshes ``heartbeat_at`` while it runs; a run without ``ended_at`` whose
    process is gone (or whose heartbeat is stale) crashed, and its sessions are recovered
    (:mod:`nexus.facility.recovery`).
    """

    __tablename__ = "facility_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    journals: Mapped[list[Any]] = mapped_column(default=list, doc="Journal folders of the run (one per worker).")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(Text)


class ExtractionOrder(Base):
    """An order to extract a session, left in the database for the running facility to carry out.

    The facility polls the pending orders of its run at every tick, so an order works when its API is
    overloaded or down. ``status``: ``pending`` → ``applied`` (stimulation stopped: ``safe_at``) →
    ``done`` (the session ended: ``done_at``), or ``refused`` (``message`` says why).
    """

    __tablename__ = "extraction_orders"
    __table_args__ = (Index("ix_extraction_orders_run_status", "facility_run_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    facility_run_id: Mapped[str | None] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16), doc="gentle, immediate or release.")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    outcome: Mapped[str | None] = mapped_column(String(16), doc="started, escalated, unchanged, already_done.")
    ordered_by: Mapped[str] = mapped_column(String(64), default="cli")
    ordered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    safe_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    message: Mapped[str] = mapped_column(Text, default="")


class BedLease(Base):
    """Who runs a bed of the multi-host floor: the lease of one session held by one ``nexus worker``.

    A worker is a :class:`FacilityRun`; its lease on every bed it holds lasts while its ``heartbeat_at`` (database
    time) is younger than the floor's lease time, so a heartbeat is one row per worker, whatever its number of
    beds. ``worker_id`` is NULL for a bed no worker holds yet (or one handed back). ``generation`` grows at every
    claim: a claim is a compare-and-set on it, so two workers claiming the same bed cannot both win.
    ``journals`` lists, in order, the journal folder of every worker that ran a part of the night.
    """

    __tablename__ = "bed_leases"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    worker_id: Mapped[str | None] = mapped_column(String(32), index=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    plan: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="The bed's source: profile, seed, hours, fs.")
    journals: Mapped[list[Any]] = mapped_column(default=list)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    takeovers: Mapped[int] = mapped_column(Integer, default=0, doc="Claims from a worker that had died.")


class AlarmRow(Base):
    """The alarm log: one high or medium alarm of a session with its lifecycle (IEC 60601-1-8).

    ``*_s`` times are seconds on the facility clock of the run that raised it (the supervisor's
    clock: real time, or simulated time in a fast-forward night); ``onset_s`` is the session time
    of the glitch behind it. ``priority`` is the priority now (a medium alarm left unacknowledged
    is escalated to high), ``raised_priority`` the one it was raised with; ``number`` is its
    number in the run's alarm book.
    """

    __tablename__ = "alarms"
    __table_args__ = (
        Index("ix_alarms_session_raised", "session_id", "raised_s"),
        Index("ix_alarms_priority", "priority"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    facility_run_id: Mapped[str | None] = mapped_column(String(32))
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    category: Mapped[GlitchCategory] = mapped_column(_enum(GlitchCategory, "alarm_category"))
    priority: Mapped[AlarmPriority] = mapped_column(_enum(AlarmPriority, "alarm_priority_now"))
    raised_priority: Mapped[AlarmPriority] = mapped_column(_enum(AlarmPriority, "alarm_priority_raised"))
    channel: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    onset_s: Mapped[float | None] = mapped_column(Float)
    raised_s: Mapped[float] = mapped_column(Float)
    acknowledged_s: Mapped[float | None] = mapped_column(Float)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    escalated_s: Mapped[float | None] = mapped_column(Float)
    resolved_s: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
