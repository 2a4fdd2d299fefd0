"""With ``nexus run``'s loop thread, console feed messages are serialised and sent by the feed thread.

At 500 beds an epoch close's ``stages`` message and the next ``beds`` one cost a tick 1.5-5 ms of JSON; the
loop now only queues them, and the feed thread sends them, in order, after the tick. A technician's command
(an acknowledgement) still goes out at once, and what the beds' end published at stop reaches the consoles.
"""

from __future__ import annotations

import json
import threading
import time

import nexus.facility.service as service_module
from nexus.facility.service import FacilityService


def test_the_loop_thread_queues_feed_messages_and_the_feed_thread_sends_them_in_order(store, tmp_path,
                                                                                      monkeypatch):
    by_thread: list[tuple[int, str]] = []  # (thread, message type) of every serialised feed message

    real = service_module.feed_text

    def feed_text(msg):
        by_thread.append((threading.get_ident(), msg["type"]))
        return real(msg)

    monkeypatch.setattr(service_module, "feed_text", feed_text)
    svc = FacilityService(store, clients=3, speed=40.0, hours=0.1, data_dir=tmp_path, events=False,
                          faults=[(0, 5.0)], run_id="f")
    sub = svc.subscribe()
    got: list[dict] = []
    svc.start(background=True)
    try:
        deadline = time.monotonic() + 60.0
        while sum(m["type"] == "stages" for m in got) < 2:  # two epochs closed (30 s of night each)
            assert time.monotonic() < deadline, [m["type"] for m in got]
            text = sub.get(timeout=1.0)
            if text is not None:
                got.append(json.loads(text))
        loop = svc._thread.ident
        assert by_thread and loop not in {t for t, _ in by_thread}  # the loop serialised nothing itself
        epochs = [s["epoch"] for m in got if m["type"] == "stages" for s in m["stages"]]
        assert epochs == sorted(epochs)  # in order
        alarm = next(a for a in svc.alarms() if a["kind"] == "bad_samples")
        svc.acknowledge(alarm["id"], user_id=None, by="tess")  # from this (an API) thread: out at once
        deadline = time.monotonic() + 10.0
        while not any(m["type"] == "alarm" and m["alarm"]["acknowledged"] for m in got):
            assert time.monotonic() < deadline
            text = sub.get(timeout=1.0)
            if text is not None:
                got.append(json.loads(text))
    finally:
        svc.stop()
    rest = []
    while (text := sub.get()) is not None:
        rest.append(json.loads(text))
    ended = {b["session"] for m in rest if m["type"] == "beds" for b in m["beds"] if b["state"] == "ended"}
    assert ended == {b["session"] for b in svc.beds()}  # the beds' end, published at stop, was sent
