"""Bed sinks that need the layers below the facility: a synthetic sleeper's ears, and a WAV per bed.

* :class:`SleeperSink` plays each command to one row of a
  :class:`~nexus.sources.synthetic.fleet.SyntheticFleet` (:meth:`SyntheticFleet.play`): clicks can
  enlarge slow waves or arouse, sounds and prompts can wake, exactly as the synthetic sleeper's
  response model says. Levels are the program's dBFS (after the sink's ceiling) plus the bed's
  calibration ``spl_at_0dbfs`` (the SPL at the ear of a full-scale signal; 80 dB SPL by default,
  so a -30 dBFS click is heard at 50 dB SPL as in Ngo et al. 2013). The sleepers of one fleet share
  a :class:`FleetEars`: what a bank's delivery plays to them is answered in one
  :meth:`SyntheticFleet.play_many` call when the delivery ends (the same outcomes as one call each).
* :class:`WavBedSink` keeps a bed's commands and renders them at the end of the night into a
  48-kHz WAV file through :class:`~nexus.dreamscape.renderer.Renderer` and a
  :class:`~nexus.sinks.wav.WavSink` (whose limiter every sample passes).
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from nexus.dreamscape.controller import Command
from nexus.dreamscape.schema import Program
from nexus.sinks.bedside import Batch, BedSink
from nexus.sinks.limiter import HARD_CEILING_DBFS


class FleetEars:
    """The ears of one fleet's sleepers: the sounds of one delivery, answered in one call.

    Between :meth:`begin` and :meth:`flush` (a :class:`~nexus.sinks.bedside.SinkBank` delivery) the
    sounds are checked and kept; :meth:`flush` plays them all through the fleet's ``play_many`` (the
    outcomes of ``play`` called for each in turn) and counts each outcome at its sink. Outside a
    delivery a sound is played at once. One per fleet: :meth:`of`.
    """

    _of: weakref.WeakKeyDictionary[Any, FleetEars] = weakref.WeakKeyDictionary()

    def __init__(self, fleet: Any) -> None:
        self.fleet = fleet
        self._depth = 0
        self._sinks: list[SleeperSink] = []
        self._rows: list[int] = []
        self._t: list[float] = []
        self._kinds: list[str] = []
        self._levels: list[float] = []

    @classmethod
    def of(cls, fleet: Any) -> FleetEars | None:
        """The ears of ``fleet`` (None for a fleet without ``play_many``: its sinks play each sound at once)."""
        if not callable(getattr(fleet, "play_many", None)):
            return None
        ears = cls._of.get(fleet)
        if ears is None:
            ears = cls._of[fleet] = cls(fleet)
        return ears

    def begin(self) -> None:
        """Keep the sounds from now on (a delivery starts; deliveries may nest)."""
        self._depth += 1

    def hear(self, sink: SleeperSink, row: int, t: float, kind: str, level_db: float) -> None:
        """A sound for ``row`` at fleet time ``t`` (s), ``level_db`` dB SPL: kept in a delivery, else played now.

        Raises at once, as the fleet's ``play`` would, for a sound the fleet does not take.
        """
        if not self._depth:
            sink.count(kind, self.fleet.play(row, t, kind, level_db))
            return
        self.fleet.check_sound(row, kind, level_db)
        self._sinks.append(sink)
        self._rows.append(row)
        self._t.append(t)
        self._kinds.append(kind)
        self._levels.append(level_db)

    def flush(self) -> None:
        """Play the kept sounds in one call (at the end of the outermost delivery) and count their outcomes."""
        self._depth = max(0, self._depth - 1)
        if self._depth or not self._rows:
            return
        sinks, kinds = self._sinks, self._kinds
        rows, t, levels = self._rows, self._t, self._levels
        self._sinks, self._rows, self._t, self._kinds, self._levels = [], [], [], [], []
        for sink, kind, outcome in zip(sinks, kinds, self.fleet.play_many(rows, t, kinds, levels), strict=True):
            sink.count(kind, outcome)


class SleeperSink(BedSink):
    """One synthetic sleeper's ears.

    Parameters
    ----------
    fleet : SyntheticFleet
        The fleet the sleeper belongs to.
    row : int
        The sleeper's row in the fleet.
    program : Program
        The bed's program (scene levels come from its layers).
    t0_s : float
        Lane time of the fleet's first sample, in s (command times are lane times).
    spl_at_0dbfs : float
        Calibration of the bed, dB SPL at the ear for 0 dBFS.
    ceiling_dbfs : float
        Output ceiling of the bed, dBFS (the facility ceiling applies on top).
    """

    def __init__(self, fleet: Any, row: int, program: Program, *, t0_s: float = 0.0, spl_at_0dbfs: float = 80.0,
                 ceiling_dbfs: float = HARD_CEILING_DBFS) -> None:
        super().__init__(min(ceiling_dbfs, program.limits.max_level_db))
        self.fleet = fleet
        self.row = int(row)
        self.program = program
        self.t0_s = float(t0_s)
        self.spl0 = float(spl_at_0dbfs)
        self.outcomes: dict[str, int] = {}
        """Sounds heard per ``kind:outcome`` (those of a delivery once it is over)."""
        self.ears = FleetEars.of(fleet)

    def batches(self) -> tuple[Batch, ...]:
        """The fleet's ears, when the fleet answers many sounds in one call."""
        return () if self.ears is None else (self.ears,)

    def count(self, kind: str, outcome: str) -> None:
        """Count a sound's outcome."""
        key = f"{kind}:{outcome}"
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    def _hear(self, t: float, kind: str, level_dbfs: float) -> None:
        spl = max(0.0, self.spl0 + self.level_db(level_dbfs))
        if self.ears is None:
            self.count(kind, self.fleet.play(self.row, t - self.t0_s, kind, spl))
        else:
            self.ears.hear(self, self.row, t - self.t0_s, kind, spl)

    def _play(self, c: Any) -> None:
        if c.kind == "click":
            self._hear(c.t, "click", c.params["level_db"])
        elif c.kind == "cue":
            self._hear(c.t, "prompt", c.params["level_db"])
        elif c.kind == "scene":
            layers = self.program.scenes[c.params["name"]].layers
            self._hear(c.t, "sound", max((la.level_db for la in layers), default=-90.0))
        elif c.kind == "protect":
            self._hear(c.t, "sound", c.params["level_db"])
        elif c.kind == "wake":
            self._hear(c.t, "sound", c.params["to_db"])


