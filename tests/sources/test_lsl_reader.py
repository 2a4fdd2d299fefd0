"""The loop's thread never waits on liblsl: a real inlet whose pull is held in C (a few seconds in all).

A liblsl call can block in C for ever on a dead or recovering stream (``nexus record`` then printed
nothing for 120 s after SIGINT: its main thread was held in a liblsl call, so Python never ran the
signal handler). Here a real inlet's pulls are made to wait 2 s in liblsl (a real ``pull_chunk``
with a longer timeout, on a silent stream), and the source must still read, flush and close at once
on the calling thread, with every sample delivered before.
"""

import threading
import time
import uuid

import numpy as np
import pytest

from nexus.core.clock import ManualClock
from nexus.sources.lsl import LslSource
from nexus.sources.lsl_reader import wait_readers

pylsl = pytest.importorskip("pylsl")


class HeldInlet(pylsl.StreamInlet):
    """A real inlet that records the thread of each liblsl call; while ``hold`` is set, pulls wait 2 s in liblsl."""

    hold = threading.Event()
    held = threading.Event()
    calls: list[tuple[str, int]] = []

    def pull_chunk(self, timeout=0.0, max_samples=1024, dest_obj=None, min_samples=None, as_numpy=None):
        HeldInlet.calls.append(("pull_chunk", threading.get_ident()))
        if HeldInlet.hold.is_set():
            HeldInlet.held.set()
            timeout, min_samples = 2.0, None  # waits the whole 2 s in C: the stream is silent
        return super().pull_chunk(timeout, max_samples, dest_obj, min_samples, as_numpy)

    def time_correction(self, timeout=32000000.0):
        HeldInlet.calls.append(("time_correction", threading.get_ident()))
        return super().time_correction(timeout)

    def close_stream(self):
        HeldInlet.calls.append(("close_stream", threading.get_ident()))
        return super().close_stream()

    def __del__(self):
        HeldInlet.calls.append(("destroy", threading.get_ident()))
        super().__del__()


def test_read_flush_and_close_never_wait_on_a_held_liblsl_call(monkeypatch):
    monkeypatch.setattr(pylsl, "StreamInlet", HeldInlet)
    HeldInlet.calls.clear()
    name = f"nexus-held-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo(name, "EEG", 2, 100.0, "float32", f"{name}-src")
    out = pylsl.StreamOutlet(info)
    src = LslSource("bed", name=name, expected_channels=2, timeout=3, clock=ManualClock())
    src.open()
    main = threading.get_ident()
    opened = len(HeldInlet.calls)  # opening may run anywhere (the floor opens in its own threads)
    try:
        x = np.arange(100, dtype=np.float32).reshape(50, 2)
        t = pylsl.local_clock() - 1.0
        while not out.have_consumers():
            time.sleep(0.01)
        out.push_chunk(x, [t + i / 100 for i in range(50)])
        got = []
        end = time.monotonic() + 5.0
        while sum(c.n_samples for c in got) < 50 and time.monotonic() < end:
            c = src.read()
            if c is None:
                time.sleep(0.01)
            else:
                got.append(c)
        np.testing.assert_array_equal(np.concatenate([c.data for c in got], axis=1), x.T)
        HeldInlet.hold.set()
        HeldInlet.held.wait(1.0)  # the reader is now inside a pull that liblsl holds for 2 s
        t0 = time.monotonic()
        assert src.read() is None and src.flush() == []
        src.close()
        assert time.monotonic() - t0 < 0.5  # on the calling thread, a held pull costs nothing
        assert HeldInlet.held.is_set()
        assert wait_readers(0.05) == 1  # a bounded wait; the held reader is said and left behind
        assert wait_readers(5.0) == 0  # ... and ends by itself when liblsl lets go, its inlet closed
        kinds = [k for k, _ in HeldInlet.calls]
        assert "close_stream" in kinds and "destroy" in kinds
        assert [c for c in HeldInlet.calls[opened:] if c[1] == main] == []  # the loop's thread never entered liblsl
    finally:
        HeldInlet.hold.clear()
        src.close()
