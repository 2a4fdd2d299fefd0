"""An amplifier's app that lets LSL stamp its chunks and stalls under load loses no sample (real pylsl outlet).

The outlet runs in another process with the shipped ``lsl_api.cfg`` and pushes chunks without
timestamps, as vendor apps do: LSL stamps each chunk's last sample with the push time and
back-computes the others from the nominal rate. A push delayed after its samples were read, and a
backlog pushed as back-to-back blocks after the app was blocked, stamp samples late and then out of
order; every one of them must be recorded in its place by count, with no gap. A stretch the device
really lost (samples never pushed) is still a gap, found from the stream's own timing.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

pytest.importorskip("pylsl")

from nexus.core.clock import RealClock
from nexus.sources.lsl import LslSource

FS, LOST = 256.0, 64

# sample i carries the value i (and -i): the reader can tell every sample's identity and its place
APP = f"""
import sys, time
import numpy as np
from nexus.sources.lsl import configure_lsl
configure_lsl()
import pylsl
fs, name = {FS}, sys.argv[1]
info = pylsl.StreamInfo(name, "EEG", 2, fs, "float32", name + "-sid")
chans = info.desc().append_child("channels")
for lab in ("C3", "C4"):
    ch = chans.append_child("channel")
    ch.append_child_value("label", lab); ch.append_child_value("type", "EEG"); ch.append_child_value("unit", "uV")
out = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=360)
print("created", flush=True)
out.wait_for_consumers(30)
x = np.arange(int(3.2 * fs), dtype=np.float32)
x = np.stack([x, -x], axis=1)
t0 = time.monotonic() + 0.1  # the device's sample clock
due = lambda: max(0, min(len(x), int((time.monotonic() - t0) * fs)))
sent, late, blocks, lost = 0, 0.8, 1.5, 2.2
while sent < len(x):
    n = due()
    if late and n >= late * fs:  # samples read, then the app is descheduled before it pushes them
        late = 0
        time.sleep(0.2)
    elif blocks and n >= blocks * fs:  # the app is blocked; then it pushes its backlog block by block
        blocks = 0
        time.sleep(0.3)
        n = due()
        while sent + 8 <= n:
            out.push_chunk(x[sent:sent + 8])
            sent += 8
    elif lost and n >= lost * fs:  # the device lost {LOST} samples: they are never pushed
        lost = 0
        sent += {LOST}
    if n > sent:
        out.push_chunk(x[sent:n])
        sent = n
    time.sleep(1 / 32)
print("done", sent, flush=True)
time.sleep(30)
"""


def test_late_pushes_and_backlogs_keep_every_sample_and_a_real_loss_is_a_gap(tmp_path):
    name = f"nexus-stall-{uuid.uuid4().hex[:8]}"
    app = subprocess.Popen([sys.executable, "-c", APP, name], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    src = LslSource("bed", name=name, expected_channels=2, timeout=10, clock=RealClock())
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == "created"
        src.open()
        n_total = int(3.2 * FS)
        values, places = [], []
        end = time.monotonic() + 20
        while (not values or values[-1][-1] < n_total - 1) and time.monotonic() < end:
            c = src.read()
            if c is None:
                time.sleep(0.02)  # waiting on a real network stream
                continue
            values.append(c.data[0].copy())
            places.append(round(c.t0 * FS) + np.arange(c.n_samples))
            assert np.array_equal(c.data[1], -c.data[0])
        v, at = np.concatenate(values).astype(int), np.concatenate(places)
    finally:
        app.kill()
        app.wait(timeout=10)
        if app.stdout is not None:
            app.stdout.close()
        src.close()
    steps = np.diff(v)  # every sample pushed, once, in order (none dropped), and the LOST never pushed
    assert v[0] == 0 and v[-1] == n_total - 1 and set(steps.tolist()) == {1, LOST + 1}, np.unique(steps)
    assert int((steps == LOST + 1).sum()) == 1
    assert np.all(np.diff(at) >= 1)
    before = np.arange(v.size) <= int(np.flatnonzero(steps > 1)[0])
    np.testing.assert_array_equal(at[before], v[before])  # placed by count through the late pushes: no gap
    shift = np.unique(at[~before] - v[~before])
    assert shift.size == 1 and abs(int(shift[0])) <= 2, shift  # the real loss: one gap of (about) its length
    assert src.gaps == 1
