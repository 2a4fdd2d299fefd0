"""Request and response bodies of the API (what ``/openapi.json`` documents)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field


def _utc(d: datetime) -> datetime:
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d


#: A time in UTC with its offset (SQLite hands back naive times; they are UTC).
UtcTime = Annotated[datetime, AfterValidator(_utc)]


class Problem(BaseModel):
    """An error: what is wrong and how to fix it."""

    detail: str


class Invalid(BaseModel):
    """A request that cannot be carried out as sent: a sentence, or one entry per bad field (loc, msg, type)."""

    detail: str | list[dict[str, Any]]


class Health(BaseModel):
    """The service is up."""

    status: Literal["ok"] = "ok"
    version: str


class Login(BaseModel):
    """Staff credentials."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class ClientLogin(BaseModel):
    """A client's portal credentials: their client code and password."""

    code: str = Field(min_length=1, max_length=64, description="The client code the facility gave you.")
    password: str = Field(min_length=1, max_length=1024)


class ClientEnrol(BaseModel):
    """A client's first login: their client code, the one-time invitation code and a new password."""

    code: str = Field(min_length=1, max_length=64)
    invitation: str = Field(min_length=1, max_length=200, description="The one-time code (nxi_…) of the facility.")
    password: str = Field(min_length=12, max_length=1024, description="At least 12 characters.")


class Invitation(BaseModel):
    """A client's one-time enrolment code (shown once) and when it expires."""

    client_id: str
    code: str
    expires_at: datetime


class Token(BaseModel):
    """A bearer token (shown once) and who it stands for."""

    token: str
    token_type: Literal["bearer"] = "bearer"
    username: str
    role: str


class Me(BaseModel):
    """The principal of the token."""

    name: str
    role: str
    client_id: str | None = None


class Alarm(BaseModel):
    """A glitch raised as an alarm (IEC 60601-1-8 priority)."""

    id: int
    session: str
    onset_s: float
    kind: str
    category: str
    priority: Literal["high", "medium", "low"]
    channel: str | None = None
    message: str
    acknowledged: bool
    acknowledged_by: str | None = None


class AckResult(BaseModel):
    """An acknowledged alarm."""

    id: int
    acknowledged: bool
    acknowledged_by: str | None = None


class BedEvent(BaseModel):
    """One detected event."""

    t_s: float
    kind: str
    channel: str | None = None


class Extraction(BaseModel):
    """Where a bed's extraction stands (the order's mode after conflicts resolve to the safest)."""

    requested: str = Field(description="The mode ordered: gentle, immediate or release.")
    mode: str = Field(description="The mode carried out (the safest of every order so far).")
    outcome: str
    reason: str
    t_s: float = Field(description="When it was ordered, in seconds since the session started.")
    safe: bool = Field(description="Stimulation has stopped (the sound output is in its safe state).")
    ended: bool


class Bed(BaseModel):
    """One bed of the floor, now."""

    session: str
    bed: str
    client_id: str
    client_code: str
    program: str | None
    natural: bool
    state: str
    end_reason: str | None = None
    t_s: float = Field(description="Seconds since the session started.")
    stage: int = Field(description="YASA code of the last closed epoch (W=0 … R=4, -2 unscored).")
    stage_label: str
    probs: list[float] | None = Field(description="Hypnodensity of the last epoch: P(W, N1, N2, N3, R).")
    epochs: int
    alarm: Literal["none", "low", "medium", "high"]
    alarms: list[Alarm]
    events: list[BedEvent]
    event_counts: dict[str, int]
    commands: dict[str, int] = Field(description="Dreamscape commands played so far, by kind.")
    lease: str = Field(description="Sound output: held, waiting, lapsed, waking (an extraction's wake sound), "
                                   "safe, or none (natural night).")
    version: int
    extraction: Extraction | None = None
    source: str | None = Field(default=None, description="The bed's device (real beds: LSL stream, BrainFlow "
                                                         "board, replayed file); None for a synthetic sleeper.")
    unassigned: bool = Field(default=False, description="A device that matched no client: it records only "
                                                        "(a natural night) until a technician assigns it.")
    channels: list[str] | None = Field(default=None, description="Channels recorded (real beds), in µV.")
    fs: float | None = Field(default=None, description="Sampling rate of a real bed, in Hz.")
    joining: bool = Field(default=False, description="A real bed waiting for its lane (a new channel layout being "
                                                     "built): it records, and can be extracted; t_s is what it "
                                                     "recorded so far; its staging starts once it has joined.")


