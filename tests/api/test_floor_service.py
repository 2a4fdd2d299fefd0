"""``nexus run --source replay:DIR``: real beds (EDF replays) through the facility service and its API."""

from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nexus.api.app import create_app
from nexus.facility.floor import BedMap
from nexus.facility.floor_service import FloorService, wait_for_beds
from nexus.formats.edf import read_edf
from nexus.sources.spec import parse_source
from nexus.store.access import add_user, issue_token
from nexus.store.models import Client, NightSession

EDF = "SC4001E0-PSG_first5min.edf"


@pytest.mark.slow
def test_replayed_beds_run_through_the_service_and_show_on_the_api(store, tmp_path, data_dir, replay_nights):
    nights = replay_nights("ward-a", "ward-b")
    (nights / "notes.edf").write_bytes(b"not an EDF file at all")  # refused in one line; the others run
    with store.session() as s:
        s.add(Client(code="C-7", consent_scopes=["recording"]))
        add_user(s, "tech", "technician", password="correct horse battery staple")
        token = issue_token(s, username="tech")
    service = FloorService(store, source=parse_source(f"replay:{nights}:speed=20"),
                           bed_map=BedMap({str((nights / "ward-a.edf").resolve()): ("C-7", "bed-7")}),
                           data_dir=tmp_path / "data", events=False, run_id="fl")
    service.start(background=True)
    try:
        assert wait_for_beds(service, 2) == 2
        with TestClient(create_app(service, store)) as client:
            auth = {"Authorization": f"Bearer {token}"}
            for _ in range(300):  # until 30 s of replay were seen (1.5 s of wall time at 20x on a quiet machine)
                beds = {b["source"]: b for b in client.get("/api/beds", headers=auth).json()}
                if len(beds) == 2 and min(float(b["t_s"] or 0.0) for b in beds.values()) > 31.0:
                    break
                time.sleep(0.1)
            assert set(beds) == {"replay:ward-a.edf", "replay:ward-b.edf"}
            a, b = beds["replay:ward-a.edf"], beds["replay:ward-b.edf"]
            assert a["bed"] == "bed-7" and not a["unassigned"] and a["client_code"] == "C-7"
            assert b["unassigned"] and b["bed"] == "ward-b" and b["client_code"].startswith("unassigned-")
            assert a["state"] == b["state"] == "running" and a["natural"] and a["t_s"] > 5
            assert a["channels"] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"] and a["fs"] == 100.0
            status = service.status()
            assert status["clients"] == 2 and any("notes.edf" in r for r in status["refused"])
            one = client.get(f"/api/sessions/{b['session']}", headers=auth)
            assert one.status_code == 200 and one.json()["live"]["unassigned"] and one.json()["state"] == "running"
    finally:
        service.stop()
    with store.session() as s:
        rows = {r.id: r for r in s.scalars(select(NightSession).where(NightSession.facility_run_id == "fl"))}
        owners = {r.id: s.get(Client, r.client_id).code for r in rows.values()}
    assert {r.state.value for r in rows.values()} == {"ended"} and len(rows) == 2
    assert owners[a["session"]] == "C-7" and owners[b["session"]].startswith("unassigned-")
    orig = read_edf(data_dir / "sleep-edf" / EDF).channel("EEG Fpz-Cz").data
    for sess in (a["session"], b["session"]):
        assert rows[sess].recording_path == str(service.recordings[sess])
        got = read_edf(service.recordings[sess]).channel("EEG Fpz-Cz").data
        step = (got.max() - got.min()) / 65535
        k = min(len(got), len(orig))
        assert k > 30 * 100  # at least the 30 s seen above
        # sample for sample from the first (the EDF's last record may be padded past what was replayed)
        np.testing.assert_allclose(got[: k - 100], orig[: k - 100], atol=step, rtol=0)


@pytest.mark.slow
def test_an_lsl_stream_that_appears_later_joins_the_running_service(store, tmp_path):
    """A real pylsl outlet started after the service: it joins (its lane built beside the loop), shows on the
    console's feed as unassigned, and its EDF+ holds every sample it sent, from the first."""
    import threading
    import uuid

    pylsl = pytest.importorskip("pylsl")
    from nexus.sources.lsl import configure_lsl

    configure_lsl()
    prefix = f"nx{uuid.uuid4().hex[:6]}"
    service = FloorService(store, source=parse_source(f"lsl:type=EEG:name={prefix}"), data_dir=tmp_path / "d",
                           events=False, run_id="ls")
    service.start(background=True)
    n_ch, fs, n = 8, 256.0, 5 * 256
    t = np.arange(n) / fs
    x = (40.0 * np.sin(2 * np.pi * 1.5 * t)[:, None] + np.arange(n_ch)[None, :] * 3.0).astype(np.float32)
    sent = threading.Event()
    try:
        info = pylsl.StreamInfo(f"{prefix}-amp", "EEG", n_ch, fs, "float32", f"{prefix}-sid")
        chans = info.desc().append_child("channels")
        for c in range(n_ch):
            ch = chans.append_child("channel")
            ch.append_child_value("label", f"C{c}")
            ch.append_child_value("type", "EEG")
            ch.append_child_value("unit", "microvolts")
        outlet = pylsl.StreamOutlet(info)

        def send() -> None:
            assert outlet.wait_for_consumers(30.0)
            t0 = pylsl.local_clock()
            for a in range(0, n, 32):
                while pylsl.local_clock() < t0 + (a + 32) / fs:
                    time.sleep(0.005)
                outlet.push_chunk(x[a:a + 32].tolist(), t0 + (a + 31) / fs)
            sent.set()

        threading.Thread(target=send, daemon=True).start()
        assert wait_for_beds(service, 1, timeout_s=30.0) == 1
        (bed,) = service.beds()
        assert bed["unassigned"] and bed["source"].startswith(f"LSL stream '{prefix}-amp'") and bed["fs"] == fs
        assert sent.wait(30.0)
        time.sleep(1.5)  # the last chunk's delay
    finally:
        service.stop()
    got = read_edf(service.recordings[bed["session"]])
    y = np.array([s.data for s in got.signals])
    assert y.shape[0] == n_ch and y.shape[1] >= n
    step = (y.max(axis=1) - y.min(axis=1))[:, None] / 65535
    assert np.all(np.abs(y[:, :n] - x.T) <= step + 1e-6)  # every sample sent, from the first, in order
    assert not [a for a in got.annotations if a.text.startswith("gap")]
