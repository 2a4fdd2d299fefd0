"""``nexus glitches``: the glitch monitor run over a recording, through the same code as live."""

from __future__ import annotations

import click


@click.command()
@click.argument("recording", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the glitches as a JSON list instead of a summary.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    help="Write the glitches as TSV (onset duration kind category priority channel evidence); '-': standard "
    "output, the summary then goes to standard error.",
)
@click.option(
    "--block",
    "block_s",
    type=float,
    default=1.0,
    show_default=True,
    help="Block length in s fed to the monitor (the live facility uses 0.1 s).",
)
def glitches(recording: str, as_json: bool, output: str | None, block_s: float) -> None:
    """Find technical faults and psyche episodes in RECORDING (EDF/EDF+/BDF).

    Channels are grouped by sampling rate and each group streams block by block through the live
    glitch monitor; only the signals are read, never the file's annotations. Onsets and durations
    are in seconds from the start of the recording; evidence is JSON.
    """
    import json

    from nexus.core.checks import check_number, check_writable_path
    from nexus.formats.edf import read_edf
    from nexus.monitor.offline import glitch_frame, glitch_rows, scan_recording

    check_number("block", block_s, gt=0, le=60, unit="s")
    to_stdout = output == "-"
    if to_stdout and as_json:
        from nexus.core.errors import InvalidInputError

        raise InvalidInputError("--json and -o - would both write to standard output; give -o a file name.")
    if output is not None and not to_stdout:
        check_writable_path(output, "glitches file")
    rec = read_edf(recording)
    found, notes = scan_recording(rec, block_s=block_s)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if to_stdout:
        click.echo(glitch_frame(found).to_csv(sep="\t", index=False, float_format="%.3f"), nl=False)
    elif output is not None:
        from nexus.core.files import atomic_path

        with atomic_path(output) as tmp:
            glitch_frame(found).to_csv(tmp, sep="\t", index=False, float_format="%.3f")
    if as_json:
        click.echo(json.dumps(glitch_rows(found), indent=1))
        return
    counts: dict[str, int] = {}
    for g in found:
        counts[g.kind] = counts.get(g.kind, 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no glitches"
    click.echo(
        f"{summary} in {rec.duration:.0f} s of {len(rec.signals)} channels"
        + (f"; written to {output}" if output and not to_stdout else ""),
        err=to_stdout,
    )
