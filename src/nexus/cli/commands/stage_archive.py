"""``nexus stage-archive DIR --out DIR [--address ADDR] [--workers N] [--live]``."""

from __future__ import annotations

import click


@click.command("stage-archive")
@click.argument("archive", type=click.Path(file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder (created).")
@click.option("--address", help="Ray cluster to run on (HOST:6379 or ray://HOST:10001); default: a local Ray.")
@click.option("--workers", type=int, help="Nights staged at once, one CPU each (default: all CPUs).")
@click.option("--live", is_flag=True, help="Causal staging: each epoch sees only data up to its end.")
@click.option("--eeg", help="EEG channel for every night (default: chosen per night as 'nexus stage' does).")
@click.option("--eog", help="EOG channel for every night.")
@click.option("--emg", help="EMG channel for every night.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def stage_archive(
    archive: str,
    out: str,
    address: str | None,
    workers: int | None,
    live: bool,
    eeg: str | None,
    eog: str | None,
    emg: str | None,
    no_progress: bool,
) -> None:
    """Stage every EDF/BDF under ARCHIVE as Ray tasks; one hypnogram per night and one statistics table.

    OUT gets hypnograms/*.tsv, stats.csv and stats.parquet (AASM statistics, one row per night),
    manifest.jsonl (finished nights by SHA-256: a second run skips them) and errors.csv (recordings
    that could not be staged; the others still are). Exits 1 when any recording failed.
    """
    from nexus.core.errors import NexusError
    from nexus.facility.archive import ERRORS, STATS_CSV
    from nexus.facility.archive import stage_archive as run

    s = run(
        archive,
        out,
        address=address,
        workers=workers,
        live=live,
        eeg=eeg,
        eog=eog,
        emg=emg,
        progress=False if no_progress else None,
    )
    rate = f", {s.staged / s.seconds * 60:.1f} nights/min" if s.staged and s.seconds > 0 else ""
    click.echo(
        f"{s.found} recordings: {s.staged} staged, {s.skipped} skipped (done before), {len(s.failed)} failed "
        f"in {s.seconds:.1f} s{rate}"
    )
    click.echo(f"{s.nights} nights in {out}/{STATS_CSV} (and .parquet)")
    if s.failed:
        for rec, why in s.failed[:5]:
            click.echo(f"  failed: {rec}: {why}", err=True)
        more = f" ({len(s.failed) - 5} more)" if len(s.failed) > 5 else ""
        raise NexusError(
            f"{len(s.failed)} of {s.found} recordings could not be staged{more}; see {out}/{ERRORS}, "
            "fix or remove them and run again (finished nights are skipped)."
        )
