"""Extraction orders through the database: they work when the facility's API is overloaded or down.

``nexus extract`` writes one :class:`~nexus.store.models.ExtractionOrder` row per session
(:func:`submit_orders`); the running facility's :class:`OrderDesk` looks for pending orders of its
run at every step (a wall-clock check first, so that the database is asked at most every
``poll_s``), carries them out through :meth:`Supervisor.extract
<nexus.facility.supervisor.Supervisor.extract>` and writes back when each bed reached the safe state
(``safe_at``) and when its session ended (``done_at``); the session row goes running →
extracting → ended. :func:`wait_orders` is how the CLI waits for that.

A facility run registers itself (:func:`register_run`: process id, host, journal folders) and
refreshes its heartbeat through the desk, so that :mod:`nexus.facility.recovery` can tell a run
that crashed from one that is still going.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table

from nexus.core.checks import check_number
from nexus.core.errors import InvalidInputError, NexusError, NotFoundError, StateError
from nexus.core.lifecycle import FINAL_STATES, SessionState
from nexus.core.log import logger
from nexus.safety.modes import ExtractionMode, parse_mode

if TYPE_CHECKING:
    from nexus.facility.desk_reader import DeskReader

OPEN_STATES = (SessionState.RUNNING, SessionState.EXTRACTING)
"""States in which a session can (still) be extracted."""


def _utc(ts: float | None = None) -> datetime:
    return datetime.now(UTC) if ts is None else datetime.fromtimestamp(ts, UTC)


def _aware(d: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back: they were stored as UTC
    return None if d is None else (d if d.tzinfo is not None else d.replace(tzinfo=UTC))


# -- runs ------------------------------------------------------------------------------------------
def register_run(store: Any, run_id: str, journals: Sequence[str | Path], sessions: Sequence[str] = ()) -> None:
    """Record a facility run (this process, this host, its journal folders) and tie ``sessions`` to it."""
    from sqlalchemy import update

    from nexus.store.models import FacilityRun, NightSession

    with store.session() as s:
        s.add(FacilityRun(id=run_id, pid=os.getpid(), host=socket.gethostname(),
                          journals=[str(Path(j).absolute()) for j in journals]))
        s.flush()
        names = list(sessions)
        for k in range(0, len(names), 500):
            s.execute(update(NightSession).where(NightSession.id.in_(names[k:k + 500]))
                      .values(facility_run_id=run_id))


def end_run(store: Any, run_id: str, reason: str) -> None:
    """Mark a facility run as ended (cleanly, or stopped by a signal) with ``reason``."""
    from nexus.store.models import FacilityRun

    with store.session() as s:
        run = s.get(FacilityRun, run_id)
        if run is not None and run.ended_at is None:
            run.ended_at, run.end_reason = _utc(), reason


def run_alive(run: Any, *, stale_s: float = 120.0, now: datetime | None = None) -> bool:
    """Whether a facility run is still going.

    On this host the process id decides (a run finishing a long night may not beat for a while); a
    run on another host is alive while its heartbeat is younger than ``stale_s``.
    """
    if run.ended_at is not None:
        return False
    if run.host == socket.gethostname():
        try:
            os.kill(int(run.pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    beat = _aware(run.heartbeat_at) or datetime.min.replace(tzinfo=UTC)
    return (now or _utc()) - beat < timedelta(seconds=stale_s)


# -- the CLI side ----------------------------------------------------------------------------------
def submit_orders(store: Any, session: str | None, mode: str | ExtractionMode, *,
                  ordered_by: str = "cli") -> list[int]:
    """Leave an extraction order for ``session`` (None: every running session); return the order ids.

    Raises
    ------
    NotFoundError
        An unknown session, or no running session at all for ``--all``.
    StateError
        A session that has already ended (nothing is written).
    """
    from sqlalchemy import insert, select

    from nexus.store.models import ExtractionOrder, NightSession

    m = parse_mode(mode)
    n_, o_ = cast(Table, NightSession.__table__), cast(Table, ExtractionOrder.__table__)
    with store.session() as s:  # Core statements: a thousand orders in a few milliseconds
        if session is None:
            rows = s.execute(select(n_.c.id, n_.c.facility_run_id).where(
                n_.c.state.in_(OPEN_STATES)).order_by(n_.c.id)).all()
            if not rows:
                raise NotFoundError("No running session to extract ('nexus sessions --state running' lists none).")
        else:
            row = s.get(NightSession, session)
            if row is None:
                raise NotFoundError(f"No session '{session}'; check the id ('nexus sessions').")
            if row.state in FINAL_STATES:
                raise StateError(f"Session '{session}' has already {row.state.value}; there is nothing to extract.")
            if row.state not in OPEN_STATES:
                raise StateError(f"Session '{session}' is {row.state.value}, not running: nothing plays to extract "
                                 "from; end it with its technician instead.")
            rows = [(row.id, row.facility_run_id)]
        now = _utc()
        ids = s.scalars(insert(o_).returning(o_.c.id, sort_by_parameter_order=True),
                        [{"session_id": sid, "facility_run_id": run, "mode": m.value, "status": "pending",
                          "ordered_by": ordered_by, "ordered_at": now, "message": ""} for sid, run in rows]).all()
        return [int(i) for i in ids]


def order_rows(store: Any, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The orders ``ids`` as dicts (session, mode, status, outcome, times as ISO text, message)."""
    from sqlalchemy import select

    from nexus.store.models import ExtractionOrder

    o_ = cast(Table, ExtractionOrder.__table__)
    out: list[dict[str, Any]] = []
    with store.session() as s:
        for k in range(0, len(ids), 500):
            for o in s.execute(select(o_).where(o_.c.id.in_(list(ids[k:k + 500])))):
                out.append({"order": o.id, "session": o.session_id, "mode": o.mode, "status": o.status,
                            "outcome": o.outcome, "run": o.facility_run_id,
                            **{k2: (None if v is None else _aware(v).isoformat())  # type: ignore[union-attr]
                               for k2, v in (("ordered_at", o.ordered_at), ("safe_at", o.safe_at),
                                             ("done_at", o.done_at))},
                            "message": o.message})
    return sorted(out, key=lambda r: r["order"])


