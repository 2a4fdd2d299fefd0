"""``nexus extract`` starts fast: its path loads neither numpy nor Alembic, and the schema check agrees with Alembic."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from nexus.core.settings import load_settings
from nexus.store import head_revision, open_store, upgrade
from nexus.store.migrate import _quick_current, _quick_head

PROBE = """
import json, sys
from nexus.cli.main import main
rc = main(["extract", "--all", "--no-wait"])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"numpy", "scipy", "alembic", "pandas", "mne", "edfio"})
print(json.dumps({"rc": rc, "heavy": heavy}))
"""


def test_the_extract_path_loads_no_numeric_library_and_no_alembic(tmp_path):
    url = f"sqlite:///{(tmp_path / 'nexus.db').as_posix()}"
    st = open_store(load_settings(database_url=url), create=True, check=False)
    upgrade(st.engine)
    st.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env |= {"NEXUS_DATABASE_URL": url, "NEXUS_DATA_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120,
                       check=False)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["rc"] != 0 and "No running session to extract" in r.stderr  # the database was read
    assert out["heavy"] == []


def test_the_quick_schema_check_agrees_with_alembic(tmp_path):
    st = open_store(load_settings(database_url=f"sqlite:///{(tmp_path / 'n.db').as_posix()}"), create=True,
                    check=False)
    try:
        assert _quick_head() == head_revision()
        assert _quick_current(st.engine) is None  # empty: no version table yet
        upgrade(st.engine, "0001")
        assert _quick_current(st.engine) == "0001"
        upgrade(st.engine)
        assert _quick_current(st.engine) == head_revision()
    finally:
        st.close()
