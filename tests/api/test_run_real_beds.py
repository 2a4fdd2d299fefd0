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


@pytest.mark.slow
def test_nexus_run_serves_replayed_beds(tmp_path, data_dir):
    nights = tmp_path / "nights"
    nights.mkdir()
    shutil.copy(data_dir / "sleep-edf" / "SC4001E0-PSG_first5min.edf", nights / "amp1.edf")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env.update(NEXUS_DATA_DIR=str(tmp_path / "data"))
    code = ("import sys; from nexus.cli.main import main; sys.exit(main(['run', '--source', sys.argv[1], "
            "'--port', sys.argv[2]]))")
    proc = subprocess.Popen([sys.executable, "-c", code, f"replay:{nights}:speed=10", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # until the server says where it is (the first admin's password on the way)
            lines.append(line)
            if line.startswith("Stop with Ctrl-C"):
                break
        text = "".join(lines)
        assert "1 beds from replay:" in text, text
        user, password = re.search(r"username '([^']+)', password '([^']+)'", text).groups()
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # the server answers once uvicorn is up
            try:
                token = _call(f"{base}/api/auth/login", body={"username": user, "password": password})["token"]
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.0)
        (bed,) = _call(f"{base}/api/beds", token)
        assert bed["source"] == "replay:amp1.edf" and bed["unassigned"] and bed["state"] == "running"
        assert bed["channels"] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"] and bed["t_s"] > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    lines.append(out)
    assert proc.returncode == 0, "".join(lines)
    assert "Stopped: 1 sessions ended" in out
    run_dir = next((tmp_path / "data" / "runs").iterdir())
    assert (run_dir / f"{bed['session']}.edf").is_file()  # the bed's EDF+ in the run's folder
