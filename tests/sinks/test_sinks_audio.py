import wave

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nexus.core.errors import NotFoundError
from nexus.sinks import live
from nexus.sinks.fake import FakeSink
from nexus.sinks.limiter import HARD_CEILING_DBFS, Limiter, db_to_amp
from nexus.sinks.wav import WavSink, read_wav


@settings(max_examples=60, deadline=None)
@given(
    st.lists(arrays(np.float64, st.integers(1, 2000), elements=st.floats(allow_nan=True, allow_infinity=True)),
             min_size=1, max_size=5),
    st.floats(-60, 20),
)
def test_no_block_ever_exceeds_the_ceiling(blocks, requested):
    lim = Limiter(min(requested, 0.0))
    ceiling = db_to_amp(min(requested, HARD_CEILING_DBFS))
    for b in blocks:
        y = lim.process(b)
        assert y.shape == b.shape
        assert np.all(np.isfinite(y))
        assert np.max(np.abs(y)) <= ceiling * (1 + 1e-6)


def test_quiet_audio_passes_unchanged_and_a_program_cannot_raise_the_ceiling():
    lim = Limiter(0.0)  # asks for full scale
    assert lim.ceiling_dbfs == HARD_CEILING_DBFS
    x = 0.01 * np.sin(np.arange(4800))
    np.testing.assert_allclose(lim.process(x), x, atol=1e-7)


def test_fake_sink_records_limited_audio_and_lease_falls_back_to_silence():
    s = FakeSink(-20.0)
    s.renew_lease(1.0)
    s.write(np.full(480, 0.01), now=0.5)
    s.write(np.full(480, 0.01), now=1.0)  # lease expired: silence
    s.write(np.ones(480) * 5)  # no time given: the lapsed lease still holds (no bypass)
    a = s.audio
    assert np.allclose(a[:480], 0.01, atol=1e-6)
    assert np.all(a[480:] == 0)
    assert s.frames_written == 1440
    free = FakeSink(-20.0)  # without a lease, loud blocks are limited, not silenced
    free.write(np.ones(480) * 5)
    assert 0 < np.max(np.abs(free.audio)) <= db_to_amp(-20) + 1e-6


def test_wav_sink_round_trip_and_atomic(tmp_path):
    path = tmp_path / "out.wav"
    x = 0.05 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)
    with WavSink(path, ceiling_dbfs=-20) as s:
        s.write(x[:20000])
        assert not path.exists()  # appears only when complete
        s.write(x[20000:])
    y, fs = read_wav(path)
    assert fs == 48000 and y.size == 48000
    np.testing.assert_allclose(y, x, atol=1e-4)
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1


def test_live_sink_says_what_is_missing(monkeypatch):
    def boom():
        raise NotFoundError("Live audio needs the PortAudio library (test).")

    monkeypatch.setattr(live, "_sounddevice", boom)
    with pytest.raises(NotFoundError, match="PortAudio"):
        live.LiveSink().open()


def test_live_sink_without_output_devices(monkeypatch):
    class FakeSD:
        @staticmethod
        def query_devices():
            return [{"name": "mic", "max_output_channels": 0}]

    monkeypatch.setattr(live, "_sounddevice", lambda: FakeSD)
    with pytest.raises(NotFoundError, match="No audio output device found"):
        live.LiveSink().open()
