"""A real server (uvicorn in a thread) over a facility on a manual clock, and Debian's chromium through Playwright."""

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

from nexus.core.clock import ManualClock
from nexus.core.settings import load_settings
from nexus.facility.service import FacilityService
from nexus.store import open_store, upgrade
from nexus.store.access import add_user

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "correct horse battery staple"


@pytest.fixture
def artifacts(tmp_path) -> Path:
    """Where screenshots go: $TEST_ARTIFACTS_DIR/console (CI keeps them) or the test's tmp folder."""
    root = os.environ.get("TEST_ARTIFACTS_DIR")
    d = Path(root) / "console" if root else tmp_path / "artifacts"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def served(tmp_path):
    """(base URL, service) of a running server: 6 beds, bed 2 with bad samples at 40 s, 95 s into the night."""
    import uvicorn

    from nexus.api.app import create_app

    store = open_store(load_settings(database_url=f"sqlite:///{tmp_path / 'nexus.db'}"), create=True, check=False)
    upgrade(store.engine)
    with store.session() as s:
        add_user(s, "tech", "technician", password=PASSWORD)
    service = FacilityService(store, clients=6, clock=ManualClock(), data_dir=tmp_path, faults=[(1, 40.0)],
                              events=False, run_id="b")
    service.start()
    service.advance(95.0, step_s=1.0)  # fast-forwarded set-up (1-s steps, as nexus simulate)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(service, store), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started and thread.is_alive():
        started.wait(0.05)
    assert server.started, "the test server did not start"
    yield f"http://127.0.0.1:{port}", service
    server.should_exit = True
    thread.join(timeout=10)
    service.stop()
    store.close()
    sock.close()


@pytest.fixture
def page():
    """A chromium page (Debian's /usr/bin/chromium, headless)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    if not shutil.which(CHROMIUM):
        pytest.skip("needs Debian's chromium: apt-get install -y chromium (scripts/test.sh does)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg
        browser.close()
        assert errors == [], f"JavaScript errors in the console: {errors}"
