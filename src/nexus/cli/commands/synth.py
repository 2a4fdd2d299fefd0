"""``nexus synth``: one synthetic night with its ground truth (EDF+, hypnogram TSV, events TSV)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click


@click.command()
@click.option("--hours", type=float, default=8.0, show_default=True, help="Length of the night in hours.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Same seed, same night.")
@click.option("--profile", default="typical_adult", show_default=True,
              help="Preset client profile: typical_adult, older_adult, insomniac, nightmare_prone, teen.")
@click.option("--faults", default="",
              help="Comma-separated fault kinds to inject, or 'all': electrode_off, electrode_pop, clipping, "
                   "line_noise, dropped_samples, clock_jitter.")
@click.option("--distress", type=int, default=None, help="Exact number of distress episodes.")
@click.option("--fs", type=float, default=256.0, show_default=True, help="Sampling rate in Hz (>= 100).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="EDF+ file to write ('-': standard output, into a pipe or a file, not a terminal).")
@click.option("--truth", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="TSV of the true hypnogram ('-': standard output).")
@click.option("--events", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="TSV of the true events ('-': standard output).")
def synth(
    hours: float,
    seed: int,
    profile: str,
    faults: str,
    distress: int | None,
    fs: float,
    output: str,
    truth: str | None,
    events: str | None,
) -> None:
    """Write one synthetic night as EDF+ (true stages and events as annotations).

    One of the EDF+ (-o), the truth and the events TSV may go to standard output with '-' (the EDF+ only into
    a pipe or a file), and the summary then goes to standard error.
    """
    from nexus.core.checks import check_number, check_writable_path, plural
    from nexus.core.errors import InvalidInputError
    from nexus.core.log import logger
    from nexus.core.stdout import check_binary_stdout, stdout_file
    from nexus.formats.edf import write_edf
    from nexus.formats.events import format_events, write_events
    from nexus.formats.hypnogram import format_hypnogram, write_hypnogram
    from nexus.sources.synthetic import CHANNELS, FAULT_KINDS, get_profile, schedule_faults, synthesize_night

    # validate everything before generating, so that a bad input leaves nothing behind
    prof = get_profile(profile)
    check_number("hours", hours, gt=0, le=24, unit="h")
    check_number("fs", fs, ge=100, le=4096, unit="Hz")
    if abs(hours * 3600.0 - round(hours * 3600.0)) > 1e-6:
        raise InvalidInputError(f"Invalid value for 'hours': {hours:g} h is {hours * 3600.0:g} s, not a whole "
                                "number of seconds (EDF data records are 1 s long); e.g. --hours "
                                f"{round(hours * 3600.0) / 3600.0:g}.")
    if distress is not None:
        check_number("distress", distress, ge=0, le=20)
    dashes = [name for name, value in (("-o", output), ("--truth", truth), ("--events", events)) if value == "-"]
    if len(dashes) > 1:
        others = "the other a file name" if len(dashes) == 2 else "the others file names"
        raise InvalidInputError(f"Only one of {', '.join(dashes[:-1])} and {dashes[-1]} can go to standard output "
                                f"('-'); give {others}.")
    edf_stdout, truth_stdout, events_stdout = output == "-", truth == "-", events == "-"
    if edf_stdout:
        check_binary_stdout("EDF file", "night.edf")
    out = None if edf_stdout else check_writable_path(output, "EDF file")
    tsv = check_writable_path(truth, "truth file") if truth and not truth_stdout else None
    ev_tsv = check_writable_path(events, "events file") if events and not events_stdout else None
    paths = [p.resolve() for p in (out, tsv, ev_tsv) if p is not None]
    if len(set(paths)) < len(paths):
        raise InvalidInputError("The EDF, truth and events outputs must be different files; give distinct paths.")
    kinds = [k.strip() for k in faults.split(",") if k.strip()]
    if kinds == ["all"]:
        kinds = list(FAULT_KINDS)
    fault_list = schedule_faults(kinds, hours, CHANNELS, seed)
    night = synthesize_night(prof, hours, seed, fs=fs, faults=fault_list, distress=distress)
    rec = night.to_recording()
    with contextlib.ExitStack() as stack:
        # to standard output: written into a temporary file, sent once the TSV files are written too
        target = stack.enter_context(stdout_file(".edf")) if out is None else out
        write_edf(target, rec.signals, rec.annotations, patient_code=prof.name)
        written = [] if out is None else [out]
        try:
            if tsv is not None:
                written.append(write_hypnogram(tsv, night.stages))
            if ev_tsv is not None:
                written.append(write_events(ev_tsv, night.truth.events_frame()))
        except BaseException:
            for p in written:  # all or nothing
                Path(p).unlink(missing_ok=True)
            raise
    if truth_stdout:
        click.echo(format_hypnogram(night.stages).decode(), nl=False)
    if events_stdout:
        click.echo(format_events(night.truth.events_frame()), nl=False)
    logger.info("synthetic night written to %s", out or "standard output")
    t = night.truth
    where = out or "EDF+ on standard output"
    click.echo(
        f"{where}: {hours:g} h, {plural(len(night.channels), 'channel')} at {fs:g} Hz, profile {prof.name}, "
        f"seed {seed}; {plural(t.n_epochs, 'epoch')}, {plural(len(t.events), 'event')}, "
        f"{plural(len(t.distress), 'distress episode')}, {plural(len(t.faults), 'fault')}"
        + (f"; hypnogram {'standard output' if truth_stdout else tsv}" if truth else "")
        + (f"; events {'standard output' if events_stdout else ev_tsv}" if events else ""),
        err=edf_stdout or truth_stdout or events_stdout,
    )
