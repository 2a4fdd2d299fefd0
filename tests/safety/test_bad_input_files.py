"""Bad files and full disks at the edge: one line naming the problem and the fix, non-zero exit, no half file."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nexus.cli.main import main
from nexus.core.errors import StorageError
from nexus.formats.edf import Signal, read_edf, write_edf
from nexus.sinks.wav import WavSink
from nexus.store.recording import RecordingJournal

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dreamscapes" / "deep-sleep.yaml"


def _edf(path: Path, seconds: int = 120) -> Path:
    t = np.arange(seconds * 100) / 100.0
    x = 20 * np.sin(2 * np.pi * 1.0 * t)
    return write_edf(path, [Signal("EEG C4-M1", x, 100.0, "uV"), Signal("EOG E1-M2", x / 2, 100.0, "uV")])


def _ns_and_spr_offset(raw: bytes) -> tuple[int, int]:
    ns = int(raw[252:256])
    return ns, 256 + ns * 216


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("Error:")]
    assert len(errors) == 1 and not any("Traceback" in ln for ln in err), err
    return errors[0]


@pytest.mark.parametrize("damage", ["absurd_samples_per_record", "zero_record_duration"])
def test_an_edf_with_an_impossible_header_is_one_line(tmp_path, capsys, damage):
    raw = bytearray(_edf(tmp_path / "ok.edf").read_bytes())
    _, spr = _ns_and_spr_offset(raw)
    if damage == "absurd_samples_per_record":
        raw[spr:spr + 8] = b"99999999"
    else:
        raw[244:252] = b"0       "
    bad = tmp_path / "bad.edf"
    bad.write_bytes(bytes(raw))
    for cmd in (["stage", str(bad)], ["glitches", str(bad)]):
        assert main(cmd) == 65
        line = _one_line_error(capsys)
        assert "header is corrupt" in line and ("samples per data record" in line or "lasts 0 s" in line)


def test_a_truncated_edf_warns_how_much_is_missing_and_keeps_only_what_is_there(tmp_path, caplog):
    raw = _edf(tmp_path / "ok.edf", seconds=100).read_bytes()
    ns, _ = _ns_and_spr_offset(raw)
    head = 256 * (ns + 1)
    cut = tmp_path / "cut.edf"
    cut.write_bytes(raw[: head + (len(raw) - head) * 40 // 100])  # 40 of 100 one-second records
    with caplog.at_level(logging.WARNING, logger="nexus"):
        rec = read_edf(cut)
    lines = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert len(lines) == 1 and "40 of 100 data records" in lines[0] and "60 s missing" in lines[0]
    assert rec.signals[0].data.size == 40 * 100  # statistics count only what is there


# -- full disks --------------------------------------------------------------------------------------
@pytest.fixture
def full_dir(tmp_path):
    """A folder on a tiny tmpfs filled to the last byte (needs root and a kernel that lets us mount)."""
    d = tmp_path / "full"
    d.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a full tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(d)], capture_output=True,
                       check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode(errors='replace').strip()}")
    try:
        fd = os.open(d / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=False)


def _nothing_left(folder: Path, name: str) -> None:
    assert not (folder / name).exists()
    assert not [p.name for p in folder.iterdir() if p.name != "filler"]  # no hidden partial files either


def test_a_full_disk_is_one_line_for_every_command_that_writes(full_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NEXUS_DATA_DIR", str(tmp_path / "data"))
    edf = tmp_path / "night.edf"
    assert main(["synth", "-o", str(edf), "--hours", "0.1"]) == 0
    hyp = tmp_path / "night.tsv"
    assert main(["stage", str(edf), "-o", str(hyp)]) == 0
    capsys.readouterr()
    cases = {
        "synth.edf": ["synth", "-o", str(full_dir / "synth.edf"), "--hours", "0.1"],
        "h.tsv": ["stage", str(edf), "-o", str(full_dir / "h.tsv")],
        "e.tsv": ["events", str(edf), "-o", str(full_dir / "e.tsv")],
        "n.wav": ["dreamscape", "render", str(EXAMPLE), "--hypno", str(hyp), "-o", str(full_dir / "n.wav"),
                  "--minutes", "2"],
    }
    for name, cmd in cases.items():
        assert main(cmd) == StorageError.exit_code, name
        line = _one_line_error(capsys)
        assert "No space left on the disk" in line and name in line
        _nothing_left(full_dir, name)


def test_simulate_onto_a_full_disk_is_one_line_and_ends_its_sessions(full_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NEXUS_DATA_DIR", str(tmp_path / "data"))
    rc = main(["simulate", "--clients", "2", "--hours", "0.05", "--out", str(full_dir / "night"), "--no-progress"])
    assert rc == StorageError.exit_code
    assert "the disk is full" in _one_line_error(capsys)
    assert main(["sessions", "--state", "running", "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


def test_the_journal_on_a_full_disk_raises_one_storage_error(full_dir):
    def write() -> None:
        j = RecordingJournal(full_dir / "journal")
        try:
            j.add_session("s", ("EEG C4-M1",), 100.0)
            j.write_signals(["s"], [0.0], np.zeros((1, 1, 200_000)))
            j.flush(force=True)
        finally:
            with contextlib.suppress(Exception):
                j.close()

    with pytest.raises(StorageError, match="the disk is full"):
        write()


def test_a_wav_write_that_fails_leaves_nothing_under_its_name(tmp_path):
    out = tmp_path / "night.wav"
    def render() -> None:
        with WavSink(out) as sink:
            sink.write(np.zeros(4800, dtype=np.float32))
            raise RuntimeError("the renderer failed")

    with pytest.raises(RuntimeError):
        render()
    assert not out.exists() and not list(tmp_path.glob(".night.wav*"))
    with WavSink(out) as sink:
        sink.write(np.zeros(4800, dtype=np.float32))
    assert out.exists()


def test_a_killed_writers_partial_wav_is_cleaned_by_the_next_writer(tmp_path):
    out = tmp_path / "night.wav"
    stale = tmp_path / f".night.wav.{os.getpid() + 10_000_000}.part"  # no such process
    stale.write_bytes(b"RIFF....")
    old = tmp_path / ".night.wav.part"  # the name older versions used
    old.write_bytes(b"RIFF....")
    with WavSink(out) as sink:
        sink.write(np.zeros(480, dtype=np.float32))
    assert out.exists() and not stale.exists() and not old.exists()


def test_synth_hours_that_are_not_whole_seconds_are_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "night.edf"
    assert main(["synth", "-o", str(out), "--hours", "0.5001"]) == 2
    assert "not a whole number of seconds" in _one_line_error(capsys) and not out.exists()


def test_simulate_into_a_folder_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NEXUS_DATA_DIR", str(tmp_path / "data"))
    locked = tmp_path / "locked"
    locked.mkdir()
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot make a folder immutable here (chattr +i needs root on a supporting file system)")
    try:
        rc = main(["simulate", "--clients", "1", "--hours", "0.01", "--out", str(locked / "night"), "--no-progress"])
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=False)
    assert rc == StorageError.exit_code
    assert "Cannot write to the output folder" in _one_line_error(capsys)
