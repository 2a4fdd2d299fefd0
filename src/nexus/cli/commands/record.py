"""``nexus record``: a record-only facility (natural nights) from LSL, BrainFlow, EDF replays or synthetic beds."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--source", "source", default="synthetic", show_default=True, metavar="SPEC",
              help="Where beds come from: synthetic[:N], lsl[:type=EEG][:name=PREFIX][:channels=N], "
                   "brainflow:BOARD[:serial=PORT] or replay:DIR[:speed=X].")
@click.option("--seconds", type=click.FloatRange(min=0.1, max=7 * 24 * 3600), required=True,
              help="How long to record, in seconds (of the replay's own time for replay:DIR:speed=X).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: one EDF+ per bed, its events and clock offsets, record.json, the journal.")
@click.option("--beds", "beds_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML map of stream name or source id to client code ('bed-01: C-0001'); streams it does "
                   "not name record as unassigned beds.")
@click.option("--analyze/--no-analyze", default=True, show_default=True,
              help="Stage sleep, detect events and watch for glitches while recording (off: raw signals only).")
@click.option("--dropout", "dropout_s", type=click.FloatRange(min=0.2, max=600), default=2.0, show_default=True,
              help="Seconds without samples before a bed raises a dropout glitch.")
@click.option("--no-db", is_flag=True, help="Write files only (no client and session rows in the facility database).")
def record(source: str, seconds: float, out: Path, beds_file: Path | None, analyze: bool, dropout_s: float,
           no_db: bool) -> None:
    """Record natural nights from real beds through the facility's live loop; one EDF+ per bed.

    Every matching LSL stream becomes a bed, also streams that appear later; a stream that vanishes
    raises a dropout glitch and its bed resumes when it returns (the gap is marked in the EDF+).
    Channels are named from the stream's metadata and converted to µV; a stream that cannot be a
    bed (unknown unit, no EEG channel, below 100 Hz, wrong channel count) is refused in one line and
    the others record on.
    """
    import signal

    from nexus.facility.floor import BedMap
    from nexus.facility.record import record as run_record
    from nexus.sources.spec import parse_source

    spec = parse_source(source)

    def _stop(signum: int, frame: object) -> None:  # SIGTERM as Ctrl-C: stop early, keep everything
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    bed_map = BedMap.load(beds_file) if beds_file is not None else None
    store = None
    if not no_db:
        from nexus.facility.records import open_db

        store = open_db()
    try:
        click.echo(f"Recording {source} for {seconds:g} s into {out} (Ctrl-C stops early and keeps everything).")
        result = run_record(spec, seconds, out, store=store, bed_map=bed_map, analyze=analyze, dropout_s=dropout_s,
                            on_line=click.echo)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if store is not None:
            store.close()
    for b in result.beds:
        c = b.counts
        clock = b.clock
        extra = ""
        if clock.get("offsets"):
            drift = clock.get("offset_drift_ppm")
            extra = f", clock offset {1e3 * clock['offset_s']:+.2f} ms" + (
                f" drift {drift:+.1f} ppm" if drift is not None else "")
            if clock.get("jumps"):
                extra += f", {clock['jumps']} clock jump(s)"
        glitches = ", ".join(f"{k} {v}" for k, v in sorted(b.glitches.items()))
        click.echo(f"  {b.session}: {c.get('received', 0)} samples, {c.get('missing', 0)} missing{extra}"
                   + (f"; glitches: {glitches}" if glitches else "") + (f" -> {b.edf}" if b.edf else " (no samples)"))
    click.echo(f"Recorded {len(result.beds)} bed(s); {len(result.refused)} refused. Summary: {out / 'record.json'}")