class WavBedSink(BedSink):
    """A bed's night rendered to a WAV file when the bed closes.

    Parameters
    ----------
    path : path-like
        WAV file to write (48 kHz).
    program : Program
        The bed's program.
    t0_s : float
        Lane time of the bed's lights-out, in s.
    base_dir : path-like, optional
        Folder that the program's relative sound files are resolved against.
    """

    def __init__(self, path: str | Path, program: Program, *, t0_s: float = 0.0,
                 base_dir: str | Path | None = None) -> None:
        super().__init__(program.limits.max_level_db)
        self.path = Path(path)
        self.program = program
        self.t0_s = float(t0_s)
        self.base_dir = None if base_dir is None else Path(base_dir)
        self.commands: list[Command] = []
        self.end_s = 0.0

    def _play(self, c: Any) -> None:
        params = dict(c.params)
        for key in ("level_db", "to_db", "from_db"):
            if key in params:
                params[key] = self.level_db(params[key])
        self.commands.append(Command(0, float(c.t) - self.t0_s, c.kind, params))
        self.end_s = max(self.end_s, float(c.t) - self.t0_s)

    def _silence(self, t: float) -> None:
        if t == t:  # not NaN: the bed goes silent at a known time
            self.commands.append(Command(0, float(t) - self.t0_s, "silence", {"for_s": None}))

    def close(self, duration_s: float | None = None) -> None:
        """Render the night's commands into the WAV file (once)."""
        from nexus.dreamscape.renderer import Renderer
        from nexus.sinks.wav import WavSink

        if not self.commands:
            return
        dur = max(duration_s or 0.0, self.end_s + 1.0)
        with WavSink(self.path, ceiling_dbfs=self.program.limits.max_level_db) as sink:
            Renderer(self.program, base_dir=self.base_dir).render(self.commands, sink, dur)
        self.commands = []
