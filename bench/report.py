"""Night report of a whole synthetic night: time per step and report size.

The night comes from the synthetic sleeper (``nexus synth``, 10 channels at 256 Hz) with its true
hypnogram. Steps, in one warm process (numba kernels already compiled by a first, discarded run):
gathering the night without events (reading the channels the report uses, as ``--no-events``) and
with them (reading, then detecting spindles, slow oscillations, arousals, REMs), laying out the
report (statistics and figures), writing HTML and PDF; wall and process CPU seconds (CPU is less
disturbed by a loaded machine; the load average is printed). ``report_*`` add up the steps of
one report as ``nexus report`` makes it.
``overlapped_*`` time one report as ``nexus report`` makes it (``background=True``: the figures that do
not need the events are drawn while the detectors run), gathering to writing.
``cli_*`` are wall times of fresh ``nexus report`` processes as a user runs them (imports and reading
included); ``cli_html_max_rss_mb`` is the peak resident memory of the first. Prints one JSON object.

    .venv/bin/python bench/report.py [--hours 8] [--edf night.edf --hypno truth.tsv]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NEXUS = [sys.executable, "-c", "from nexus.cli.main import entry; entry()"]


def _steps(edf: Path, hypno: Path, out: Path) -> dict[str, float]:
    from nexus.reports.document import write_report
    from nexus.reports.night import build_night_report, night_from_recording

    t: dict[str, float] = {}

    def timed(name: str, fn, *args):  # type: ignore[no-untyped-def]
        w, c = time.perf_counter(), time.process_time()
        res = fn(*args)
        t[f"{name}_s"] = time.perf_counter() - w
        t[f"{name}_cpu_s"] = time.process_time() - c
        return res

    timed("gather_no_events", lambda: night_from_recording(edf, hypno, detect=False))
    data = timed("gather_with_events", night_from_recording, edf, hypno)  # reads again, then detects events
    rep = timed("build", build_night_report, data)
    timed("write_html", write_report, rep, out / "r.html")
    timed("write_pdf", write_report, rep, out / "r.pdf")
    del data, rep  # the night's arrays are freed before the next
    for fmt in ("html", "pdf"):  # as nexus report does it: the figures drawn while the events are detected
        timed(f"overlapped_{fmt}", lambda f=fmt: write_report(build_night_report(
            night_from_recording(edf, hypno, background=True)), out / f"o.{f}"))
    return {k: round(v, 3) for k, v in t.items()}


def _cli(args: list[str]) -> float:
    return _cli_rss(args)[0]


def _cli_rss(args: list[str]) -> tuple[float, float | None]:
    """Wall seconds and peak resident memory (MB; None where unknown) of one fresh ``nexus`` process.

    The peak is the process's own ``VmHWM`` (Linux), read as it exits: the ``ru_maxrss`` of a child
    started from this process would include this process's memory at the fork.
    """
    import re

    hwm = ("import atexit, sys; atexit.register(lambda: sys.stderr.write(''.join(line for line in "
           "open('/proc/self/status') if line.startswith('VmHWM'))) if sys.platform == 'linux' else None); ")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", hwm + "from nexus.cli.main import entry; entry()", *args],
                         check=True, capture_output=True, text=True)
    wall = round(time.perf_counter() - t0, 3)
    m = re.search(r"VmHWM:\s*(\d+) kB", res.stderr)
    return wall, round(int(m.group(1)) / 1024, 1) if m else None


def main() -> None:
    """Run the benchmark and print JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--edf", type=Path, default=None)
    ap.add_argument("--hypno", type=Path, default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        edf, hypno = a.edf, a.hypno
        if edf is None or hypno is None:
            edf, hypno = out / "night.edf", out / "truth.tsv"
            subprocess.run([*NEXUS, "synth", "--hours", str(a.hours), "--seed", "1", "-o", str(edf),
                            "--truth", str(hypno)], check=True, capture_output=True)
        _steps(edf, hypno, out)  # compiles or loads the kernels; discarded
        steps = _steps(edf, hypno, out)
        from nexus.formats.edf import read_edf

        rec = read_edf(edf)
        import os

        result = {
            "load_average_1min": round(os.getloadavg()[0], 1),
            "cpu_cores": os.cpu_count(),
            "hours": round(rec.duration / 3600, 2),
            "channels": len(rec.signals),
            "fs_hz": max(s.fs for s in rec.signals),
            **steps,
            **{f"report_{fmt}{ev}_{kind}": round(steps[f"gather_{g}_{kind}"] + steps[f"build_{kind}"]
                                                 + steps[f"write_{fmt}_{kind}"], 3)
               for fmt in ("html", "pdf") for ev, g in (("", "with_events"), ("_no_events", "no_events"))
               for kind in ("s", "cpu_s")},
            **dict(zip(("cli_html_s", "cli_html_max_rss_mb"),
                       _cli_rss(["report", str(edf), "--hypno", str(hypno), "-o", str(out / "c.html")]), strict=True)),
            "cli_html_no_events_s": _cli(["report", str(edf), "--hypno", str(hypno), "--no-events",
                                          "-o", str(out / "c2.html")]),
            "cli_pdf_no_events_s": _cli(["report", str(edf), "--hypno", str(hypno), "--no-events",
                                         "-o", str(out / "c3.pdf")]),
            "html_kib": round((out / "r.html").stat().st_size / 1024, 1),
            "pdf_kib": round((out / "r.pdf").stat().st_size / 1024, 1),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
