"""BrainFlow boards as live sources: the synthetic board (id -1, runs offline), OpenBCI and Muse.

BrainFlow reports EEG in µV. The board's own sample counter is used to count dropped samples
(:attr:`BrainFlowSource.samples_dropped`), and chunk times follow the sample count (a dropped
sample leaves a gap of one sample): the board's timestamps jitter by more than a sample period.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nexus.core.checks import check_option
from nexus.core.errors import InvalidInputError, NotFoundError
from nexus.core.log import logger
from nexus.core.types import Chunk
from nexus.sources.base import Source

#: Board names accepted in place of BrainFlow board ids.
BOARDS: dict[str, int] = {
    "synthetic": -1,
    "cyton": 0,
    "ganglion": 1,
    "cyton-daisy": 2,
    "ganglion-wifi": 4,
    "cyton-wifi": 5,
    "cyton-daisy-wifi": 6,
    "muse-s-bled": 21,
    "muse-2-bled": 22,
    "muse-2": 38,
    "muse-s": 39,
    "muse-2016": 41,
}


def board_id(board: int | str) -> int:
    """Return the BrainFlow board id of ``board`` (an id, or a name of :data:`BOARDS`)."""
    if isinstance(board, int):
        return board
    if board.lstrip("-").isdigit():
        return int(board)
    return BOARDS[check_option("BrainFlow board", board.lower(), BOARDS)]


class BrainFlowSource(Source):
    """A session fed by a BrainFlow board.

    Parameters
    ----------
    session : str
        The session this source feeds.
    board : int or str
        BrainFlow board id or name (``"synthetic"``, ``"cyton"``, ``"muse-s"``, … see :data:`BOARDS`).
    serial_port, mac_address, ip_address : str
        Connection parameters for real boards (see BrainFlow's ``BrainFlowInputParams``).
    channels : sequence of str, optional
        Which EEG channels to keep, by the board's names (default: all EEG channels).
    """

    def __init__(
        self,
        session: str,
        board: int | str = "synthetic",
        *,
        serial_port: str = "",
        mac_address: str = "",
        ip_address: str = "",
        channels: Sequence[str] | None = None,
    ) -> None:
        from brainflow.board_shim import BoardShim

        self.session = session
        self.board_id = board_id(board)
        try:
            descr = BoardShim.get_board_descr(self.board_id)
        except Exception:
            raise InvalidInputError(
                f"Unknown BrainFlow board id {self.board_id}. Known names: {', '.join(sorted(BOARDS))}."
            ) from None
        names = str(descr.get("eeg_names", "")).split(",")
        rows = list(descr["eeg_channels"])
        if len(names) != len(rows):
            names = [f"EEG {i + 1}" for i in range(len(rows))]
        if channels:
            missing = [c for c in channels if c not in names]
            if missing:
                raise InvalidInputError(
                    f"Board {self.board_id} has no EEG channel {', '.join(missing)}. It has: {', '.join(names)}."
                )
            keep = [names.index(c) for c in channels]
            names, rows = [names[i] for i in keep], [rows[i] for i in keep]
        self.channels = tuple(names)
        self._rows = rows
        self.fs = float(descr["sampling_rate"])
        self._ts_row = descr.get("timestamp_channel")
        self._pkg_row = descr.get("package_num_channel")
        self._params = {"serial_port": serial_port, "mac_address": mac_address, "ip_address": ip_address}
        self._board: Any = None
        self._last_pkg: int | None = None
        self._seq = 0
        self._pos = 0
        self.samples_dropped = 0
        """Samples missing according to the board's package counter."""

    def open(self) -> None:
        """Prepare the board and start streaming (raises :class:`NotFoundError` when it cannot be reached)."""
        if self._board is not None:
            return
        from brainflow.board_shim import BoardShim, BrainFlowError, BrainFlowInputParams

        BoardShim.disable_board_logger()
        params = BrainFlowInputParams()
        for k, v in self._params.items():
            setattr(params, k, v)
        board = BoardShim(self.board_id, params)
        try:
            board.prepare_session()
            board.start_stream()
        except BrainFlowError as exc:
            raise NotFoundError(
                f"Cannot start BrainFlow board {self.board_id}: {exc}. Check that it is on and paired, and the "
                "serial port / address."
            ) from None
        self._board = board

    def read(self) -> Chunk | None:
        """Return the samples the board delivered since the last call, or ``None``."""
        if self._board is None:
            self.open()
        raw = self._board.get_board_data()
        if raw.size == 0 or raw.shape[1] == 0:
            return None
        n = raw.shape[1]
        lost = 0
        if self._pkg_row is not None and self._pkg_row != 0:
            before = self.samples_dropped
            self._count_drops(raw[self._pkg_row])
            lost = self.samples_dropped - before
        # on the session's sample grid: the board's timestamps jitter by more than a sample, its package
        # counter does not (samples it lost are a gap of that many samples)
        self._pos += lost
        chunk = Chunk(self.session, self._pos / self.fs, self.fs,
                      np.ascontiguousarray(raw[self._rows], dtype=np.float64), self.channels, self._seq)
        self._seq += 1
        self._pos += n
        return chunk

    def _count_drops(self, pkg: np.ndarray) -> None:
        # the package counter wraps at 256 on OpenBCI boards
        p = pkg.astype(np.int64)
        prev = np.concatenate([[self._last_pkg if self._last_pkg is not None else p[0] - 1], p[:-1]])
        gaps = (p - prev - 1) % 256
        self.samples_dropped += int(gaps.sum())
        self._last_pkg = int(p[-1])

    def close(self) -> None:
        """Stop streaming and release the board (safe to call twice)."""
        if self._board is None:
            return
        board, self._board = self._board, None
        try:
            board.stop_stream()
        except Exception as exc:  # already stopped: releasing still matters
            logger.debug("BrainFlow stop_stream: %s", exc)
        board.release_session()
