"""Consent changes reach running beds: the facility reads its clients' consent from the database.

``nexus client consent`` and the API write a client's scopes (and audit the change, in
:mod:`nexus.store.clients`); a running facility's :class:`ConsentDesk` reads the scopes of its beds'
clients after every lane step (a wall-clock check first, so that the database is asked at most every
``poll_s``) and hands each change to :meth:`Supervisor.set_consent
<nexus.facility.supervisor.Supervisor.set_consent>`: from the next step the bed's program runs only as far
as the new consent allows, and a bed that may no longer hear anything is silenced at once. The change is
journaled as a ``consent_changed`` decision, stored and audited with the night's other decisions.

With ``background=True`` (``nexus run``'s live loop) the database is read on a
:class:`~nexus.facility.desk_reader.DeskReader` thread, kicked at the end of each tick: a step only applies
the newest read (reading every client of 500 beds took a tick 4-7 ms once a second).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from nexus.core.errors import InvalidInputError, NexusError
from nexus.core.log import logger
from nexus.facility.desk_reader import DeskReader

SAFE_SCOPES = ["recording"]
"""What a bed runs under when its client's consent record cannot be read: recording, no sound."""


class ConsentDesk:
    """Follows the consent of the clients of ``sessions`` (session ids of ``sup``).

    Parameters
    ----------
    store : Store
        The facility database.
    sup : Supervisor
        The running facility.
    sessions : list of str
        Session ids to follow (their clients are looked up once).
    poll_s : float
        Least wall-clock time between two reads of the database, in s.
    background : bool
        Read on a thread of its own (see the module notes); :meth:`close` stops it.
    """

    def __init__(self, store: Any, sup: Any, sessions: list[str], *, poll_s: float = 1.0,
                 background: bool = False) -> None:
        self.store, self.sup, self.poll_s = store, sup, float(poll_s)
        self.owner: dict[str, str] = {}
        self.known: dict[str, tuple[str, ...]] = {}
        self._next = 0.0
        self._log_at = 0.0  # next time a database outage may be logged again
        self._owner_lock = threading.Lock()  # the owners, read by the reader thread
        self._seq = 0  # reads started so far: a read older than the last one applied is not applied
        self._applied_seq = 0
        self.applied = 0
        """Consent changes handed to running beds so far."""
        self.reader: DeskReader | None = None
        """With ``background``: the thread that reads the database (kicked at the end of each tick)."""
        self.follow(sessions)  # what the beds started with
        if background:
            self.reader = DeskReader("consent", self._read, self.poll_s, aligned=True)
            self.reader.start()

    def follow(self, sessions: list[str]) -> None:
        """Follow these sessions too (beds that joined later; a bed just given to its client: its owner read again).

        Their clients' consent now is what they run with; the changes made after it are applied.
        """
        from sqlalchemy import select

        from nexus.store.models import NightSession

        owners: dict[str, str] = {}
        with self.store.session() as s:
            for k in range(0, len(sessions), 500):
                owners.update(dict(s.execute(select(NightSession.id, NightSession.client_id)
                                             .where(NightSession.id.in_(sessions[k:k + 500]))).all()))
        with self._owner_lock:
            self.owner.update(owners)
        for name in sessions:
            self.known.pop(name, None)  # read afresh below: the first read is what the bed runs with
        self.poll(force=True)

    def poll(self, force: bool = False) -> int:
        """Apply the consent changes made since the last read; return how many beds changed.

        With a reader thread the last read it finished is applied (``force``: a read now, on this thread).
        """
        now = time.monotonic()
        if self.reader is not None and not force:
            got = self.reader.take()
            if got is None:
                return 0
            if isinstance(got, Exception):
                self._unreadable(got, now)
                return 0
            return self._apply(*got)
        if not force and now < self._next:
            return 0
        self._next = now + self.poll_s
        try:
            read = self._read()
        except Exception as exc:  # a database that is down must not stop the facility: the beds keep their consent
            self._unreadable(exc, now)
            return 0
        return self._apply(*read)

    def kick(self) -> None:
        """The end of a tick: the reader thread may read now (nothing without one)."""
        if self.reader is not None:
            self.reader.kick()

    def close(self) -> None:
        """Stop the reader thread, if any."""
        if self.reader is not None:
            self.reader.close()

    def _unreadable(self, exc: Exception, now: float) -> None:
        if now >= self._log_at:
            self._log_at = now + 60.0
            logger.error("Consent records cannot be read (%s); every bed keeps the consent it has, retrying.",
                         " ".join(str(exc).split())[:200])

    def _read(self) -> tuple[int, frozenset[str], dict[str, tuple[str, ...]]]:
        """Read the consent of every followed client: (read number, clients asked about, their scopes)."""
        from sqlalchemy import select

        from nexus.store.models import Client

        with self._owner_lock:
            self._seq += 1
            seq = self._seq
            clients = sorted(set(self.owner.values()))
        scopes: dict[str, tuple[str, ...]] = {}
        with self.store.session() as s:
            for k in range(0, len(clients), 500):
                for cid, sc in s.execute(select(Client.id, Client.consent_scopes)
                                         .where(Client.id.in_(clients[k:k + 500]))).all():
                    scopes[cid] = tuple(sc or [])
        return seq, frozenset(clients), scopes

    def _apply(self, seq: int, asked: frozenset[str], scopes: dict[str, tuple[str, ...]]) -> int:
        """Hand each bed whose client's consent changed its new scopes (a client not in the database: none)."""
        from nexus.guard.consent import parse_scopes

        if seq <= self._applied_seq:  # a read that began before one already applied: older news
            return 0
        self._applied_seq = seq
        changed = 0
        with self._owner_lock:
            owners = list(self.owner.items())
        for session, cid in owners:
            if cid not in asked:
                continue  # followed after this read began: its next read decides
            now_sc = scopes.get(cid, ())
            before = self.known.get(session)
            self.known[session] = now_sc
            if before is None or before == now_sc:
                continue  # the first read is what the night started with
            try:
                apply = [x.value for x in parse_scopes(now_sc)]
            except InvalidInputError as exc:
                logger.error("Client %s: unreadable consent record (%s); session %s runs without sound.",
                             cid, exc, session)
                apply = list(SAFE_SCOPES)
            rt = self.sup.sessions.get(session)
            if (rt is not None and rt.state == "ended") or (rt is None and session not in self.sup.joining):
                continue  # a bed waiting for its lane follows its consent too
            try:
                self.sup.set_consent(session, apply)
            except NexusError as exc:  # a bed that ended meanwhile
                logger.info("Consent change for %s not applied: %s", session, exc)
                continue
            changed += 1
        self.applied += changed
        return changed
