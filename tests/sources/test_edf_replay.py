from pathlib import Path

import numpy as np
import pytest

from nexus.core.clock import ManualClock
from nexus.core.errors import DataFormatError, InvalidInputError
from nexus.formats.edf import Signal, write_edf
from nexus.sources.edf_replay import EdfReplaySource

DATA = Path(__file__).resolve().parents[1] / "data" / "sleep-edf" / "SC4001E0-PSG_first5min.edf"


@pytest.fixture
def two_rate_edf(tmp_path):
    t = np.arange(0, 20, 1 / 100)
    eeg = 50 * np.sin(2 * np.pi * 1.0 * t)
    slow = 10 * np.sin(2 * np.pi * 0.1 * np.arange(0, 20, 1 / 10))
    return write_edf(tmp_path / "two.edf", [Signal("EEG C4-M1", eeg, 100.0), Signal("Resp", slow, 10.0, "au")]), eeg


def test_replay_fast_forward_returns_every_sample_once(two_rate_edf):
    path, eeg = two_rate_edf
    clock = ManualClock()
    src = EdfReplaySource(path, clock, "s1")
    assert src.fs == 100.0
    assert src.channels == ("EEG C4-M1", "Resp")
    assert src.read() is None  # no time has passed
    chunks = []
    while not src.exhausted:
        clock.advance(0.37)
        c = src.read()
        if c is not None:
            chunks.append(c)
    data = np.concatenate([c.data for c in chunks], axis=1)
    assert data.shape == (2, 2000)
    np.testing.assert_allclose(data[0], eeg, atol=0.01)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    t0s = np.array([c.t0 for c in chunks])
    np.testing.assert_allclose(t0s[1:], [c.t1 for c in chunks[:-1]])
    clock.advance(5)
    assert src.read() is None


def test_replay_speed_and_channel_choice(two_rate_edf):
    path, _ = two_rate_edf
    clock = ManualClock()
    src = EdfReplaySource(path, clock, "s1", channels=["C4-M1"], fs=50, speed=10)
    src.open()
    clock.advance(1.0)
    c = src.read()
    assert c is not None
    assert c.channels == ("EEG C4-M1",)
    assert c.fs == 50
    assert c.n_samples == 500  # 10 s of signal in 1 s of clock


def test_replay_loop_keeps_time_increasing(two_rate_edf):
    path, _ = two_rate_edf
    clock = ManualClock()
    src = EdfReplaySource(path, clock, "s1", loop=True, max_chunk_s=60)
    src.open()
    clock.advance(25)
    c = src.read()
    assert c is not None
    assert c.n_samples == 2500
    assert not src.exhausted


def test_replay_real_sleep_edf_resamples_1hz_channels():
    clock = ManualClock()
    src = EdfReplaySource(DATA, clock, "real", channels=["EEG Fpz-Cz", "EMG submental"])
    assert src.fs == 100.0
    src.open()
    clock.advance(2.0)
    c = src.read()
    assert c is not None
    assert c.data.shape == (2, 200)
    assert np.isfinite(c.data).all()


def test_replay_unknown_channel_is_reported(two_rate_edf):
    with pytest.raises(InvalidInputError, match="No channel 'C3'"):
        EdfReplaySource(two_rate_edf[0], ManualClock(), channels=["C3"])


def test_replay_corrupt_header(tmp_path):
    bad = tmp_path / "bad.edf"
    bad.write_bytes(b"0       garbage" + b"\x00" * 100)
    with pytest.raises(DataFormatError, match="corrupt"):
        EdfReplaySource(bad, ManualClock())


def test_replay_truncated_file(two_rate_edf, tmp_path):
    raw = two_rate_edf[0].read_bytes()
    cut = tmp_path / "cut.edf"
    cut.write_bytes(raw[: len(raw) // 2 + 7])
    with pytest.raises(DataFormatError):
        EdfReplaySource(cut, ManualClock())
