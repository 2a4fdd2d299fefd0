r"""Where a facility's beds come from: a ``--source`` spec turned into beds, as they appear.

A :class:`Floor` is polled between ticks and hands out :class:`BedOffer`\\ s (an opened source,
ready to join the supervisor) and one-line refusals (a stream or file that cannot be a bed; the
other beds record on):

* :class:`LslFloor` watches the network with a background resolver: every matching stream
  becomes a bed when it appears (also later in the night); the inlet is opened and its channels
  mapped in the background, so the tick loop never waits on the network. A stream that vanishes
  keeps its bed (the inlet recovers it when it returns, by its source id). Whether a new stream
  with a bed's source id is that device's restart or a second device is told by the resolver: a
  dead outlet drops out of its list ``forget_after_s`` after it died, so a newcomer is refused only
  when the bed's own stream is still listed beside it for longer than that (:attr:`LslFloor.settle_s`).
* :class:`BrainFlowFloor` opens one board, :class:`ReplayFloor` every EDF/BDF of a folder.

Beds are matched to clients by a :class:`BedMap` (stream name or source id → client code); a
stream that matches no client joins as an *unassigned* bed that records only.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nexus.core.clock import Clock
from nexus.core.errors import DataFormatError, InvalidInputError, NexusError, NotFoundError
from nexus.core.log import logger
from nexus.core.types import Chunk
from nexus.sources.base import Source
from nexus.sources.channels import ChannelMap, check_rate, map_channels, unit_factor
from nexus.sources.spec import SourceSpec


@dataclass
class BedOffer:
    """A source ready to become a bed."""

    key: str
    """What identifies the device across restarts (LSL source id, board, file)."""
    label: str
    """Human name of the bed's device (stream name, board, file stem)."""
    source: Source
    describe: str
    """The bed's source as stored with its session (e.g. ``lsl:bed-3 (source id …)``)."""
    client: str | None = None
    """Client code from the bed map (None: an unassigned, record-only bed)."""
    bed: str | None = None


class BedMap:
    """Stream name or source id → (client code, bed label), read from a small YAML or JSON file.

    The file maps each key to a client code, or to ``{client: CODE, bed: LABEL}``::

        bed-01: C-0001
        ward2-amp7: {client: C-0002, bed: bed-7}
    """

    def __init__(self, entries: dict[str, tuple[str, str | None]] | None = None, path: Path | None = None) -> None:
        self.entries = dict(entries or {})
        self.path = path
        self.claimed: dict[str, str] = {}  # client code → the key that claimed it first

    @classmethod
    def load(cls, path: str | Path) -> BedMap:
        """Read a bed map (one line naming the problem when the file is not one)."""
        import yaml

        p = Path(path)
        if not p.is_file():
            raise NotFoundError(f"Bed map '{p}' does not exist. Give a YAML file of 'stream: client' lines.")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise DataFormatError(f"Bed map '{p}' is not YAML ({str(exc).splitlines()[0]}). "
                                  "Write one 'stream: client' per line.") from None
        if not isinstance(raw, dict):
            raise DataFormatError(f"Bed map '{p}' must map stream names to clients ('bed-01: C-0001' lines).")
        entries: dict[str, tuple[str, str | None]] = {}
        for k, v in raw.items():
            if isinstance(v, str | int):
                entries[str(k)] = (str(v), None)
            elif isinstance(v, dict) and "client" in v:
                entries[str(k)] = (str(v["client"]), None if v.get("bed") is None else str(v["bed"]))
            else:
                raise DataFormatError(f"Bed map '{p}': entry '{k}' needs a client code ('{k}: C-0001').")
        return cls(entries, p)

    def match(self, key: str, name: str) -> tuple[str | None, str | None]:
        """(client, bed) of a device by its source id, then its name; (None, None) when unknown."""
        return self.entries.get(key) or self.entries.get(name) or (None, None)


