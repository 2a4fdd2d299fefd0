"""A real bed waiting for its lane is on the floor and can be extracted meanwhile (``nexus run --source lsl:``).

A device of a new channel layout records at once while its lane is built and warmed up on the supervisor's
builder thread. Until it joins, the consoles show it (``joining``), and a technician can extract it like any
bed, through the API or with ``nexus extract`` (an order in the database): it ends at once (nothing plays there
yet) and what it sent so far is in its recording; a bed released to sleep joins its lane when the lane is ready.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nexus.api.app import create_app
from nexus.facility.floor_service import FloorService, wait_for_beds
from nexus.facility.orders import submit_orders, wait_orders
from nexus.formats.edf import read_edf
from nexus.sources.spec import parse_source
from nexus.store.access import add_user, issue_token
from nexus.store.models import NightSession

pylsl = pytest.importorskip("pylsl")

N_CH, FS = 4, 256.0


class Amp(threading.Thread):
    """A real pylsl outlet sending ``seconds`` of known samples in real time once a bed listens."""

    def __init__(self, name: str, k: int, seconds: float) -> None:
        super().__init__(daemon=True)
        info = pylsl.StreamInfo(name, "EEG", N_CH, FS, "float32", f"{name}-sid")
        chans = info.desc().append_child("channels")
        for c in range(N_CH):
            ch = chans.append_child("channel")
            ch.append_child_value("label", f"J{c}")  # a layout no other test builds: its lane is new
            ch.append_child_value("type", "EEG")
            ch.append_child_value("unit", "microvolts")
        self.outlet = pylsl.StreamOutlet(info)
        n = round(seconds * FS)
        self.x = (np.random.default_rng(k).standard_normal((n, N_CH)) * 40.0).astype(np.float32)
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        if not self.outlet.wait_for_consumers(30.0):
            return
        t0 = pylsl.local_clock()
        while self.sent < len(self.x) and not self.stop.is_set():
            due = min(len(self.x), int((pylsl.local_clock() - t0) * FS))
            if due > self.sent:  # each sample stamped on the amplifier's own clock (a late push is not a pause)
                stamps = (t0 + np.arange(self.sent, due) / FS).tolist()
                self.outlet.push_chunk(np.ascontiguousarray(self.x[self.sent:due]), stamps)
                self.sent = due
            time.sleep(0.02)


@pytest.mark.slow
def test_a_bed_waiting_for_its_lane_is_shown_and_extracted(store, tmp_path, wait_until):
    from nexus.sources.lsl import configure_lsl

    configure_lsl()
    p = f"nj{uuid.uuid4().hex[:6]}-"
    with store.session() as s:
        add_user(s, "tech", "technician", password="correct horse battery staple")
        token = issue_token(s, username="tech")
    service = FloorService(store, source=parse_source(f"lsl:type=EEG:name={p}"), data_dir=tmp_path / "d",
                           events=False, run_id="jn")
    service.start(background=True)  # no device yet: no lane at all
    assert service.sup is not None
    # the lane builder is busy (another layout's warm-up) until the gate opens: the new beds must wait
    gate = threading.Event()
    service.sup._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexus-lane-build")
    service.sup._builder.submit(gate.wait, 60.0)
    amps = {"out": Amp(p + "out", 1, 8.0), "stay": Amp(p + "stay", 2, 8.0), "cli": Amp(p + "cli", 3, 8.0)}
    for a in amps.values():
        a.start()
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(create_app(service, store)) as client:
            assert wait_for_beds(service, 3) == 3  # on the floor while their lane is not there
            beds = {b["bed"][len(p):]: b for b in client.get("/api/beds", headers=auth).json()}
            assert set(beds) == {"out", "stay", "cli"}
            assert all(b["joining"] and b["state"] == "running" and b["unassigned"] for b in beds.values()), beds
            assert sorted(service.status()["joining"]) == sorted(b["session"] for b in beds.values())
            out, stay, cli = beds["out"]["session"], beds["stay"]["session"], beds["cli"]["session"]
            wait_until(lambda: service.bed(out)["t_s"] > 1.0, 30.0, "the waiting bed to record while it waits")
            r = client.post(f"/api/sessions/{out}/extract", params={"mode": "immediate"}, headers=auth)
            assert r.status_code == 200, r.text
            assert r.json()["extraction"]["safe"]  # nothing plays at a bed without its lane: safe at once
            r = client.post(f"/api/sessions/{stay}/extract", params={"mode": "release"}, headers=auth)
            assert r.status_code == 200 and r.json()["state"] == "running" and r.json()["joining"], r.text
            orders, ok = wait_orders(store, submit_orders(store, cli, "gentle"), until="done")  # 'nexus extract'
            assert ok and orders[0]["status"] == "done", orders  # safe at once, and ended
            # the service ends it on its next tick
            wait_until(lambda: service.bed(out)["state"] == "ended", 30.0, "the extracted bed to end")
            wait_until(lambda: service.bed(cli)["state"] == "ended", 30.0, "the bed of the order to end")
            sent_out = amps["out"].sent
            again = client.post(f"/api/sessions/{out}/extract", params={"mode": "gentle"}, headers=auth)
            assert again.status_code == 409, again.text
            assert service.bed(stay)["joining"]
            gate.set()  # the builder is free: the lane is built, the released bed joins it, the extracted one never
            wait_until(lambda: not service.bed(stay)["joining"], 30.0, "the released bed to join")
            assert out not in service.sup.sessions and cli not in service.sup.sessions and stay in service.sup.sessions
            assert service.sup.sessions[stay].started
            wait_until(lambda: amps["stay"].sent == len(amps["stay"].x), 20.0, "the amplifier to send all")
            time.sleep(1.0)  # the last chunks' delay
    finally:
        gate.set()
        for a in amps.values():
            a.stop.set()
        service.stop()
    with store.session() as s:
        rows = {r.id: r for r in s.scalars(select(NightSession).where(NightSession.facility_run_id == "jn"))}
    assert {r.state.value for r in rows.values()} == {"ended"} and set(rows) == {out, stay, cli}
    for name, amp in ((out, amps["out"]), (stay, amps["stay"])):
        got = read_edf(service.recordings[name])
        y = np.array([sig.data for sig in got.signals])
        step = (y.max(axis=1) - y.min(axis=1))[:, None] / 65535  # the EDF's 16-bit resolution
        k = min(y.shape[1], len(amp.x))
        ok = np.all(np.abs(y[:, :k] - amp.x[:k].T) <= step + 1e-6, axis=0)
        m = k if ok.all() else int(np.argmin(ok))  # samples recorded as sent, from the first, in order
        assert np.abs(y[:, m:]).max(initial=0) <= step.max() and y.shape[1] - m < FS, name  # then the padding
        assert not [a for a in got.annotations if a.text.startswith("gap")], name
        if name == stay:
            assert m == len(amp.x)  # every sample: while it waited, and on its lane
        else:
            assert FS <= m <= sent_out + FS  # what it sent while it waited, nothing after it was ended