def wait_orders(store: Any, ids: Sequence[int], *, timeout_s: float = 30.0, until: str = "safe",
                poll_s: float = 0.1) -> tuple[list[dict[str, Any]], bool]:
    """Wait until every order reached ``until`` (``"safe"`` or ``"done"``) or was refused, at most ``timeout_s``.

    Returns the orders and whether all of them got there in time.
    """
    check_number("timeout_s", timeout_s, ge=0, unit="s")
    deadline = time.monotonic() + timeout_s
    while True:
        rows = order_rows(store, ids)
        ok = all(r["status"] == "refused" or (r["safe_at"] if until == "safe" else r["done_at"]) for r in rows)
        if ok or time.monotonic() >= deadline:
            return rows, ok
        time.sleep(poll_s)


# -- the facility side ------------------------------------------------------------------------------
class OrderDesk:
    """The running facility's end of the order table: polls, extracts, writes back.

    Parameters
    ----------
    store : Store
        The facility database.
    supervisor : Supervisor
        The facility (or one worker's share of it).
    run_id : str
        The run whose orders this desk carries out (see :func:`register_run`).
    poll_s : float
        Wall-clock seconds between two looks at the order table.
    heartbeat_s : float
        Wall-clock seconds between two heartbeats of the run.
    background : bool
        Read the order table, beat and write back on a :class:`~nexus.facility.desk_reader.DeskReader` thread
        (every ``poll_s``): a step then only carries out the pending orders the thread last read (each
        once), so that the live loop's ticks do not wait for the database. :meth:`close` stops the thread.
    """

    def __init__(self, store: Any, supervisor: Any, run_id: str, *, poll_s: float = 0.1,
                 heartbeat_s: float = 1.0, background: bool = False) -> None:
        self.store = store
        self.sup = supervisor
        self.run_id = run_id
        self.poll_s = check_number("poll_s", poll_s, gt=0, unit="s")
        self.heartbeat_s = check_number("heartbeat_s", heartbeat_s, gt=0, unit="s")
        self._next_poll = 0.0
        self._next_beat = 0.0
        self._ended: list[dict[str, Any]] = []
        self._taken: set[int] = set()  # orders carried out (their write-back may still be on its way)
        self.applied = 0
        self.errors = 0
        self._down_since: float | None = None  # monotonic time of the first failed poll of an outage
        self._next_log = 0.0
        supervisor.listeners.append(self._listen)
        self.reader: DeskReader | None = None
        if background:
            from nexus.facility.desk_reader import DeskReader

            self.reader = DeskReader("orders", self._read, self.poll_s,
                                     on_write_error=lambda exc: self._failed(exc, time.monotonic()))
            self.reader.start()

    def _listen(self, kind: str, records: list[dict[str, Any]]) -> None:
        if kind == "extraction":
            self._ended.extend(records)

    def poll(self, *, force: bool = False) -> int:
        """Carry out the pending orders of this run (at most every ``poll_s``); return how many were taken.

        With a reader thread, the orders it last read (``force``: read now, on this thread, after the
        write-backs still queued).
        """
        now = time.monotonic()
        if self.reader is not None and not force:
            return self._poll_read(now)
        if not force and now < self._next_poll and not self._ended:
            return 0  # the cheap path of almost every step
        self._next_poll = now + self.poll_s
        try:
            if self.reader is not None:
                self.reader.run_writes()
            taken = self._poll(now)
        except NexusError:
            raise
        except Exception as exc:  # a database that is down must not stop the facility: the beds go on
            self._failed(exc, now)
            return 0
        self._recovered(now)
        return taken

    def _failed(self, exc: BaseException, now: float) -> None:
        self.errors += 1
        if self._down_since is None:
            self._down_since = now
        if now >= self._next_log:  # the first failure, then one line every 30 s of the outage
            self._next_log = now + 30.0
            logger.error("Extraction orders cannot be read (%s); the beds run on, retrying every %.1f s "
                         "(down for %.0f s).", " ".join(str(exc).split())[:200], self.poll_s,
                         now - self._down_since)

    def _recovered(self, now: float) -> None:
        if self._down_since is not None:
            logger.warning("Extraction orders readable again after %.1f s.", now - self._down_since)
            self._down_since, self._next_log = None, 0.0

    def kick(self) -> None:
        """The end of a tick (nothing to do: the order thread keeps its own pace, see :class:`OrderDesk`)."""

    def close(self) -> None:
        """Stop the reader thread, if any (its queued write-backs run now)."""
        if self.reader is not None:
            self.reader.close()

    def _beat(self, s: Any, now: float) -> None:
        from sqlalchemy import update

        from nexus.store.models import FacilityRun

        if now >= self._next_beat:
            self._next_beat = now + self.heartbeat_s
            s.execute(update(FacilityRun).where(FacilityRun.id == self.run_id).values(heartbeat_at=_utc()))

    def _pending(self, s: Any) -> list[tuple[int, str, str]]:
        from sqlalchemy import select

        from nexus.store.models import ExtractionOrder

        t_ = cast(Table, ExtractionOrder.__table__)
        rows = s.execute(select(t_.c.id, t_.c.session_id, t_.c.mode).where(
            t_.c.facility_run_id == self.run_id, t_.c.status == "pending").order_by(t_.c.id)).all()
        return [(int(oid), str(session), str(mode)) for oid, session, mode in rows]

    def _read(self) -> list[tuple[int, str, str]]:
        """The reader thread's read: the heartbeat when due, then the pending orders."""
        with self.store.session() as s:
            self._beat(s, time.monotonic())
            return self._pending(s)

    def _poll_read(self, now: float) -> int:
        """Carry out what the reader thread last read; hand the write-back to it."""
        got = self.reader.take() if self.reader is not None else None
        if isinstance(got, Exception):
            self._failed(got, now)
            got = None
        elif got is not None:
            self._recovered(now)
        done = self._carry_out(got) if got else []
        ended, self._ended = self._ended, []
        if (done or ended) and self.reader is not None:
            self.reader.submit(lambda: self._write_back(done, ended))
        taken = sum(d["status"] == "applied" for d in done)
        self.applied += taken
        return taken

    def _write_back(self, done: list[dict[str, Any]], ended: list[dict[str, Any]]) -> None:
        with self.store.session() as s:
            self._record(s, done)
            if ended:
                self._finish(s, ended)

    def _carry_out(self, pending: list[tuple[int, str, str]]) -> list[dict[str, Any]]:
        """Extract the beds of the pending orders not carried out yet (each once); return the rows to write."""
        # every bed is silenced first; the bookkeeping follows in a few bulk statements
        done: list[dict[str, Any]] = []
        batches: dict[str, list[tuple[int, str]]] = {}
        for oid, session, mode in pending:
            if oid in self._taken:
                continue  # carried out; its write-back is on its way
            rt = self.sup.runtime(session)  # a bed waiting for its lane, too
            if rt is None:
                continue  # another worker's bed
            self._taken.add(oid)
            if rt.state == "ended":
                done.append({"b_id": oid, "status": "refused", "outcome": None, "safe_at": None,
                             "message": f"Session '{session}' has already ended; there is nothing to extract.",
                             "applied_at": _utc(), "session": session})
                continue
            batches.setdefault(mode, []).append((oid, session))
        for mode, batch in batches.items():  # one call per mode: every bed silenced before the bookkeeping
            applied = _utc()
            try:
                reps = self.sup.extract([name for _, name in batch], mode)
            except (NotFoundError, StateError, InvalidInputError) as exc:
                done += [{"b_id": oid, "status": "refused", "outcome": None, "message": str(exc),
                          "applied_at": applied, "safe_at": None, "session": name} for oid, name in batch]
                continue
            for (oid, name), rep in zip(batch, reps, strict=True):
                done.append({"b_id": oid, "status": "applied", "outcome": rep.outcome, "message": rep.reason,
                             "applied_at": applied, "safe_at": _utc(rep.safe_wall), "session": name})
        return done

    def _record(self, s: Any, done: list[dict[str, Any]]) -> None:
        """Write the orders carried out (applied or refused) and move their sessions to extracting."""
        from sqlalchemy import bindparam, update

        from nexus.store.models import ExtractionOrder, NightSession

        if not done:
            return
        t_ = cast(Table, ExtractionOrder.__table__)
        s.connection().execute(
            update(t_).where(t_.c.id == bindparam("b_id")).values(
                status=bindparam("status"), outcome=bindparam("outcome"), message=bindparam("message"),
                applied_at=bindparam("applied_at"), safe_at=bindparam("safe_at")),
            [{k: v for k, v in d.items() if k != "session"} for d in done])
        names = [d["session"] for d in done if d["status"] == "applied"]
        stamp = _utc()
        for k in range(0, len(names), 500):
            s.execute(update(NightSession).where(NightSession.id.in_(names[k:k + 500]),
                                                 NightSession.state == SessionState.RUNNING)
                      .values(state=SessionState.EXTRACTING, state_changed_at=stamp))

    def _poll(self, now: float) -> int:
        done: list[dict[str, Any]] = []
        try:
            with self.store.session() as s:
                self._beat(s, now)
                done = self._carry_out(self._pending(s))
                self._record(s, done)
                ended, self._ended = self._ended, []
                if ended:
                    self._finish(s, ended)
        except Exception:  # nothing was written: the orders stay pending and are carried out again (no harm)
            self._taken.difference_update(d["b_id"] for d in done)
            raise
        taken = sum(d["status"] == "applied" for d in done)
        self.applied += taken
        return taken

    def _finish(self, s: Any, ended: list[dict[str, Any]]) -> None:
        """The sessions whose extraction ended: orders done, session rows ended (bulk statements)."""
        from sqlalchemy import bindparam, update

        from nexus.store.models import ExtractionOrder, NightSession

        o_, n_ = cast(Table, ExtractionOrder.__table__), cast(Table, NightSession.__table__)
        rows = [{"b_session": r["session"], "b_done": _utc(r.get("done_wall")),
                 "b_reason": f"extracted ({r['mode']} wake)"} for r in ended]
        conn = s.connection()
        conn.execute(update(o_).where(o_.c.session_id == bindparam("b_session"), o_.c.status == "applied")
                     .values(status="done", done_at=bindparam("b_done")),
                     [{"b_session": r["b_session"], "b_done": r["b_done"]} for r in rows])
        # running -> extracting -> ended (a session ended by the loop before its order was read is extracting now)
        for src in (SessionState.RUNNING, SessionState.EXTRACTING):
            dst = SessionState.EXTRACTING if src is SessionState.RUNNING else SessionState.ENDED
            values: dict[str, Any] = {"state": dst.value, "state_changed_at": bindparam("b_done")}
            if dst is SessionState.ENDED:
                values |= {"ended_at": bindparam("b_done"), "end_reason": bindparam("b_reason")}
            conn.execute(update(n_).where(n_.c.id == bindparam("b_session"), n_.c.state == src.value)
                         .values(**values), rows)
