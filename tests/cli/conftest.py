"""Run the CLI in a fresh process as a user without privileges, so that permission checks are real.

Root ignores permission bits, and CI runs as root: there the process drops to ``nobody`` with ``setpriv``, so a
test of a read-only folder runs everywhere instead of skipping where it matters most.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

NOBODY = 65534
_MAIN = "import sys; from nexus.cli.main import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A fresh folder that an unprivileged user can enter (pytest's own tmp_path is private to its user)."""
    d = Path(tempfile.mkdtemp(prefix="nexus-cli-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        for p in [d, *d.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(d)


@pytest.fixture
def run_unprivileged(shared_dir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``nexus ARGS`` in ``shared_dir`` as an unprivileged user (``nobody`` when the tests run as root)."""
    assert shutil.which("setpriv") or os.geteuid() != 0, "running as root needs setpriv (util-linux) to drop to nobody"

    def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-c", _MAIN, *args]
        if os.geteuid() == 0:
            cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
        scratch = shared_dir / ".scratch"  # writable by the user that runs: caches, HOME
        scratch.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chown(scratch, NOBODY, NOBODY)
        full = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(scratch),
            "NUMBA_CACHE_DIR": str(scratch / "numba"),
            "MPLCONFIGDIR": str(scratch / "mpl"),
            **(env or {}),
        }
        return subprocess.run(cmd, cwd=shared_dir, env=full, capture_output=True, text=True, timeout=120)

    return run


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A fresh SQLite database at the migration head, in the test's folder (the cwd: the default data folder)."""
    from nexus.cli.main import main

    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    return tmp_path / "nexus-data" / "nexus.db"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``nexus ARGS`` in this process: ``cli("user", "list")`` → (exit code, stdout, stderr)."""
    from nexus.cli.main import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
