"""The floor at scale: ``nexus run`` with N beds, the console in Debian's chromium, and extra consoles.

Prints, for one run:

- time from starting ``nexus run`` to its URL being printed, and to the console showing every bed;
- the console's render passes (script time per animation frame that changed tiles) and animation-frame
  intervals in chromium, p50/p95, over the measuring window;
- WebSocket bytes per second per console (``--consoles`` feeds read in this process, snapshot excluded);
- server CPU (user + system of the ``nexus run`` process) with the one browser console, then with the extra
  consoles as well: the difference is the cost of feeding them, in % of one core;
- the live loop's step p99 (``/api/facility``: ``tick_ms_p99``) over its last 240 ticks (a minute of night at
  1x: the first ticks are outside it once the night's clock, printed, is past 60 s), its five slowest ticks with
  the night's clock at each (an epoch closes at every 30 s; the extra consoles joined at the clock printed), and
  its lag behind the wall clock; and the p99 of the loop thread's CPU time per tick (on a shared, loaded host the
  wall time mostly measures the wait for a core).

Example: ``python bench/console_floor.py --clients 500 --consoles 10 --window 30``. Needs /usr/bin/chromium
and the dev extra (playwright). Everything listens on 127.0.0.1; the run stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _get(url: str, token: str) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _feed(url: str, stop: threading.Event, out: list[int]) -> None:
    from websockets.sync.client import connect

    with connect(url, max_size=None, open_timeout=60) as ws:
        ws.recv(timeout=120)  # the snapshot (counted apart)
        n = 0
        while not stop.is_set():
            try:
                msg = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            n += len(msg.encode() if isinstance(msg, str) else msg)
        out.append(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--consoles", type=int, default=10)
    ap.add_argument("--window", type=float, default=30.0, help="seconds of each measuring window")
    ap.add_argument("--speed", type=float, default=1.0)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="nexus-floor-"))
    port = _free_port()
    env = {**os.environ, "NEXUS_DATA_DIR": str(tmp), "NEXUS_DATABASE_URL": f"sqlite:///{tmp}/nexus.db"}
    nexus = Path(sys.executable).parent / "nexus"
    t0 = time.monotonic()
    proc = subprocess.Popen([str(nexus), "run", "--clients", str(args.clients), "--port", str(port),
                             "--speed", str(args.speed)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        user = password = None
        for line in proc.stdout:
            m = re.search(r"username '([^']+)', password '([^']+)'", line)
            if m:
                user, password = m.groups()
            if "Stop with Ctrl-C" in line:
                break
        t_url = time.monotonic() - t0
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):  # the URL is printed just before uvicorn listens
            try:
                urllib.request.urlopen(base + "/api/health", timeout=5)
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(base + "/")
            page.fill("input[name=username]", str(user))
            page.fill("input[name=password]", str(password))
            page.click("button[type=submit]")
            page.wait_for_function(f"document.querySelectorAll('.tile[data-session]').length === {args.clients}",
                                   timeout=600_000)
            t_floor = time.monotonic() - t0
            token = page.evaluate("sessionStorage.getItem('nexus-token')")
            page.evaluate("""() => { window.benchRaf = []; let last = performance.now();
                const f = (t) => { window.benchRaf.push(t - last); last = t; requestAnimationFrame(f); };
                requestAnimationFrame(f); window.nexusRenderMs.length = 0; }""")
            # window 1: the browser console only
            c0 = _cpu_s(proc.pid)
            time.sleep(args.window)
            cpu_one = (_cpu_s(proc.pid) - c0) / args.window
            # window 2: with the extra consoles
            stop = threading.Event()
            counts: list[int] = []
            ws_url = f"ws://127.0.0.1:{port}/ws/floor?token={token}"
            joined_at = _get(base + "/api/facility", token)["clock_s"]
            threads = [threading.Thread(target=_feed, args=(ws_url, stop, counts), daemon=True)
                       for _ in range(args.consoles)]
            for t in threads:
                t.start()
            time.sleep(3.0)  # their snapshots
            c1 = _cpu_s(proc.pid)
            time.sleep(args.window)
            cpu_more = (_cpu_s(proc.pid) - c1) / args.window
            stop.set()
            for t in threads:
                t.join(timeout=30)
            render = np.array(page.evaluate("window.nexusRenderMs"), dtype=float)
            raf = np.array(page.evaluate("window.benchRaf"), dtype=float)[5:]
            status = _get(base + "/api/facility", token)
            browser.close()
        per_console = float(np.mean(counts)) / (args.window + 3.0) if counts else float("nan")
        pct = (lambda a, q: round(float(np.percentile(a, q)), 2) if a.size else None)  # noqa: E731
        print(json.dumps({
            "beds": args.clients, "speed": args.speed, "consoles": 1 + args.consoles, "window_s": args.window,
            "load_average": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
            "run_to_url_s": round(t_url, 1), "run_to_every_bed_on_console_s": round(t_floor, 1),
            "render_pass_ms": {"p50": pct(render, 50), "p95": pct(render, 95),
                               "max": round(float(render.max()), 2) if render.size else None, "n": int(render.size)},
            "frame_interval_ms": {"p50": pct(raf, 50), "p95": pct(raf, 95), "n": int(raf.size)},
            "ws_kib_per_s_per_console": round(per_console / 1024, 2),
            "server_cpu_pct_core": {"one_console": round(100 * cpu_one, 1),
                                    f"{1 + args.consoles}_consoles": round(100 * cpu_more, 1),
                                    f"feeding_{args.consoles}_more": round(100 * (cpu_more - cpu_one), 1)},
            "loop_step_p99_ms": status.get("tick_ms_p99"), "loop_step_cpu_p99_ms": status.get("tick_cpu_ms_p99"),
            "loop_slowest_ticks": status.get("slowest_ticks"),
            "consoles_joined_at_clock_s": joined_at, "loop_lag_s": status["lag_s"],
            "running": status["running"], "night_clock_s": status["clock_s"],
        }))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
