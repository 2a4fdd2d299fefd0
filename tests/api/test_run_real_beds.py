"""``nexus run --source replay:DIR`` as a user runs it: a server process whose API shows the replayed beds."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(url: str, token: str | None = None, body: dict | None = None) -> object:
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class Server:
    """``nexus run --source SPEC`` in a server process, as a user starts it; logged in as its first admin."""

    def __init__(self, source: str, tmp_path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
        env.update(NEXUS_DATA_DIR=str(tmp_path / "data"))
        code = ("import sys; from nexus.cli.main import main; sys.exit(main(['run', '--source', sys.argv[1], "
                "'--port', sys.argv[2]]))")
        self.proc = subprocess.Popen([sys.executable, "-c", code, source, str(self.port)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
        self.lines: list[str] = []
        self.token = ""

    def login(self) -> str:
        """Read the output until the server says where it is; log in; return what it printed so far."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # the first admin's password is on the way
            self.lines.append(line)
            if line.startswith("Stop with Ctrl-C"):
                break
        text = "".join(self.lines)
        found = re.search(r"username '([^']+)', password '([^']+)'", text)
        assert found is not None, text
        user, password = found.groups()
        for _ in range(100):  # the server answers once uvicorn is up
            try:
                login = {"username": user, "password": password}
                self.token = _call(f"{self.base}/api/auth/login", body=login)["token"]
                break
            except OSError:
                time.sleep(0.1)
        return text

    def get(self, path: str) -> object:
        return _call(self.base + path, self.token)

    def stop(self) -> str:
        """SIGTERM, as a service manager stops it; what it printed after the login."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=120)
        self.lines.append(out)
        return out


@pytest.mark.slow
def test_nexus_run_serves_replayed_beds(tmp_path, data_dir):
    nights = tmp_path / "nights"
    nights.mkdir()
    shutil.copy(data_dir / "sleep-edf" / "SC4001E0-PSG_first5min.edf", nights / "amp1.edf")
    server = Server(f"replay:{nights}:speed=10", tmp_path)
    try:
        text = server.login()
        assert "1 beds from replay:" in text, text
        time.sleep(1.0)
        (bed,) = server.get("/api/beds")
        assert bed["source"] == "replay:amp1.edf" and bed["unassigned"] and bed["state"] == "running"
        assert bed["channels"] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"] and bed["t_s"] > 0
    finally:
        out = server.stop()
    assert server.proc.returncode == 0, "".join(server.lines)
    assert "Stopped: 1 sessions ended" in out
    run_dir = next((tmp_path / "data" / "runs").iterdir())
    assert (run_dir / f"{bed['session']}.edf").is_file()  # the bed's EDF+ in the run's folder


@pytest.mark.slow
def test_nexus_run_serves_brainflows_synthetic_board(tmp_path):
    """BrainFlow's synthetic board (offline) as one bed of a running server: on the API, recorded at stop."""
    pytest.importorskip("brainflow")
    from nexus.formats.edf import read_edf

    server = Server("brainflow:synthetic", tmp_path)
    bed: dict = {}
    try:
        text = server.login()
        assert "1 beds from brainflow:synthetic" in text, text
        for _ in range(100):  # until it has recorded a second and a half of the board's samples
            (bed,) = server.get("/api/beds")
            if bed["t_s"] >= 1.5:
                break
            time.sleep(0.1)
        assert bed["source"] == "brainflow:synthetic" and bed["unassigned"] and bed["state"] == "running"
        assert bed["fs"] == 250.0 and len(bed["channels"]) == 16 and bed["channels"][0] == "EEG Fz", bed
        assert bed["t_s"] >= 1.5 and not bed["joining"]
    finally:
        out = server.stop()
    assert server.proc.returncode == 0, "".join(server.lines)
    assert "Stopped: 1 sessions ended" in out
    run_dir = next((tmp_path / "data" / "runs").iterdir())
    r = read_edf(run_dir / f"{bed['session']}.edf")
    assert [s.label for s in r.signals] == bed["channels"]
    x = np.array([s.data for s in r.signals])
    assert x.shape[1] >= 1.5 * 250 and 1 < np.std(x) < 1000  # µV scale
    assert not [a for a in r.annotations if a.text.startswith("gap")]  # the board's samples, no hole
