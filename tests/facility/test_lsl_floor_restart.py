"""The LSL floor tells an amplifier's restart from a second device with its source id (real pylsl outlets).

A restarted outlet is listed by the resolver beside its dead predecessor until the resolver forgets
the dead one; meanwhile the bed's inlet may already have recovered to the new outlet. That restart is
the bed's return, never "a second stream claiming the bed"; a second outlet that stays live beside
the first is refused, in one line, and the bed records on from its own device.
"""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest

pylsl = pytest.importorskip("pylsl")

from nexus.core.clock import RealClock  # noqa: E402
from nexus.facility.floor import LslFloor  # noqa: E402
from nexus.sources.spec import parse_source  # noqa: E402

FORGET_S, EVERY_S = 2.0, 0.25


def _outlet(name: str, sid: str) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, "EEG", 4, 256.0, "float32", sid)
    chans = info.desc().append_child("channels")
    for c in range(4):
        ch = chans.append_child("channel")
        ch.append_child_value("label", f"E{c}")
        ch.append_child_value("type", "EEG")
        ch.append_child_value("unit", "microvolts")
    return pylsl.StreamOutlet(info)


@pytest.mark.slow
def test_fast_restart_is_the_beds_return_and_a_live_twin_is_refused_once():
    p = f"nf{uuid.uuid4().hex[:6]}-"
    outlets = {"ret": (_outlet(p + "ret", p + "ret-sid"), 1.0), "dup": (_outlet(p + "dup", p + "dup-sid"), 1.0)}
    stop = threading.Event()

    def send() -> None:  # every outlet sends its own constant value, 8 samples every 1/32 s
        while not stop.is_set():
            for outlet, value in list(outlets.values()):
                outlet.push_chunk(np.full((8, 4), value, dtype=np.float32))
            time.sleep(1 / 32)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    floor = LslFloor(parse_source(f"lsl:name={p}"), RealClock(), every_s=EVERY_S, forget_after_s=FORGET_S)
    floor.start()
    refused: list[str] = []
    got: dict[str, list[float]] = {"ret": [], "dup": []}
    reader: threading.Thread | None = None
    try:
        beds = {}
        end = time.monotonic() + 30
        while len(beds) < 2 and time.monotonic() < end:
            offers, lines = floor.poll()
            refused += lines
            beds |= {o.label[len(p):]: o.source for o in offers}
            time.sleep(0.05)
        assert set(beds) == {"ret", "dup"}, refused

        def read() -> None:  # the tick loop: every bed read often, so a recovered inlet is never silent long
            while not stop.is_set():
                for k, src in beds.items():
                    while (c := src.read()) is not None:
                        got[k].extend(np.unique(c.data).tolist())
                time.sleep(0.05)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        end = time.monotonic() + 10
        while not (got["ret"] and got["dup"]) and time.monotonic() < end:
            time.sleep(0.05)
        old = outlets["ret"][0]
        outlets["ret"] = (_outlet(p + "ret", p + "ret-sid"), 2.0)  # the amplifier is back at once ...
        del old  # ... its old outlet gone without a goodbye the resolver would see
        outlets["twin"] = (_outlet(p + "twin", p + "dup-sid"), 3.0)  # a second live device with dup's source id
        t_restart = time.monotonic()
        # long enough for the resolver to forget the dead outlet and for a live twin to be refused
        while time.monotonic() < t_restart + FORGET_S + EVERY_S + 3.0:
            refused += floor.poll()[1]
            time.sleep(0.1)
        assert len(refused) == 1, refused  # the twin, once; never the restarted amplifier
        assert f"LSL stream '{p}twin'" in refused[0] and f"claims bed '{p}dup-sid'" in refused[0], refused
        assert 2.0 in got["ret"]  # the bed records its amplifier's new life
        assert set(got["dup"]) == {1.0}  # the bed kept its own device; nothing of the twin reached it
        assert floor.poll() == ([], [])  # the restart opened no second bed either
    finally:
        stop.set()
        if reader is not None:
            reader.join(timeout=5)
        floor.close()
        for src in floor.beds.values():
            src.close()