class Floor:
    """Hands out beds as their devices appear (see the module docstring)."""

    def __init__(self, spec: SourceSpec, clock: Clock, bed_map: BedMap | None = None) -> None:
        self.spec = spec
        self.clock = clock
        self.bed_map = bed_map or BedMap()
        self._offers: queue.Queue[BedOffer | str] = queue.Queue()
        self.refused: list[str] = []
        self.offered = 0
        """Beds handed out so far."""

    def start(self) -> None:
        """Start looking for devices (a device that must be there raises :class:`NotFoundError`)."""

    def poll(self) -> tuple[list[BedOffer], list[str]]:
        """New beds and new refusals since the last poll (never blocks)."""
        offers: list[BedOffer] = []
        lines: list[str] = []
        while True:
            try:
                item = self._offers.get_nowait()
            except queue.Empty:
                return offers, lines
            if isinstance(item, str):
                self.refused.append(item)
                lines.append(item)
            else:
                offers.append(item)
                self.offered += 1

    def _offer(self, offer: BedOffer) -> None:
        """Queue ``offer`` unless its client is already recording from another device (refused then)."""
        client, bed = self.bed_map.match(offer.key, offer.label)
        if client is not None:
            first = self.bed_map.claimed.setdefault(client, offer.key)
            if first != offer.key:
                offer.source.close()
                self._offers.put(f"{offer.describe} claims client {client}, whose bed already records from "
                                 f"'{first}'; it was not started. Fix the bed map ({self.bed_map.path}).")
                return
        elif self.bed_map.entries:
            logger.warning("%s matches no client in the bed map; it records as an unassigned bed.", offer.describe)
        offer.client, offer.bed = client, bed
        self._offers.put(offer)

    def close(self) -> None:
        """Stop looking (sources already handed out belong to the supervisor)."""


