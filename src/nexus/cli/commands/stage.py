"""``nexus stage night.edf [--live] [--eeg CH --eog CH --emg CH] [-o hypno.tsv]``."""

from __future__ import annotations

import click


@click.command()
@click.argument("recording", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True),
              help="Hypnogram file; its extension picks the format: .tsv, .csv, .edf (EDF+ annotations), .xml (NSRR), "
                   ".txt (YASA ints). '-' or no -o: TSV on standard output (--format picks another; EDF+ only into "
                   "a pipe or a file).")
@click.option("--live", is_flag=True, help="Causal staging: each epoch sees only data up to its end.")
@click.option("--eeg", help="EEG channel (default: C4-M1, C3-M2, … or the first EEG).")
@click.option("--eog", help="EOG channel (default: E1-M2, LOC, … if present).")
@click.option("--emg", help="EMG channel (default: chin EMG if present).")
@click.option("--no-eog", is_flag=True, help="Do not use an EOG channel.")
@click.option("--no-emg", is_flag=True, help="Do not use an EMG channel.")
@click.option("--age", type=float, help="Age in years (with --sex: the classifier with demographics).")
@click.option("--sex", type=click.Choice(["male", "female"]), help="Sex (with --age).")
@click.option("--format", "fmt", default=None,
              help="Hypnogram format when the extension allows several or none: tsv, csv, yasa-int, yasa-str, edf, "
                   "sleep-edf-csv, nsrr-xml.")
def stage(
    recording: str,
    output: str | None,
    live: bool,
    eeg: str | None,
    eog: str | None,
    emg: str | None,
    no_eog: bool,
    no_emg: bool,
    age: float | None,
    sex: str | None,
    fmt: str | None,
) -> None:
    """Stage sleep in RECORDING (EDF/EDF+/BDF) with YASA's classifiers; write the hypnogram and hypnodensity.

    The TSV (and CSV) has the columns onset, duration, stage, p_W, p_N1, p_N2, p_N3, p_R; artefact epochs
    (NaN or flat signal) are written as ART. Without -o (or with -o -) the TSV goes to standard output and
    the summary to standard error.
    """
    from nexus.core.checks import plural
    from nexus.core.log import logger
    from nexus.formats.edf import read_edf
    from nexus.formats.hypnogram import format_for_path, format_hypnogram, write_hypnogram
    from nexus.staging.offline import MIN_FS, pick_channels

    to_stdout = output in (None, "-")
    fmt = format_for_path(output or "-", fmt)  # before staging: a wrong extension costs nothing
    if to_stdout and fmt == "edf":
        from nexus.core.stdout import check_binary_stdout

        check_binary_stdout("EDF+ hypnogram", "hypno.edf")
    if not to_stdout:
        from nexus.core.checks import check_writable_path

        check_writable_path(str(output), "hypnogram")
    chosen: dict[str, str] = {}

    def pick(labels: list[str]) -> list[str]:
        # only the channels staging uses are read, without the annotations (a 10-channel night is 590 MB)
        chosen.update(pick_channels(labels, eeg=eeg, eog=eog, emg=emg))
        return list(chosen.values())

    rec = read_edf(recording, pick=pick, annotations=False)
    given = {"eeg": eeg, "eog": eog, "emg": emg}
    for kind, off in (("eog", no_eog), ("emg", no_emg)):
        if off:
            chosen.pop(kind, None)
        elif kind in chosen and given[kind] is None and rec.channel(chosen[kind]).fs <= MIN_FS:
            logger.warning("Not using %s '%s': %g Hz is below the %g Hz the classifiers need.",
                           kind.upper(), chosen[kind], rec.channel(chosen[kind]).fs, MIN_FS)
            chosen.pop(kind)
    signals = {k: rec.channel(label).data for k, label in chosen.items()}
    fs = {k: rec.channel(label).fs for k, label in chosen.items()}
    if (age is None) != (sex is None):
        from nexus.core.errors import InvalidInputError

        raise InvalidInputError("Give both --age and --sex to use demographics, or neither.")
    male = None if sex is None else sex == "male"
    if live:
        from nexus.staging.live import stage_causal

        result = stage_causal(signals, fs)
    else:
        from nexus.staging.offline import stage_offline

        result = stage_offline(signals, fs, age=age, male=male)
    if to_stdout:  # as bytes: EDF+ is binary, and the text formats are written as they are in a file
        from nexus.core.stdout import write_stdout_bytes

        write_stdout_bytes(format_hypnogram(result.stages, result.epoch_s, result.probabilities, fmt=fmt))
    else:
        write_hypnogram(str(output), result.stages, result.epoch_s, result.probabilities, fmt=fmt)
    used = ", ".join(f"{k.upper()}={v}" for k, v in chosen.items())
    mins = result.summary()
    mode = "live" if live else "offline"
    click.echo(f"{plural(len(result), 'epoch')} staged ({mode}, {result.model}; {used})", err=to_stdout)
    click.echo("  ".join(f"{k} {v:.1f} min" for k, v in mins.items()), err=to_stdout)
    if not to_stdout:
        click.echo(f"Wrote {output} ({fmt})")
