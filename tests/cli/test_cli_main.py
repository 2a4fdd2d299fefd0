"""The ``nexus`` entry point: help, version, db upgrade, and one-line errors for bad input."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from nexus.cli.main import COMMANDS, main


def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_version(capsys):
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("bedtime-nexus ")


def test_db_upgrade_creates_and_is_idempotent(tmp_path, capsys):
    assert main(["db", "upgrade"]) == 0
    assert "upgraded from empty" in capsys.readouterr().out
    assert (tmp_path / "nexus-data" / "nexus.db").is_file()
    assert main(["db", "upgrade"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    out = capsys.readouterr().out
    assert out.split(";")[0].split(": ")[1] == out.strip().split("code: ")[1]


@pytest.mark.parametrize(
    ("args", "env", "code", "match"),
    [
        (
            ["db", "upgrade"],
            {"NEXUS_DATABASE_URL": "definitely not a url"},
            78,
            "NEXUS_DATABASE_URL is not a valid",
        ),
        (["db", "upgrade"], {"NEXUS_DATABASE_URL": "mysqlx://h/db"}, 78, "unknown database kind"),
        (["db", "upgrade"], {"NEXUS_PORT": "-1"}, 78, "NEXUS_PORT"),
        (["--frobnicate"], {}, 2, "No such option '--frobnicate'"),
        (["db", "upgrade", "--fast"], {}, 2, "No such option '--fast'"),
        (["simulat"], {}, 2, "No such command 'simulat'"),
    ],
    ids=[
        "malformed-url",
        "unknown-dialect",
        "bad-port",
        "unknown-option",
        "unknown-sub-option",
        "unknown-command",
    ],
)
def test_bad_input_gives_one_line_and_changes_nothing(tmp_path, monkeypatch, capsys, args, env, code, match):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    before = _listing(tmp_path)
    assert main(args) == code
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and match in err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert _listing(tmp_path) == before


def test_unwritable_data_folder(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    monkeypatch.setenv("NEXUS_DATA_DIR", str(blocker / "data"))
    assert main(["db", "upgrade"]) == 74
    err = capsys.readouterr().err
    assert "cannot be created" in err and "NEXUS_DATA_DIR" in err and err.count("\n") == 1
    assert blocker.read_text() == "a file where a folder should be"


def test_read_only_data_folder(shared_dir, run_unprivileged):
    ro = shared_dir / "ro"
    ro.mkdir()
    ro.chmod(0o555)  # nobody may write, not even its owner (the run drops root's privileges; see conftest)
    out = run_unprivileged(["db", "upgrade"], env={"NEXUS_DATA_DIR": str(ro / "data")})
    assert out.returncode == 74, out.stderr
    assert "cannot be created" in out.stderr and "NEXUS_DATA_DIR" in out.stderr and out.stderr.count("\n") == 1
    assert not (ro / "data").exists()


def test_newer_database_is_refused_untouched(tmp_path, capsys):
    assert main(["db", "upgrade"]) == 0
    db = tmp_path / "nexus-data" / "nexus.db"
    eng = create_engine(f"sqlite:///{db}")
    with eng.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = 'zz_from_the_future'"))
    eng.dispose()
    snapshot = db.read_bytes()
    capsys.readouterr()
    assert main(["db", "upgrade"]) == 74
    err = capsys.readouterr().err
    assert "newer than this code" in err and err.count("\n") == 1
    assert db.read_bytes() == snapshot


def test_a_file_that_is_not_a_database_is_refused_in_one_line_untouched(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "random.db"
    bad.write_bytes(bytes(range(256)) * 16)
    monkeypatch.setenv("NEXUS_DATABASE_URL", f"sqlite:///{bad}")
    assert main(["db", "upgrade"]) == 74
    err = capsys.readouterr().err
    assert "file is not a database" in err and err.count("\n") == 1
    assert bad.read_bytes() == bytes(range(256)) * 16


@pytest.mark.parametrize("command", [["synth", "--hours", "0.1", "-o", "n.edf"], ["simulate", "--clients", "1",
                                     "--hours", "0.01", "--out", "o"], ["dreamscape", "try", "p.yaml"]])
def test_a_negative_seed_is_refused_in_one_line(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--seed", "-1"]) == 2
    err = capsys.readouterr().err
    assert "'--seed'" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_negative_seed_is_refused_by_the_synthetic_sleeper():
    from nexus.core.errors import InvalidInputError
    from nexus.sources.synthetic.fleet import SyntheticFleet

    with pytest.raises(InvalidInputError, match="seed -1"):
        SyntheticFleet("typical_adult", seeds=[0, -1], hours=0.01)


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("NEXUS_DATABASE_URL", "nope")
    from nexus.core.errors import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "db", "upgrade"])


def test_console_script_runs_in_a_fresh_process(tmp_path):
    exe = shutil.which("nexus", path=str(Path(sys.executable).parent))
    assert exe, "the 'nexus' console script is not installed next to the interpreter"
    out = subprocess.run([exe, "--bogus"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("Error: No such option")
