"""Serving: the first admin, a busy port refused before anything starts, the loop thread ending a night."""

import socket
import threading

import pytest
from sqlalchemy import select

from nexus.api.server import check_port, ensure_admin
from nexus.cli.main import main
from nexus.core.clock import ScaledClock
from nexus.core.errors import ConfigError, StateError
from nexus.facility.service import FacilityService
from nexus.store.access import login
from nexus.store.models import NightSession


def test_first_admin_is_created_once_and_can_log_in(store):
    name, password = ensure_admin(store)
    assert name == "admin" and len(password) >= 16
    with store.session() as s:
        assert login(s, name, password).role.value == "admin"
    assert ensure_admin(store) is None  # never shown again


@pytest.fixture
def busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def test_a_busy_port_is_refused_before_any_bed_starts(busy_port, tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError, match=f"Cannot listen on 127.0.0.1:{busy_port}"):
        check_port("127.0.0.1", busy_port)
    monkeypatch.setenv("NEXUS_DATA_DIR", str(tmp_path / "data"))
    code = main(["run", "--port", str(busy_port), "--clients", "2"])
    assert code != 0
    err = capsys.readouterr().err
    assert "--port" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()  # nothing was created


def test_scaled_clock_checks_its_speed_and_runs_forward():
    with pytest.raises(ValueError, match="speed"):
        ScaledClock(0)
    c = ScaledClock(1000.0)
    a = c.now()
    assert c.now() >= a >= 0
    assert c.wall_delay(a - 1.0) == 0.0
    assert c.wall_delay(c.now() + 1e6) > 0


def test_the_loop_thread_runs_the_night_to_its_end_and_writes_it(store, tmp_path):
    service = FacilityService(store, clients=2, hours=0.02, speed=2000, data_dir=tmp_path, events=False)
    service.start(background=True)
    try:
        # paced in real time: a tick takes the stager's freshest result, it never waits for it
        assert service.sup is not None and [lane.deterministic for lane in service.sup.lanes] == [False]
        with pytest.raises(StateError, match="without its loop thread"):
            service.advance(1.0)
        done = threading.Event()
        for _ in range(600):  # an upper bound only: the night is 72 s of clock, well under a second of wall time
            if service.status()["running"] == 0:
                break
            done.wait(0.1)
        assert service.status()["running"] == 0
        assert {b["end_reason"] for b in service.beds()} == {"night over"}
        assert all(b["epochs"] == 2 for b in service.beds())
    finally:
        service.stop()
    with store.session() as s:
        assert {r.state.value for r in s.scalars(select(NightSession))} == {"ended"}


def test_a_service_stepped_by_hand_collects_the_stager_on_a_fixed_schedule(store, tmp_path):
    from nexus.core.clock import ManualClock

    service = FacilityService(store, clients=2, clock=ManualClock(), data_dir=tmp_path, events=False, run_id="d1")
    service.start()
    try:
        assert service.sup is not None and [lane.deterministic for lane in service.sup.lanes] == [True]
    finally:
        service.stop()