class LslFloor(Floor):
    """Every LSL stream of the spec's type (and name prefix) becomes a bed, now or when it appears."""

    def __init__(self, spec: SourceSpec, clock: Clock, bed_map: BedMap | None = None, *,
                 every_s: float = 0.5, forget_after_s: float = 5.0) -> None:
        super().__init__(spec, clock, bed_map)
        self.every_s = every_s
        self.forget_after_s = forget_after_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beds: dict[str, Any] = {}  # key → LslSource
        self._uids: dict[str, str] = {}  # key → uid of the stream first seen with it
        self._told: set[str] = set()
        self._opening: set[str] = set()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(48)  # streams opened side by side at most
        self._openers: list[threading.Thread] = []
        self.settle_s = forget_after_s + every_s + 1.0
        """How long two streams with one source id must both stay listed before one is refused, in seconds:
        a dead outlet stays in the resolver's list up to ``forget_after_s`` after it died, so a device
        restarted faster than that is listed twice for a while; one more poll and a second of slack."""
        self._rival_since: dict[str, float] = {}  # uid or key → when a source id was first seen listed twice

    def start(self) -> None:
        """Start the background resolver thread (streams are opened in threads of their own, 48 at a time)."""
        from nexus.sources.lsl import configure_lsl

        configure_lsl()  # before liblsl's first use: it reads its configuration once
        import pylsl  # noqa: F401 - fail here, in one line, when the [live] extra is missing

        self._thread = threading.Thread(target=self._watch, name="nexus-lsl-floor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        import pylsl

        pred = f"type='{self.spec.stream_type}'"
        if self.spec.name_prefix:
            pred += f" and starts-with(name,'{self.spec.name_prefix}')"
        resolver = pylsl.ContinuousResolver(pred=pred, forget_after=self.forget_after_s)
        try:
            while not self._stop.is_set():
                try:
                    found = resolver.results()
                except Exception as exc:  # a resolver hiccup must not end discovery
                    logger.warning("LSL discovery: %s", exc)
                    found = []
                self._consider(found)
                self._stop.wait(self.every_s)
        finally:
            del resolver

    def _consider(self, found: Sequence[Any]) -> None:
        now = time.monotonic()
        by_key: dict[str, dict[str, Any]] = {}
        for info in found:
            by_key.setdefault(_stream_key(info), {}).setdefault(info.uid(), info)
        seen: set[str] = set()
        for key, infos in by_key.items():
            with self._lock:
                if key in self.beds:
                    seen.update(self._check_claim(key, infos, now))
                    continue
                if key in self._told or key in self._opening:
                    continue
            what = f"LSL stream '{next(iter(infos.values())).name()}'"
            if len(infos) > 1:  # a restart the resolver has not forgotten yet, or two devices: wait and see
                seen.add(key)
                if now - self._rival_since.setdefault(key, now) < self.settle_s:
                    continue
                self._told.add(key)
                self._offers.put(f"{len(infos)} LSL streams claim the same bed '{key}' (source id); none was "
                                 "started. Give each device its own source id.")
                continue
            info = next(iter(infos.values()))
            with self._lock:
                self._opening.add(key)
            # daemon threads, not a pool: a pool's threads are joined at exit, and liblsl can hold one for ever
            th = threading.Thread(target=self._open_slot, args=(key, info, what), name="nexus-lsl-open", daemon=True)
            self._openers = [t for t in self._openers if t.is_alive()] + [th]
            th.start()
        for k in self._rival_since.keys() - seen:  # the doubt is over (one of them was forgotten)
            del self._rival_since[k]

    def _open_slot(self, key: str, info: Any, what: str) -> None:
        with self._slots:
            if self._stop.is_set():
                with self._lock:
                    self._opening.discard(key)
                return
            self._open(key, info, what)

    def _open(self, key: str, info: Any, what: str) -> None:
        from nexus.sources.lsl import LslSource

        src = LslSource(_session_name(info.name()), info=info, expected_channels=self.spec.channels,
                        require_eeg=True, timeout=5.0, clock=self.clock)
        try:
            src.open()
        except InvalidInputError as exc:  # refused for good: said once
            with self._lock:
                self._told.add(key)
                self._opening.discard(key)
            self._offers.put(exc.message)
            return
        except Exception as exc:  # could not connect now: tried again on a later round
            logger.info("%s: not opened yet (%s).", what, exc)
            src.close()
            with self._lock:
                self._opening.discard(key)
            return
        with self._lock:
            if self._stop.is_set():  # the run ended while it opened: never a bed
                self._opening.discard(key)
                src.close()
                return
            self.beds[key] = src
            self._uids[key] = info.uid()
            self._opening.discard(key)
        sid = info.source_id()
        self._offer(BedOffer(key, info.name(), src, f"{what} (source id '{sid}' on {info.hostname()})"
                             if sid else f"{what} on {info.hostname()}"))

    def _check_claim(self, key: str, infos: dict[str, Any], now: float) -> list[str]:
        """Streams listed with a recording bed's source id (uid → info): a restart is the bed's, a rival is refused.

        When the bed's stream is no longer listed (the resolver forgot it: it died), a new stream with its
        source id is its restart (the inlet recovers to it by itself). While the bed's stream is still
        listed, a newcomer waits: a dead outlet stays listed up to ``forget_after_s``; a newcomer still
        listed beside it after :attr:`settle_s` is a second live device and is refused, in one line.
        Returns the uids whose doubt goes on (their first-seen times are kept).
        """
        cur = self._uids[key]
        new = [u for u in infos if u != cur and u not in self._told]
        if not new:
            return []
        if cur not in infos:  # the bed's old stream timed out of the resolver: the (first) newcomer is its return
            cur = min(new, key=lambda u: self._rival_since.get(u, now))
            self._uids[key] = cur
            logger.info("LSL stream '%s' is back (restarted) for bed '%s'.", infos[cur].name(), key)
            new.remove(cur)
        waiting = []
        for uid in new:
            if now - self._rival_since.setdefault(uid, now) < self.settle_s:
                waiting.append(uid)
                continue
            info = infos[uid]
            self._told.add(uid)
            self._offers.put(f"LSL stream '{info.name()}' on {info.hostname()} claims bed '{key}' (source id), "
                             "which already records from another stream; it was not started. Give each device "
                             "its own source id.")
        return waiting

    def close(self, timeout: float = 5.0) -> None:
        """Stop the resolver thread and the openers, waiting ``timeout`` s at most for each (liblsl may hang)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        end = time.monotonic() + timeout
        for th in self._openers:
            th.join(max(0.0, end - time.monotonic()))
        left = sum(th.is_alive() for th in self._openers)
        if left:
            logger.warning("%d LSL stream(s) still being opened at the end were left behind (held in liblsl).", left)
        for offer in self.poll()[0]:  # opened while the run ended: never joined, released here
            offer.source.close()


class MappedSource(Source):
    """Another source with its channels renamed and scaled to µV (:class:`ChannelMap`)."""

    def __init__(self, inner: Source, mapping: ChannelMap, keep: Sequence[int] | None = None) -> None:
        self.inner = inner
        self.mapping = mapping
        self.keep = None if keep is None else np.asarray(keep, dtype=np.intp)
        self.session = inner.session
        self.channels = mapping.names
        self.fs = inner.fs

    def open(self) -> None:
        """Open the wrapped source."""
        self.inner.open()

    def read(self) -> Chunk | None:
        """The wrapped source's next chunk, renamed and in µV."""
        c = self.inner.read()
        if c is None:
            return None
        x = np.asarray(c.data, dtype=np.float64)
        x = x[self.keep] if self.keep is not None else x.copy()
        return Chunk(c.session, c.t0, c.fs, self.mapping.apply(x), self.channels, c.seq)

    def close(self) -> None:
        """Close the wrapped source."""
        self.inner.close()


class BrainFlowFloor(Floor):
    """One BrainFlow board as one bed (its EEG rows, named from the board description, in µV)."""

    def start(self) -> None:
        """Open the board (raises :class:`NotFoundError` in one line when it cannot be reached)."""
        from nexus.sources.brainflow import BrainFlowSource

        s = self.spec
        src = BrainFlowSource(_session_name(f"brainflow-{s.board}"), s.board, serial_port=s.serial,
                              mac_address=s.mac, ip_address=s.ip)
        src.open()
        names = list(src.channels)
        mapping = map_channels(names, ["EEG"] * len(names), [], n_channels=len(names),
                               what=f"BrainFlow board '{s.board}'")
        key = f"brainflow:{s.board}:{s.serial or s.mac or s.ip}"
        self._offer(BedOffer(key, f"brainflow-{s.board}", MappedSource(src, mapping), f"brainflow:{s.board}"))


class ReplayFloor(Floor):
    """Every EDF/BDF in a folder as a bed, replayed on the facility's clock.

    Each bed replays the channels recorded at the file's highest rate whose unit is a potential
    (converted to µV); the others (respiration, temperature, 1-Hz channels) are left out, said once.
    """

    def start(self) -> None:
        """Read every recording of the folder (a bad file is refused in one line; the others replay)."""
        from nexus.sources.edf_replay import EdfReplaySource, _read_checked

        folder = self.spec.folder
        assert folder is not None
        if not folder.is_dir():
            raise NotFoundError(f"Replay folder '{folder}' does not exist. Give a folder of EDF files.")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".edf", ".bdf"))
        if not files:
            raise NotFoundError(f"Replay folder '{folder}' holds no .edf or .bdf file.")
        for path in files:
            what = f"Recording '{path.name}'"
            try:
                rec = _read_checked(path)
                sigs = [s for s in rec.signals if unit_factor(s.unit or "uV") is not None]
                if not sigs:
                    raise InvalidInputError(f"{what} has no signal in a potential unit (µV, mV, V); it was not "
                                            "replayed.")
                fs = max(s.fs for s in sigs)
                sigs = [s for s in sigs if s.fs == fs]
                left = [s.label for s in rec.signals if all(s is not k for k in sigs)]
                if left:
                    logger.info("%s: replaying %s at %g Hz; left out: %s.", what,
                                ", ".join(s.label for s in sigs), fs, ", ".join(left))
                mapping = map_channels([s.label for s in sigs], [], [s.unit for s in sigs],
                                       n_channels=len(sigs), what=what)
                check_rate(fs, what)
                src = EdfReplaySource(rec, self.clock, _session_name(path.stem),
                                      channels=[s.label for s in sigs], speed=1.0)
            except NexusError as exc:
                self._offers.put(_one_line(exc.message))
                continue
            self._offer(BedOffer(str(path.resolve()), path.stem, MappedSource(src, mapping),
                                 f"replay:{path.name}"))


def make_floor(spec: SourceSpec, clock: Clock, bed_map: BedMap | None = None) -> Floor:
    """The :class:`Floor` of a spec (``synthetic`` is not a floor: the facility runs it as a fleet)."""
    if spec.kind == "lsl":
        return LslFloor(spec, clock, bed_map)
    if spec.kind == "brainflow":
        return BrainFlowFloor(spec, clock, bed_map)
    if spec.kind == "replay":
        return ReplayFloor(spec, clock, bed_map)
    raise InvalidInputError(f"A {spec.kind} source has no floor of devices.")


def _stream_key(info: Any) -> str:
    sid = info.source_id()
    return str(sid) if sid else f"{info.name()}@{info.hostname()}"


def _session_name(label: str) -> str:
    """A file-safe bed name from a device label (at most 20 characters; the run's id is appended)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_.")[:20] or "bed"


def _one_line(msg: str) -> str:
    return " ".join(msg.split())


__all__ = ["BedMap", "BedOffer", "BrainFlowFloor", "Floor", "LslFloor", "MappedSource", "ReplayFloor", "make_floor"]
