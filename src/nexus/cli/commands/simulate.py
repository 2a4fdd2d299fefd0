"""``nexus simulate``: a whole facility night of synthetic sleepers in fast-forward."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nexus.facility.workers_auto import BEDS_PER_WORKER, auto_workers


@click.command()
@click.option("--clients", type=int, default=10, show_default=True, help="Number of beds (synthetic sleepers).")
@click.option("--hours", type=float, default=8.0, show_default=True, help="Length of the night in hours.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Output folder. One that already holds a simulation is left as it is: the run goes to the first "
                   "new (or empty) OUT-2, OUT-3, … beside it, named on standard error and in the summary.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of the first sleeper.")
@click.option("--profile", default="typical_adult", show_default=True,
              help="Sleeper profile for every bed: typical_adult, older_adult, insomniac, nightmare_prone, teen.")
@click.option("--fs", type=float, default=100.0, show_default=True, help="Sampling rate in Hz (>= 100).")
@click.option("--tick", "tick_s", type=float, default=30.0, show_default=True, help="Fast-forward step in seconds.")
@click.option("--step", "step_s", type=float, default=1.0, show_default=True,
              help="Lane step inside a tick, in seconds (how soon a sleeper's response to a sound starts).")
@click.option("--program", "program_file", type=click.Path(dir_okay=False),
              help="One dreamscape program (YAML/JSON) for every bed; default: curated per client from an intake.")
@click.option("--natural-share", type=click.FloatRange(0, 1), default=1 / 7, show_default="1/7",
              help="Share of beds with a natural (record-only) night.")
@click.option("--audio", "audio_dir", type=click.Path(file_okay=False), help="Write one WAV per bed into this folder.")
@click.option("--reports", is_flag=True,
              help="Also write the facility's night report and one night report per bed (HTML) into OUT/reports.")
@click.option("--faults", default="",
              help="Comma-separated fault kinds to inject (or 'all'), to rehearse alarms: electrode_off, "
                   "electrode_pop, clipping, line_noise, dropped_samples, clock_jitter.")
@click.option("--fault-share", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Share of beds that get the faults.")
@click.option("--distress", type=click.IntRange(0, 20), default=None, help="Distress episodes per bed.")
@click.option("--signals/--no-signals", default=False, show_default=True,
              help="Record raw signals and write one EDF+ per session (~5.5 MB per bed-hour).")
@click.option("--events/--no-events", default=True, show_default=True, help="Run the event detectors.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes sharing the beds (default: one per CPU core this process may use, at most one per "
                   f"{BEDS_PER_WORKER} beds).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on in a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def simulate(clients: int, hours: float, out: str, seed: int, profile: str, fs: float, tick_s: float, step_s: float,
             program_file: str | None, natural_share: float, audio_dir: str | None, reports: bool, faults: str,
             fault_share: float,
             distress: int | None, signals: bool, events: bool, workers: int | None, progress: bool | None,
             as_json: bool) -> None:
    """Run a whole facility night in fast-forward through the live engine, each bed playing its dreamscape.

    Sessions, programs, decisions and summaries go to the facility database (NEXUS_DATABASE_URL,
    or SQLite in NEXUS_DATA_DIR); --out holds files (journal, hypnograms, summary.json).
    """
    from functools import partial

    from nexus.core.progress import progress_enabled
    from nexus.facility.simulate import free_run_folder
    from nexus.facility.simulate import simulate as simulate_night
    from nexus.sources.synthetic import get_profile

    get_profile(profile)  # unknown profiles fail before anything is written
    folder = str(free_run_folder(out))
    if folder != str(Path(out)):  # re-running a command: the earlier run is kept, this one goes beside it
        click.echo(f"note: '{out}' already holds a simulation (left as it is); this one goes to '{folder}'.", err=True)
    out = folder
    if workers is None:
        workers = auto_workers(clients)
    program = None
    if program_file:
        from nexus.guard.exploitation import load_checked_program as load_program  # checks and the policy

        program = load_program(program_file)
    run = partial(simulate_night, step_s=step_s, program=program, natural_share=natural_share, audio=audio_dir,
                  faults=[k for k in faults.split(",") if k.strip()], fault_share=fault_share, distress=distress)
    if progress_enabled(None if progress is None else not progress):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(TextColumn("simulating {task.fields[beds]} beds"), BarColumn(),
                       TextColumn("{task.completed:.0f}/{task.total:.0f} s"), TimeElapsedColumn(),
                       TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        with bar:
            task = bar.add_task("sim", total=hours * 3600, beds=clients)
            summary = run(clients, hours, out, seed=seed, fs=fs, profiles=profile, tick_s=tick_s, signals=signals,
                          events=events, workers=workers, progress=lambda done, total: bar.update(task, completed=done))
    else:
        summary = run(clients, hours, out, seed=seed, fs=fs, profiles=profile, tick_s=tick_s, signals=signals,
                      events=events, workers=workers)
    if reports:
        written = _write_reports(summary)
        click.echo(f"Wrote {written} report(s) into {summary.out}/reports", err=True)
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
        return
    s = summary
    from nexus.core.checks import plural

    click.echo(f"Simulated {plural(s.clients, 'bed')} x {s.hours:g} h at {s.fs:g} Hz in {s.wall_s:.1f} s "
               f"({s.speedup:,.0f}x real time per bed-second).")
    click.echo(f"  epochs staged: {s.epochs_staged}; stage minutes per bed: "
               + ", ".join(f"{k} {v:g}" for k, v in s.stage_minutes.items()))
    click.echo("  events: " + (", ".join(f"{k} {v}" for k, v in s.events.items()) or "none"))
    click.echo("  glitches: " + (", ".join(f"{k} {v}" for k, v in s.glitches.items()) or "none"))
    click.echo(f"  dreamscapes: {s.programs} beds with a program, {s.natural} natural nights; commands: "
               + (", ".join(f"{k} {v}" for k, v in s.commands.items()) or "none")
               + f"; {s.decisions} decisions journaled")
    if s.so_power_change_pct is not None:
        click.echo(f"  slow-oscillation power in N3, stimulated vs natural beds: {s.so_power_change_pct:+.1f}% "
                   "(model-dependent: the synthetic sleeper's response)")
    click.echo(f"  samples: {s.samples.get('received', 0):,} processed, {s.samples.get('missing', 0):,} missing, "
               f"{s.samples.get('dropped', 0):,} dropped")
    click.echo(f"  output: {s.out} (summary.json with per-bed figures, hypnograms/, journal/"
               + (f", {s.recordings} EDF+ recordings" if s.recordings else "") + ")")
    if s.database:
        click.echo(f"  database: {s.database} (see 'nexus sessions')")
    for note in s.notes:
        click.echo(f"  note: {note}")


def _write_reports(summary) -> int:  # type: ignore[no-untyped-def]
    """The facility's night report and one night report per bed of a finished simulation (HTML)."""
    from nexus.core.settings import load_settings
    from nexus.reports.document import write_report
    from nexus.reports.facility import build_facility_report, facility_night
    from nexus.reports.night import build_night_report, night_from_session
    from nexus.store import open_store

    folder = Path(summary.out) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    store = open_store(load_settings())
    try:
        names = [b["session"] for b in summary.beds]
        write_report(build_facility_report(facility_night(store)), folder / "facility.html")
        for name in names:  # events from the stored summary (detecting them again would cost minutes per bed)
            write_report(build_night_report(night_from_session(store, name, detect=False)), folder / f"{name}.html")
    finally:
        store.close()
    return len(names) + 1

