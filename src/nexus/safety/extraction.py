"""Extraction: the safe end of a session, as a pure state machine over the beds of a lane.

An extraction order always does the same first thing: **stimulation stops at once** (the bed's
program is taken away and its sink goes silent, nothing scheduled — the *safe state*). Then,
by mode:

``release``
    Release to natural sleep: nothing more is played; the night goes on as a record-only night.
``gentle``
    Gentle wake: wait for light sleep (P(W) + P(N1) + P(N2) ≥ 0.8), at most ``max_wait_s``; then
    the wake ramp (the program's, at most ``max_ramp_s`` long); then silence, and the session ends.
``immediate``
    Immediate wake: the wake sound at once, rising over ``immediate_ramp_s``; then silence, and
    the session ends.

Orders are idempotent, and conflicting orders resolve to the safest: the modes are ranked by how
firmly they bring the sleeper out, ``release`` < ``gentle`` < ``immediate``
(:data:`SAFETY_ORDER`). A later order of a higher rank takes over (a gentle wake still waiting
for light sleep becomes an immediate wake; a released bed can still be woken); an order of the
same or a lower rank changes nothing and says so. Whatever the order, stimulation never restarts:
escalating only ever shortens the way out. An ended extraction cannot be ordered again.

This module is pure: times come in as numbers (seconds on the lane's clock), and the machine
returns :class:`Action` objects that the facility's dreamscape loop carries out
(:meth:`nexus.facility.closed_loop.DreamscapeLoop.extract`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError
from nexus.safety.modes import _RANK, SAFETY_ORDER, ExtractionMode, parse_mode, safest

__all__ = ["SAFETY_ORDER", "Action", "ExtractionMachine", "ExtractionMode", "ExtractionReport", "OrderOutcome",
           "Phase", "WakeRamp", "parse_mode", "safest"]




class Phase(IntEnum):
    """Where a bed's extraction stands."""

    NONE = 0  # not extracted
    RELEASED = 1  # safe state, recording goes on as a natural night
    WAITING = 2  # safe state, gentle wake waiting for light sleep
    WAKING = 3  # the wake sound is playing
    DONE = 4  # woken, silent again: the session can end


@dataclass(frozen=True)
class WakeRamp:
    """A wake sound rising from ``from_db`` to ``to_db`` (dBFS) over ``over_s`` seconds."""

    sound: str = "chime"
    from_db: float = -50.0
    to_db: float = -25.0
    over_s: float = 600.0


@dataclass(frozen=True)
class Action:
    """Something the loop must do for one bed now.

    ``kind`` is ``"stop"`` (take the program away, silence the sink at once), ``"wake"`` (play
    ``params`` as a wake ramp) or ``"end"`` (silence the sink; the extraction is done and the
    session may end).
    """

    slot: int
    t: float
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class OrderOutcome:
    """What one order did to one bed.

    ``outcome`` is ``"started"``, ``"escalated"``, ``"unchanged"`` (same or less firm mode than the
    one in force) or ``"already_done"``; ``mode`` is the mode in force afterwards.
    """

    slot: int
    t: float
    requested: ExtractionMode
    mode: ExtractionMode
    outcome: str
    reason: str

    @property
    def changed(self) -> bool:
        """True when the order changed what the bed does."""
        return self.outcome in ("started", "escalated")


