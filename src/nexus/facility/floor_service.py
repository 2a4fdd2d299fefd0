"""``nexus run --source lsl:|brainflow:|replay:``: the facility service over real beds.

:class:`FloorService` is the :class:`~nexus.facility.service.FacilityService` (API, console feed,
alarms, extraction, rows) with its beds taken from a floor of devices
(:mod:`nexus.facility.floor`) instead of planned synthetic sleepers, as ``nexus record`` takes them:

* the night runs on the wall clock (a replay: ``speed`` times faster), not on a manual clock;
* every device that appears joins as a record-only bed (natural night) — a stream the bed map does
  not name joins *unassigned* (placeholder client) until a technician assigns it; the console shows it
  from the tick it has joined;
* an unassigned bed given to its client shows it and follows its consent from the next tick when that
  is done through the API, and within ``assign_poll_s`` when it is done from another process
  (``nexus assign``: the service reads its unassigned beds' owners from the database, as the order
  desk reads ``nexus extract``'s orders);
* a bed of a new channel layout waits for its lane on the supervisor's builder thread (nothing it
  sends is lost, the other beds' ticks are not held up); meanwhile it is on the consoles (``joining``,
  with the seconds it has recorded) and can be extracted like any bed (it has no sound path yet);
* at the end every bed's journal is written as one EDF+ in the run's folder
  (``<data_dir>/runs/<run id>/<session>.edf``) and its session row points to it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nexus.core.clock import ScaledClock
from nexus.core.errors import InvalidInputError
from nexus.core.log import logger
from nexus.facility.floor import BedMap, Floor, make_floor
from nexus.facility.record import DELAY_S, BedRecord, _join
from nexus.facility.service import FacilityService, _Bed
from nexus.facility.simulate import BedPlan
from nexus.facility.supervisor import Supervisor
from nexus.sources.spec import SourceSpec
from nexus.store.db import Store
from nexus.store.recording import RecordingJournal, merge_journal


class _WallClock(ScaledClock):
    """The service's night clock for real beds: wall time (× ``speed``); ``advance`` has nothing to do."""

    def advance(self, dt: float) -> None:
        """Time passes by itself (the service's loop waits for each tick's time before stepping)."""