class SlowTick(BaseModel):
    """One slow step of the live loop."""

    t_s: float = Field(description="The night's clock at the tick's end, s.")
    ms: float = Field(description="Wall time of the step (waiting for the facility's lock included), ms.")


class FacilityStatus(BaseModel):
    """The facility's clock and load."""

    run_id: str
    clients: int
    speed: float
    clock_s: float
    hours: float
    running: int
    ticks: int
    lag_s: float
    consoles: int
    tick_ms_p99: float | None = Field(None, description="99th percentile of the live loop's step over its last "
                                                        "240 ticks (a minute at 1x), ms.")
    tick_cpu_ms_p99: float | None = Field(None, description="99th percentile of the CPU time the loop's thread "
                                                            "spent in those ticks (what they cost on a busy host, "
                                                            "where waiting for a core inflates the wall time), ms.")
    slowest_ticks: list[SlowTick] = Field(default_factory=list, description="The five slowest of those ticks.")


class ExtractAll(BaseModel):
    """What a facility-wide extraction did."""

    ordered: int = Field(description="Running beds the order reached (every one silenced at once).")
    ended: int = Field(description="Sessions ended now (all of them without a mode; none with one).")
    mode: str | None = None


class Hypnogram(BaseModel):
    """A hypnogram so far: one YASA code per 30-s epoch, with the stager's confidence."""

    session: str
    epoch_s: float
    stages: list[int]
    confidence: list[float | None]
    probs: list[float] | None = None
    hypnodensity: list[list[float] | None] = Field(default_factory=list,
                                                   description="P(W, N1, N2, N3, R) per epoch (live nights).")


class Decision(BaseModel):
    """An automated decision of the dreamscape controller."""

    t_s: float
    kind: str
    command: dict[str, Any] | None = None
    reason: str = ""


class SessionOut(BaseModel):
    """One night of one client."""

    id: str
    client_id: str
    client_code: str
    bed: str | None
    mode: str
    state: str
    program_id: str | None
    source: str | None
    end_reason: str | None
    started_at: UtcTime | None
    ended_at: UtcTime | None
    summary: dict[str, Any] | None = None
    live: Bed | None = None


class ClientOut(BaseModel):
    """A client (pseudonymous code first)."""

    id: str
    code: str
    display_name: str | None
    consent_scopes: list[str]
    created_at: UtcTime


class ProgramIn(BaseModel):
    """A dreamscape program to check and store for a client."""

    client_id: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=200_000, description="The program, YAML or JSON.")
    format: Literal["yaml", "json"] = "yaml"


class ProgramCheckIn(BaseModel):
    """A program to check only."""

    text: str = Field(min_length=1, max_length=200_000)
    format: Literal["yaml", "json"] = "yaml"


class Issue(BaseModel):
    """One finding of the program checks."""

    where: str = Field(description="Key path in the program (empty for the whole file).")
    line: int | None = None
    message: str


class CheckResult(BaseModel):
    """The outcome of ``dreamscape check`` on a program."""

    ok: bool
    errors: list[Issue]
    warnings: list[Issue]


class ProgramOut(BaseModel):
    """A stored program version."""

    id: str
    client_id: str | None
    name: str
    version: int
    sha256: str
    created_at: UtcTime
    body: dict[str, Any] | None = None
    check: CheckResult | None = None
