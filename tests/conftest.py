"""Shared fixtures: an isolated database per test (SQLite always, PostgreSQL when configured), and a supervisor of
beds that extraction orders are tested on.

Under pytest-xdist (``scripts/test.sh`` runs one worker per core) each worker process compiles into a numba cache of
its own, ``build/numba-cache/<worker>`` (or ``$NUMBA_CACHE_DIR/<worker>``), which the processes its tests start
inherit: numba's cache is not safe for two processes saving kernels at once (each rereads the index and picks the
first free data-file number, so two new signatures of one kernel saved together can leave the index pointing at the
other's code). PostgreSQL databases carry the worker's name; every test gets its own anyway.
"""

import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"
PG_URL = os.environ.get("NEXUS_TEST_POSTGRES_URL")
WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1", ... in a pytest-xdist worker; None in a serial run


def _own_numba_cache(worker: str) -> None:
    """Point this process (and what it starts) at a numba cache of its own before any kernel is loaded."""
    base = Path(os.environ.get("NUMBA_CACHE_DIR") or Path(__file__).resolve().parents[1] / "build" / "numba-cache")
    os.environ["NUMBA_CACHE_DIR"] = str(base / worker)
    if "numba" in sys.modules:  # a plugin imported it first: numba reads its settings once, at import
        from numba.core import config

        config.reload_config()


if WORKER:
    _own_numba_cache(WORKER)


@pytest.fixture
def data_dir() -> Path:
    """The folder of small real recordings and hypnograms kept in the repo (tests/data)."""
    return DATA


def _wait_until(cond: Callable[[], Any], timeout_s: float, what: str = "the condition", every_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """``wait_until(cond, timeout_s, what, every_s=0.05)``: poll ``cond`` every ``every_s`` seconds until it returns
    something true and return that; fail the test (naming ``what``) when ``timeout_s`` seconds pass first.

    Tests wait on a condition with it, never on a fixed sleep (tests has no package to import a helper from).
    """
    return _wait_until


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No NEXUS_* variable or .env of the developer leaks into a test; the cwd is a fresh folder."""
    for key in list(os.environ):
        if key.startswith("NEXUS_") and key != "NEXUS_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def _postgres_database(template: str | None = None):
    """Create a throw-away database on the test server (empty, or a copy of ``template``); yield its URL; drop it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = make_url(PG_URL).set(drivername="postgresql+psycopg")
    name = f"nexus_t_{WORKER + '_' if WORKER else ''}{uuid.uuid4().hex[:12]}"
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with eng.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not PG_URL, reason="set NEXUS_TEST_POSTGRES_URL to test on PostgreSQL"),
            ],
        ),
    ]
)
def db_url(request, tmp_path):
    """A URL of an empty database of each supported kind.

    A test that takes a ``store`` fixture (a store migrated to the head at once) gets a copy of the run's database
    migrated once (``_sqlite_head``, ``_postgres_head``): the same schema and rows, its ``upgrade`` has nothing left
    to do. Migrating every test's database anew took about a second of each of ~130 PostgreSQL tests (loaded) and
    0.3 s of each SQLite one (copied: 0.1 s).
    """
    if request.param == "sqlite":
        path = tmp_path / "nexus-data" / "nexus.db"
        if "store" in request.fixturenames:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(request.getfixturevalue("_sqlite_head"), path)
        yield f"sqlite:///{path.as_posix()}"
    else:
        head = request.getfixturevalue("_postgres_head") if "store" in request.fixturenames else None
        yield from _postgres_database(template=head)


@pytest.fixture
def postgres_url():
    """A URL of an empty PostgreSQL database, for tests that only make sense on PostgreSQL (no SQLite variant).

    Skips only where no PostgreSQL is configured (a developer's machine); the test command starts one and sets
    ``NEXUS_TEST_POSTGRES_URL``, so CI runs these tests.
    """
    if not PG_URL:
        pytest.skip("set NEXUS_TEST_POSTGRES_URL to test on PostgreSQL")
    yield from _postgres_database()


def _migrate(url: str) -> None:
    from nexus.core.settings import load_settings
    from nexus.store import open_store, upgrade

    store = open_store(load_settings(database_url=url), create=True, check=False)
    try:
        upgrade(store.engine)
    finally:
        store.close()  # every connection closed: SQLite's WAL is folded into the file; PostgreSQL may copy it


@pytest.fixture(scope="session")
def _sqlite_head(tmp_path_factory) -> Path:
    """A SQLite database file migrated to the head once per run (copied, never opened again)."""
    path = tmp_path_factory.mktemp("sqlite-head") / "nexus.db"
    _migrate(f"sqlite:///{path.as_posix()}")
    return path


@pytest.fixture(scope="session")
def _postgres_head():
    """The name of a PostgreSQL database migrated to the head once per run (a template; nothing connects to it)."""
    from sqlalchemy.engine import make_url

    gen = _postgres_database()
    url = next(gen)
    _migrate(url)

    yield make_url(url).database
    gen.close()  # dropped


@pytest.fixture
def store(db_url):
    """A store on a database migrated to the head, of each supported kind (see ``db_url``); closed after the test."""
    from nexus.core.settings import load_settings
    from nexus.store import open_store, upgrade

    st = open_store(load_settings(database_url=db_url), create=True, check=False)
    upgrade(st.engine)
    yield st
    st.close()


def _order_beds(store: Any, names: list[str], run: str = "run1") -> tuple[Any, list[Any]]:
    import numpy as np

    from nexus.core.clock import ManualClock
    from nexus.dreamscape.presets import default_clas_program
    from nexus.dreamscape.schema import Scene
    from nexus.facility.analyzers import default_analyzers
    from nexus.facility.benchmark import LoopedFleet, _signals_at
    from nexus.facility.orders import register_run
    from nexus.facility.supervisor import Supervisor
    from nexus.sinks.bedside import CountingSink

    register_run(store, run, [], names)
    p = default_clas_program()
    prog = p.model_copy(update={"scenes": {**p.scenes, "bed": Scene(layers=[{"sound": "rain", "level_db": -35}])},
                                "rules": {"W": "bed", "N1": "bed", "N2": "bed", "N3": "bed", "R": "bed"}})
    sup = Supervisor(ManualClock(), analyzers=default_analyzers(block_s=0.1, events=False), step_s=0.25)
    sinks = [CountingSink() for _ in names]
    channels, fs = ("EEG C4-M1", "EOG E1-M2", "EMG Chin", "ECG"), 100.0
    signals = _signals_at(len(names), 40, 1.0, 60.0, fs, channels).astype(np.float64)
    sup.add_fleet(LoopedFleet(signals, fs, channels), names, programs=[prog] * len(names), sinks=sinks)
    return sup, sinks


@pytest.fixture
def order_beds() -> Callable[..., tuple[Any, list[Any]]]:
    """``order_beds(store, names, run="run1")``: the running sessions ``names`` (rows already in ``store``) of a
    facility run ``run``, registered, on a supervisor (0.25-s steps, no event detectors) fed looped synthetic
    signals (100 Hz, 40 s), each bed playing a CLAS program whose rain scene sounds in every stage into a
    ``CountingSink``. Returns ``(supervisor, sinks)``; the test closes the supervisor.
    """
    return _order_beds


@pytest.fixture(scope="module")
def module_postgres_url():
    """A URL of an empty PostgreSQL database shared by the tests of one module (costly set-ups); skips without one."""
    if not PG_URL:
        pytest.skip("set NEXUS_TEST_POSTGRES_URL to test on PostgreSQL")
    yield from _postgres_database()
