"""What each bed hears, at the level of commands: bed sinks, their leases, and the bank of a lane.

A :class:`BedSink` receives the dreamscape controller's commands for one bed (start a scene, a
click, a cue, a wake ramp, silence) and turns them into sound: a synthetic sleeper who reacts,
a WAV file rendered at the end of the night, or an audio device. Every level a command asks for
passes the sink's :class:`~nexus.sinks.limiter.Limiter` ceiling first (:meth:`BedSink.level_db`):
no program can make a bed louder than the facility allows.

A :class:`SinkBank` holds the bed sinks of one lane and their *leases* as arrays over the slots:
the controller renews every running bed's lease at each step (:meth:`SinkBank.renew`), and a bed
whose lease has lapsed is put in the safe state (silence, nothing scheduled) and refuses every
command until a lease is renewed (dead-man's switch, :meth:`SinkBank.expire`). A sink that
raises is put in the safe state too; its slot is reported so the others go on. Sinks whose
output is best answered all at once (many synthetic sleepers of one fleet) name a *batch*
(:meth:`BedSink.batches`): the bank opens it before a delivery's commands and flushes it after. Times are seconds
on the lane's clock; commands are duck-typed (``session``, ``t``, ``kind``, ``params``) so this
layer needs nothing from the dreamscape layer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from nexus.core.checks import check_number
from nexus.core.log import logger
from nexus.sinks.limiter import HARD_CEILING_DBFS, Limiter

COMMAND_KINDS = ("scene", "silence", "click", "cue", "protect", "wake")
"""Command kinds a bed sink understands."""


class BedSink(ABC):
    """One bed's output for controller commands, behind a hard level ceiling.

    Parameters
    ----------
    ceiling_dbfs : float
        Output ceiling in dBFS; the facility's :data:`~nexus.sinks.limiter.HARD_CEILING_DBFS` applies on top.
    """

    def __init__(self, ceiling_dbfs: float = HARD_CEILING_DBFS) -> None:
        self.limiter = Limiter(ceiling_dbfs)
        self.safe = True
        """True while the bed is silent with nothing scheduled (before the first command, after silence)."""

    def level_db(self, requested_db: float) -> float:
        """The level actually played for a requested level (dBFS): never above the ceiling."""
        return float(min(float(requested_db), self.limiter.ceiling_dbfs))

    def play(self, command: Any) -> None:
        """Play one command (levels limited); ``silence`` puts the bed in the safe state."""
        if command.kind not in COMMAND_KINDS:
            raise ValueError(f"Unknown command kind '{command.kind}' (known: {', '.join(COMMAND_KINDS)}).")
        self.safe = command.kind == "silence"
        self._play(command)

    @abstractmethod
    def _play(self, command: Any) -> None:
        """Deliver one command (subclasses); levels must go through :meth:`level_db`."""

    def go_safe(self, t: float) -> None:
        """Stop all sound now and cancel what is scheduled (the safe state); never raises."""
        self.safe = True
        try:
            self._silence(t)
        except Exception as exc:  # the safe state must be reachable even from a broken sink
            logger.error("Sink failed while going silent: %s", exc)

    def _silence(self, t: float) -> None:  # noqa: B027 - optional hook
        """Subclasses stop their sound here (default: nothing is playing between commands)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device or write the file."""

    def batches(self) -> tuple[Batch, ...]:
        """The batches this sink's commands go through (none by default: each command is played at once)."""
        return ()


class Batch(Protocol):
    """What gathers the commands of many beds' sinks over one delivery and plays them in one go.

    :meth:`SinkBank.deliver` calls :meth:`begin` before its commands and :meth:`flush` after them; a
    sink of the batch that is played in between may leave its output to :meth:`flush`.
    """

    def begin(self) -> None:
        """Gather from now on."""

    def flush(self) -> None:
        """Play what was gathered; stop gathering."""


class CountingSink(BedSink):
    """A bed sink that keeps the commands it played (benchmarks, tests, beds without a speaker)."""

    def __init__(self, ceiling_dbfs: float = HARD_CEILING_DBFS) -> None:
        super().__init__(ceiling_dbfs)
        self.played: list[Any] = []

    def _play(self, command: Any) -> None:
        self.played.append(command)


class TeeSink(BedSink):
    """Several outputs of one bed (e.g. the sleeper's ears and a WAV file); each applies its own ceiling."""

    def __init__(self, sinks: Sequence[BedSink]) -> None:
        super().__init__(min(s.limiter.ceiling_dbfs for s in sinks))
        self.sinks = list(sinks)

    def _play(self, command: Any) -> None:
        for s in self.sinks:
            s.play(command)

    def _silence(self, t: float) -> None:
        for s in self.sinks:
            s.go_safe(t)

    def close(self) -> None:
        """Close every output."""
        for s in self.sinks:
            s.close()

    def batches(self) -> tuple[Batch, ...]:
        """Those of its outputs."""
        return tuple(b for s in self.sinks for b in s.batches())


@dataclass
class Delivery:
    """What :meth:`SinkBank.deliver` did with one step's commands."""

    played: int = 0
    refused: int = 0  # the bed's lease had lapsed (safe state)
    late: int = 0  # clicks whose onset had already passed (dropped: a late click hits the wrong phase)
    failed: list[int] = field(default_factory=list)  # slots whose sink raised (now in the safe state)
    by_kind: dict[str, int] = field(default_factory=dict)