class ExtractionMachine:
    """The extraction state of ``n`` beds (slots), as arrays.

    Parameters
    ----------
    n : int
        Number of slots.
    max_wait_s : float
        Longest wait for light sleep before a gentle wake starts anyway, in s.
    max_ramp_s : float
        Longest gentle wake ramp, in s (a program's longer ramp is shortened).
    immediate_ramp_s : float
        Length of the immediate wake's rise, in s.
    light_p : float
        P(W) + P(N1) + P(N2) at or above which a bed is in light sleep.
    """

    def __init__(self, n: int, *, max_wait_s: float = 600.0, max_ramp_s: float = 180.0,
                 immediate_ramp_s: float = 5.0, light_p: float = 0.8) -> None:
        self.n = int(check_number("n", n, ge=1))
        self.max_wait_s = check_number("max_wait_s", max_wait_s, ge=0, unit="s")
        self.max_ramp_s = check_number("max_ramp_s", max_ramp_s, gt=0, unit="s")
        self.immediate_ramp_s = check_number("immediate_ramp_s", immediate_ramp_s, gt=0, unit="s")
        self.light_p = check_number("light_p", light_p, gt=0, le=1)
        self.phase = np.zeros(self.n, dtype=np.int8)
        self.rank = np.zeros(self.n, dtype=np.int8)  # rank of the mode in force (0: none)
        self.ordered_at = np.full(self.n, np.nan)
        self.safe_at = np.full(self.n, np.nan)
        self.wake_at = np.full(self.n, np.nan)
        self.wake_until = np.full(self.n, np.nan)
        self.deadline = np.full(self.n, np.nan)
        self.done_at = np.full(self.n, np.nan)
        self.ramps: list[WakeRamp] = [WakeRamp()] * self.n

    # -- queries ---------------------------------------------------------------------------------
    def mode(self, slot: int) -> ExtractionMode | None:
        """The mode in force for ``slot`` (None: not extracted)."""
        r = int(self.rank[slot])
        return SAFETY_ORDER[r - 1] if r else None

    @property
    def extracting(self) -> npt.NDArray[np.bool_]:
        """Slots under an extraction order (any phase but NONE): their program must not play."""
        return self.phase != Phase.NONE

    def clear(self, slot: int) -> None:
        """Forget a slot's extraction (a new session takes the slot)."""
        self.phase[slot] = Phase.NONE
        self.rank[slot] = 0
        for arr in (self.ordered_at, self.safe_at, self.wake_at, self.wake_until, self.deadline, self.done_at):
            arr[slot] = np.nan
        self.ramps[slot] = WakeRamp()

    # -- orders ----------------------------------------------------------------------------------
    def order(self, slot: int, mode: str | ExtractionMode, t: float,
              ramp: WakeRamp | None = None) -> tuple[OrderOutcome, list[Action]]:
        """Order the extraction of ``slot`` at time ``t`` (s); return the outcome and the actions to do now.

        ``ramp`` is the bed's wake ramp (its program's; default :class:`WakeRamp`).
        """
        s = int(slot)
        if not 0 <= s < self.n:
            raise InvalidInputError(f"Invalid value for 'slot': expected 0..{self.n - 1}, got {slot}.")
        want = parse_mode(mode)
        t = float(t)
        cur = self.mode(s)
        if self.phase[s] == Phase.DONE:
            return OrderOutcome(s, t, want, cur or want, "already_done",
                                f"The bed was already extracted ({cur}); nothing changed."), []
        if cur is not None and _RANK[want] <= _RANK[cur]:
            why = (f"Already under a {cur} extraction; the order is idempotent." if want == cur
                   else f"A {cur} extraction is already in force and is safer than {want}; it is kept.")
            return OrderOutcome(s, t, want, cur, "unchanged", why), []
        actions: list[Action] = []
        outcome = "escalated" if cur is not None else "started"
        if cur is None:
            self.ordered_at[s] = t
            self.safe_at[s] = t
            self.ramps[s] = ramp or WakeRamp()
            actions.append(Action(s, t, "stop", {}, f"Extraction ({want}): stimulation stops at once."))
        self.rank[s] = _RANK[want]
        if want == ExtractionMode.RELEASE:
            self.phase[s] = Phase.RELEASED
            reason = "Released to natural sleep: record only, nothing more is played."
        elif want == ExtractionMode.GENTLE:
            self.phase[s] = Phase.WAITING
            self.deadline[s] = t + self.max_wait_s
            reason = f"Gentle wake: waiting for light sleep, at most {self.max_wait_s:g} s."
        else:
            actions.append(self._wake(s, t, immediate=True))
            reason = f"Immediate wake: the wake sound rises over {self.immediate_ramp_s:g} s."
        return OrderOutcome(s, t, want, want, outcome, reason), actions

    def _wake(self, s: int, t: float, *, immediate: bool, why: str = "") -> Action:
        r = self.ramps[s]
        if immediate:
            params: dict[str, Any] = {"sound": r.sound, "from_db": r.to_db - 10.0, "to_db": r.to_db,
                                      "over_s": self.immediate_ramp_s}
            why = why or "Immediate wake."
        else:
            params = {"sound": r.sound, "from_db": r.from_db, "to_db": r.to_db,
                      "over_s": min(r.over_s, self.max_ramp_s)}
        until = t + float(params["over_s"])
        if self.phase[s] == Phase.WAKING:  # escalating a ramp already playing never lengthens it
            until = min(until, float(self.wake_until[s]))
        self.phase[s] = Phase.WAKING
        self.wake_at[s] = t
        self.wake_until[s] = until
        return Action(s, t, "wake", params, why)

    # -- time ------------------------------------------------------------------------------------
    def advance(self, t: float, probs: npt.ArrayLike | None = None) -> list[Action]:
        """Move every extraction on to time ``t`` (s); return the actions due.

        ``probs`` are the beds' current stage probabilities, shape (n, 5) (W, N1, N2, N3, R); NaN
        rows (not staged) never count as light sleep.
        """
        t = float(t)
        out: list[Action] = []
        waiting = np.flatnonzero(self.phase == Phase.WAITING)
        if waiting.size:
            light = np.zeros(self.n, dtype=bool)
            if probs is not None:
                p = np.asarray(probs, dtype=float).reshape(self.n, 5)
                with np.errstate(invalid="ignore"):
                    light = np.nan_to_num(p[:, :3].sum(axis=1), nan=0.0) >= self.light_p
            for s in waiting.tolist():
                if light[s]:
                    out.append(self._wake(s, t, immediate=False, why="Gentle wake: the sleeper is in light sleep."))
                elif t >= self.deadline[s]:
                    out.append(self._wake(s, t, immediate=False,
                                          why=f"Gentle wake: no light sleep within {self.max_wait_s:g} s; "
                                              "waking anyway."))
        for s in np.flatnonzero((self.phase == Phase.WAKING) & (t >= self.wake_until)).tolist():
            self.phase[s] = Phase.DONE
            self.done_at[s] = t
            out.append(Action(s, t, "end", {}, "The wake ramp is over: silence; the session ends."))
        return out

    def take_done(self) -> list[int]:
        """Slots whose extraction is done (phase DONE); call :meth:`clear` once their session has ended."""
        return np.flatnonzero(self.phase == Phase.DONE).tolist()


@dataclass
class ExtractionReport:
    """Where one session's extraction stands, for the caller of an order (CLI, API, database).

    Wall-clock times are seconds since the epoch (``time.time()``); ``t_s`` is the order's time in
    seconds since the session started.
    """

    session: str
    requested: str
    mode: str
    outcome: str
    reason: str
    t_s: float
    ordered_wall: float
    safe_wall: float | None = None
    done_wall: float | None = None
    ended: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)
