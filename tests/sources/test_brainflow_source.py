"""The real BrainFlow synthetic board (offline) read through BrainFlowSource."""

import time

import numpy as np
import pytest

from nexus.core.errors import InvalidInputError
from nexus.sources.brainflow import BrainFlowSource, board_id

pytest.importorskip("brainflow")


def test_synthetic_board_streams_eeg_in_uv():
    src = BrainFlowSource("bed1", "synthetic", channels=["C3", "C4"])
    assert src.fs == 250
    with src:
        chunks = []
        end = time.monotonic() + 3
        while sum(c.n_samples for c in chunks) < 125 and time.monotonic() < end:
            time.sleep(0.1)  # the board fills its buffer in real time
            c = src.read()
            if c is not None:
                chunks.append(c)
    assert chunks, "the synthetic board delivered nothing"
    data = np.concatenate([c.data for c in chunks], axis=1)
    assert data.shape[0] == 2
    assert data.shape[1] >= 125
    assert np.isfinite(data).all()
    assert 1 < np.std(data) < 1000  # µV scale
    assert chunks[0].channels == ("C3", "C4")
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    # chunks follow on, sample for sample (the board's timestamps jitter; its counter does not)
    ends = np.cumsum([0] + [c.n_samples for c in chunks[:-1]])
    np.testing.assert_allclose([c.t0 for c in chunks], ends / 250.0, atol=1e-12)
    assert src.samples_dropped == 0
    src.close()  # twice is fine


@pytest.mark.parametrize(("board", "bid"), [("synthetic", -1), ("cyton", 0), ("muse-s", 39), (-1, -1), ("38", 38)])
def test_board_names(board, bid):
    assert board_id(board) == bid


def test_unknown_board_name_suggests():
    with pytest.raises(InvalidInputError, match="Did you mean 'cyton'"):
        board_id("cyten")


def test_unknown_channel():
    with pytest.raises(InvalidInputError, match="no EEG channel Fp9"):
        BrainFlowSource("bed", -1, channels=["Fp9"])