class FloorService(FacilityService):
    """A running facility of real beds (LSL streams, a BrainFlow board, EDF replays).

    Parameters
    ----------
    store : Store
        The facility database (at the migration head).
    source : SourceSpec
        Where the beds come from (:func:`~nexus.sources.spec.parse_source`; not ``synthetic``).
    bed_map : BedMap, optional
        Stream name or source id → client; the other streams join unassigned.
    hours : float
        Length of the night, in hours (of the replay's time for a replay).
    data_dir : path-like
        Where the run's journal and EDF+ files go (``<data_dir>/runs/<run id>/``).
    events : bool
        Run the event detectors.
    dropout_s : float
        A bed without samples for this long raises a ``dropout`` glitch, in s (of the source's time).
    queue_size, run_id
        As for :class:`FacilityService`.
    """

    def __init__(self, store: Store, *, source: SourceSpec, bed_map: BedMap | None = None, hours: float = 8.0,
                 data_dir: str | Path = "nexus-data", events: bool = True, dropout_s: float = 2.0,
                 queue_size: int = 1024, run_id: str | None = None) -> None:
        if source.kind == "synthetic":
            raise InvalidInputError("Synthetic beds run in FacilityService (nexus run --source synthetic:N).")
        speed = float(source.speed) if source.kind == "replay" else 1.0
        super().__init__(store, clients=1, speed=speed, hours=hours, data_dir=data_dir, events=events,
                         queue_size=queue_size, run_id=run_id)
        self.spec = source
        self.bed_map = bed_map
        self.dropout_s = float(dropout_s)
        wall = _WallClock(speed)
        self.clock = wall  # type: ignore[assignment]  # the night's clock is the wall clock itself
        self.wall = wall
        self.floor: Floor | None = None
        self.records: dict[str, BedRecord] = {}
        """Every bed that came (joined or waiting for its lane), by session."""
        self._waiting: set[str] = set()  # beds shown while waiting for their lane
        self.refused: list[str] = []
        self.recordings: dict[str, Path] = {}
        """The EDF+ of each bed, written at :meth:`stop`."""
        self.assign_poll_s = 1.0
        """Least wall-clock time between two reads of the unassigned beds' owners (``nexus assign``), in s."""
        self._assign_next = 0.0

    # -- life cycle ------------------------------------------------------------------------------
    def start(self, *, background: bool = False) -> None:
        """Start the floor (devices there now join before the first tick) and, with ``background``, the loop."""
        from nexus.core.errors import StateError
        from nexus.facility.analyzers import default_analyzers
        from nexus.facility.orders import OrderDesk, register_run

        if self.started:
            raise StateError("The facility is already running.")
        self.floor = make_floor(self.spec, self.clock, self.bed_map)
        self.floor.start()  # a folder or board that is not there: one line, nothing written
        register_run(self.store, self.run_id, [self.root / "journal"])
        self.journal = RecordingJournal(self.root / "journal", background_sync=True)
        speed = self.speed
        self.sup = Supervisor(self.clock, journal=self.journal,
                              analyzers=default_analyzers(dreamscape=False, events=self.detect_events,
                                                          block_s=self.tick_s),
                              delay_s=DELAY_S[self.spec.kind] * speed, dropout_s=self.dropout_s * speed,
                              retry_s=2.0 * speed, lane_capacity=64, buffer_s=max(8.0, 4 * self.tick_s))
        self.sup.listeners.append(self._on_records)
        self.desk = OrderDesk(self.store, self.sup, self.run_id)  # 'nexus extract' from another process
        self.sup.between_steps.append(self.desk.poll)
        from nexus.facility.consent_desk import ConsentDesk

        # consent changed through the API or 'nexus client consent' reaches the beds, as in FacilityService;
        # every bed is followed from the tick it came
        self.consent = ConsentDesk(self.store, self.sup, [])
        self.sup.between_steps.append(self.consent.poll)
        self._take_floor()
        with self._lock:
            self.sup.settle()  # the layouts there at start warmed up before the first tick
            self._register_joined()
        self.started = True
        logger.info("Facility %s: %d beds from %s (more join as their devices appear).", self.run_id,
                    len(self._beds), self.spec.text)
        if background:
            import threading

            from nexus.safety.watchdog import LEASE_S, Watchdog

            self.watchdog = Watchdog(LEASE_S)
            self.watchdog.watch_supervisor(self.sup)
            self.watchdog.start()
            self._thread = threading.Thread(target=self._loop, name="nexus-facility", daemon=True)
            self._thread.start()

    def _tick(self, target: float) -> None:
        self._take_floor()
        super()._tick(target)
        with self._lock:
            self._register_joined()
        self._read_assignments()

    def _read_assignments(self) -> None:
        """Unassigned beds given to their client from another process (``nexus assign``), read from the database."""
        now = time.monotonic()
        if now < self._assign_next:
            return
        self._assign_next = now + self.assign_poll_s
        with self._lock:
            open_beds = [name for name, rec in self.records.items() if rec.client is None and name in self._by_session]
        if not open_beds:
            return
        from sqlalchemy import select

        from nexus.store.models import Client, NightSession

        try:
            with self.store.session() as s:
                rows = s.execute(select(NightSession.id, Client.code, Client.id, Client.intake)
                                 .join(Client, Client.id == NightSession.client_id)
                                 .where(NightSession.id.in_(open_beds))).all()
        except Exception as exc:  # the database is down: the beds record on, still shown unassigned
            self._database_down(exc)
            return
        for session, code, client_id, intake in rows:
            if not (intake or {}).get("unassigned"):  # its owner is a real client now
                logger.info("Bed %s was given to client %s.", session, code)
                self.assigned(str(session), str(code), str(client_id))

    def _take_floor(self) -> None:
        """Devices that appeared since the last tick: started on the supervisor (a new layout joins later)."""
        if self.floor is None or self.sup is None:
            return
        offers, refused = self.floor.poll()
        for line in refused:
            self.refused.append(line)
            logger.warning("Refused: %s", line)
        if not offers:
            return
        with self._lock:
            before = set(self.records)
            for offer in offers:
                try:
                    _join(self.sup, offer, self.run_id, self.records, self.store,
                          lambda line: logger.info("%s", line))
                except Exception as exc:  # its row could not be written (database down): the bed records on
                    self._database_down(exc)
            self._follow_consent([name for name in self.records if name not in before])

    def _follow_consent(self, sessions: list[str]) -> None:
        """The consent desk follows these beds' clients from now on (under the lock)."""
        if self.consent is None or not sessions:
            return
        try:
            self.consent.follow(sessions)
        except Exception as exc:  # the database is down: the beds run with the consent they started with
            self._database_down(exc)

    def _register_joined(self) -> None:
        """Beds that came since the last tick: on the consoles from now on, waiting for their lane or not (locked)."""
        assert self.sup is not None
        for name in [n for n in self._waiting if n in self.sup.sessions]:  # on its lane now: its view changes
            self._waiting.discard(name)
            self._changed.add(name)
        for name, rec in self.records.items():
            if name in self._by_session:
                continue
            if name not in self.sup.sessions:
                if self.sup.waiting_s(name) is None:  # neither running nor waiting (refused when it started)
                    continue
                self._waiting.add(name)
            client_id = self._client_id(name)
            plan = BedPlan(session=name, client=rec.client or f"unassigned-{rec.label}", seed=0,
                           profile=rec.source, program=None)
            bed = _Bed(len(self._beds), plan, client_id=client_id)
            self._beds.append(bed)
            self._by_session[name] = bed
            self._changed.add(name)
        self.n = max(1, len(self._beds))

    def _client_id(self, session: str) -> str:
        from nexus.store.models import NightSession

        try:
            with self.store.session() as s:
                row = s.get(NightSession, session)
                return "" if row is None else str(row.client_id)
        except Exception as exc:  # the database is down: the bed runs on, shown without its client
            self._database_down(exc)
            return ""

    def _loop_stopped(self) -> None:
        """The loop has stopped: close the floor; beds still waiting for their lane join, to end as the others."""
        if self.floor is not None:
            self.floor.close()
        if self.sup is not None:
            with self._lock:
                try:
                    self.sup.settle(timeout=120.0)
                except Exception as exc:
                    logger.error("Lanes still being built could not be installed: %s", exc)
                self._register_joined()

    def stop(self) -> None:
        """Stop the loop and the floor, end every bed, write one EDF+ per bed (rows point to them)."""
        if self.stopped or not self.started:
            return
        super().stop()  # the floor closes in _loop_stopped, before the beds end
        clients = {b.session: b.client for b in self.records.values() if b.client}
        try:
            self.recordings = merge_journal(self.root / "journal", self.root, clients=clients)
        except Exception as exc:  # the journal stays: 'nexus recover' writes the EDF+ files later
            logger.error("The EDF+ files of run %s could not be written (%s); the journal is in %s.", self.run_id,
                         exc, self.root / "journal")
            return
        self._store_paths()

    def _store_paths(self) -> None:
        from nexus.store.models import NightSession

        try:
            with self.store.session() as s:
                for name, path in self.recordings.items():
                    row = s.get(NightSession, name)
                    if row is not None:
                        row.recording_path = str(path)
        except Exception as exc:
            logger.error("The recordings of run %s are in %s; their paths could not be stored (%s).", self.run_id,
                         self.root, exc)

    def assigned(self, session: str, client_code: str, client_id: str) -> None:
        """An unassigned bed was given to its client (:func:`~nexus.facility.record.assign_bed`): shown, consent on."""
        import dataclasses

        from nexus.facility.record import _client_scopes

        scopes = _client_scopes(self.store, client_code)
        with self._lock:
            rec, bed = self.records.get(session), self._by_session.get(session)
            if rec is None or bed is None:
                return
            rec.client = client_code
            bed.plan = dataclasses.replace(bed.plan, client=client_code, scopes=list(scopes or []))
            bed.client_id = client_id
            bed.version += 1
            if self.sup is not None and scopes is not None and bed.state == "running":
                self.sup.set_consent(session, scopes)  # psyche glitches now follow the client's consent
            self._follow_consent([session])  # and its later changes (the desk reads the bed's new owner)
            view = self._bed_view(bed)
        self._publish({"type": "beds", "t": self.clock.now(), "beds": [view]})

    # -- reads -----------------------------------------------------------------------------------
    def _bed_view(self, b: _Bed) -> dict[str, Any]:
        view = super()._bed_view(b)
        rec = self.records.get(b.plan.session)
        if rec is not None:
            view.update({"bed": rec.bed or rec.label, "source": rec.source, "unassigned": rec.client is None,
                         "channels": list(rec.channels), "fs": rec.fs})
        waited = None if self.sup is None or b.state != "running" else self.sup.waiting_s(b.plan.session)
        view["joining"] = waited is not None  # recording; its analysis starts once its lane is built
        if waited is not None:
            view["t_s"] = round(waited, 1)
        return view

    def status(self) -> dict[str, Any]:
        """Facility figures, with the source, beds waiting for their lane and refused devices."""
        out = super().status()
        with self._lock:
            out.update({"clients": len(self._beds), "source": self.spec.text,
                        "joining": [] if self.sup is None else self.sup.joining, "refused": list(self.refused)})
        return out


def wait_for_beds(service: FloorService, n: int, timeout_s: float = 60.0) -> int:
    """Wait until ``n`` beds show (tests, scripts); returns how many do."""
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end and len(service.beds()) < n:
        time.sleep(0.05)
    return len(service.beds())


__all__ = ["FloorService", "wait_for_beds"]