class SinkBank:
    """The bed sinks of a lane, with their leases as arrays over the slots.

    Parameters
    ----------
    capacity : int
        Number of slots.
    lease_s : float
        How long a renewed lease lasts, in seconds (a few steps: a controller that stops for
        longer leaves its beds silent).
    """

    def __init__(self, capacity: int, lease_s: float = 2.0) -> None:
        self.capacity = int(check_number("capacity", capacity, ge=1))
        self.lease_s = check_number("lease_s", lease_s, gt=0, unit="s")
        self.sinks: list[BedSink | None] = [None] * self.capacity
        self.lease_until = np.full(self.capacity, -np.inf)
        self.renewals = np.zeros(self.capacity, dtype=np.int64)
        """Leases renewed per slot (for checks that every step renews them)."""
        self.lapsed = np.zeros(self.capacity, dtype=bool)
        """Slots whose lease lapsed and that were put in the safe state."""
        self._batches: dict[int, tuple[Batch, int]] = {}  # id -> (batch, sinks of the bank that use it)

    def _hold(self, sink: BedSink | None, add: int) -> None:
        """Count the bank's sinks per batch (a batch no sink uses any more is dropped)."""
        for b in () if sink is None else sink.batches():
            held = self._batches.get(id(b), (b, 0))[1] + add
            if held > 0:
                self._batches[id(b)] = (b, held)
            else:
                self._batches.pop(id(b), None)

    def attach(self, slot: int, sink: BedSink | None) -> None:
        """Give a slot its sink (None: the bed has no speaker); the lease starts lapsed."""
        self._hold(self.sinks[slot], -1)
        self._hold(sink, 1)
        self.sinks[slot] = sink
        self.lease_until[slot] = -np.inf
        self.renewals[slot] = 0
        self.lapsed[slot] = False

    def detach(self, slot: int, t: float) -> BedSink | None:
        """Put a slot's sink in the safe state and take it out of the bank."""
        sink = self.sinks[slot]
        if sink is not None:
            sink.go_safe(t)
        self._hold(sink, -1)
        self.sinks[slot] = None
        self.lease_until[slot] = -np.inf
        return sink

    def renew(self, slots: npt.ArrayLike, now: float) -> None:
        """Renew the leases of ``slots`` until ``now + lease_s`` (one array operation)."""
        idx = np.asarray(slots, dtype=np.intp)
        self.lease_until[idx] = now + self.lease_s
        self.renewals[idx] += 1
        self.lapsed[idx] = False

    def expire(self, now: float) -> npt.NDArray[np.intp]:
        """Put every bed whose lease lapsed before ``now`` in the safe state; return the newly lapsed slots."""
        gone = np.flatnonzero((self.lease_until < now) & np.isfinite(self.lease_until) & ~self.lapsed)
        for s in gone.tolist():
            sink = self.sinks[s]
            if sink is not None:
                logger.warning("Slot %d: lease lapsed at %.3f s (now %.3f s): safe state.", s,
                               self.lease_until[s], now)
                sink.go_safe(now)
            self.lapsed[s] = True
        return gone

    def deliver(self, commands: Sequence[Any], now: float, *, late_before: float | None = None) -> Delivery:
        """Hand each command to its bed's sink.

        Commands for a bed whose lease has lapsed by ``now`` are refused; clicks whose onset is
        before ``late_before`` (default ``now``) are dropped as late; a sink that raises goes to the
        safe state and its slot is listed in :attr:`Delivery.failed` (the other beds go on). The sinks'
        batches are flushed at the end; a batch that raises puts every bed it held a command of in the safe state.
        """
        rep = Delivery()
        if not commands:
            return rep
        batches = [b for b, _ in self._batches.values()]
        for b in batches:
            b.begin()
        played: list[int] = []
        try:
            self._deliver(commands, now, now if late_before is None else late_before, rep, played)
        finally:
            for b in batches:
                try:
                    b.flush()
                except Exception as exc:
                    self._batch_failed(b, exc, played, now, rep)
        return rep

    def _batch_failed(self, batch: Batch, exc: Exception, played: list[int], now: float, rep: Delivery) -> None:
        """A batch raised at its flush: the beds it held commands of go to the safe state."""
        for s in sorted(set(played)):
            sink = self.sinks[s]
            if sink is None or not any(b is batch for b in sink.batches()) or s in rep.failed:
                continue
            logger.error("Slot %d: the sink's batch failed (%s); safe state.", s, exc)
            sink.go_safe(now)
            self.lease_until[s] = -np.inf
            self.lapsed[s] = True
            rep.failed.append(s)

    def _deliver(self, commands: Sequence[Any], now: float, late_t: float, rep: Delivery, played: list[int]) -> None:
        for c in commands:
            s = int(c.session)
            sink = self.sinks[s]
            if sink is None:
                continue
            if not now <= self.lease_until[s] or self.lapsed[s]:
                rep.refused += 1
                continue
            if c.kind == "click" and c.t < late_t:
                rep.late += 1
                continue
            try:
                sink.play(c)
            except Exception as exc:
                logger.error("Slot %d: the sink failed on a '%s' command (%s); safe state.", s, c.kind, exc)
                sink.go_safe(now)
                self.lease_until[s] = -np.inf
                self.lapsed[s] = True
                rep.failed.append(s)
                continue
            rep.played += 1
            rep.by_kind[c.kind] = rep.by_kind.get(c.kind, 0) + 1
            played.append(s)

    def close(self) -> None:
        """Silence and close every sink."""
        for s, sink in enumerate(self.sinks):
            if sink is not None:
                sink.go_safe(float("nan"))
                try:
                    sink.close()
                except Exception as exc:
                    logger.error("Closing the sink of slot %d failed: %s", s, exc)
