"""Follow a program file while its session runs: edits are checked before anyone hears them.

:meth:`ProgramFile.poll` is called by the runtime (e.g. once per tick); when the file's content changed, the
new text goes through :meth:`Controller.update_program <nexus.dreamscape.controller.Controller.update_program>`:
a valid program replaces the running one, an invalid or unreadable one is reported and the session keeps its
last valid program.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from nexus.core.log import logger
from nexus.dreamscape.check import CheckReport, Issue
from nexus.dreamscape.controller import Controller


class ProgramFile:
    """A program file followed for one session.

    Parameters
    ----------
    path : str or Path
        The program file (YAML or JSON) the session was started with.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._digest = self._read_digest()

    def _read_digest(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def poll(self, controller: Controller, session: int, t: float) -> CheckReport | None:
        """Apply the file to ``session`` if it changed since the last poll.

        Returns
        -------
        CheckReport or None
            The check of the new content (``ok`` False when it was refused), or None when nothing changed.
        """
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            if self._digest is None:  # still unreadable: already reported
                return None
            self._digest = None
            msg = f"Cannot read the program file '{self.path}' ({exc.strerror}); the session keeps its program."
            logger.error("Session %d: %s", session, msg)
            controller.note(t, session, "program_rejected", {"errors": [msg]}, msg)
            return CheckReport(str(self.path), errors=[Issue("", None, msg)])
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self._digest:
            return None
        self._digest = digest
        fmt = "json" if self.path.suffix.lower() == ".json" else "yaml"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = "\0"  # refused by the parser, with a location
        return controller.update_program(session, text, fmt=fmt, base_dir=self.path.parent, t=t)
