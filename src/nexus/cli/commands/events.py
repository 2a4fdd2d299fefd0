"""``nexus events``: detect sleep events in a recording and write them as TSV."""

from __future__ import annotations

import click


@click.command()
@click.argument("recording", type=click.Path(dir_okay=False))
@click.option("--channel", "channels", multiple=True, metavar="CH",
              help="EEG channel(s) for spindles, slow oscillations and arousals (default: the first EEG channel).")
@click.option("--hypno", type=click.Path(dir_okay=False), default=None,
              help="Hypnogram (any format 'nexus stats' reads) to restrict detection to the right stages.")
@click.option("--only", "kinds", multiple=True,
              type=click.Choice(["spindle", "slow_oscillation", "rem", "arousal", "heart_rate", "movement"]),
              help="Run only these detectors (repeatable; default all).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Output events TSV ('-': standard output, the summary then goes to standard error).")
def events(recording: str, channels: tuple[str, ...], hypno: str | None, kinds: tuple[str, ...], output: str) -> None:
    """Detect slow oscillations, spindles, rapid eye movements, arousals, heart rate and movements.

    Reads an EDF/EDF+/BDF recording, picks channels by name (EEG, EOG, EMG, ECG, Acc X/Y/Z) and
    writes one TSV: onset, duration, description, channel, plus detector-specific columns.
    """
    from nexus.core.checks import check_writable_path
    from nexus.core.errors import InvalidInputError
    from nexus.core.montage import channel_roles
    from nexus.events.run_all import ALL_KINDS, Channels, detect_all
    from nexus.formats.edf import read_edf
    from nexus.formats.events import format_events, write_events

    to_stdout = output == "-"
    if not to_stdout:
        check_writable_path(output, "events file")
    rec = read_edf(recording)  # potentials in µV, as the detectors take them
    labels = rec.labels
    up = [lab.upper() for lab in labels]
    roles = channel_roles(labels)

    ch = Channels()
    eeg_idx = [rec.index(c) for c in channels] if channels else roles["eeg"][:1]
    for i in eeg_idx:
        s = rec.signals[i]
        ch.eeg[s.label] = (s.data, s.fs)
    eog = roles["eog"]
    if len(eog) >= 2:
        a, b = rec.signals[eog[0]], rec.signals[eog[1]]
        ch.loc, ch.roc = (a.label, a.data, a.fs), (b.label, b.data, b.fs)
    for attr in ("emg", "ecg"):
        idx = roles[attr]
        if idx:
            s = rec.signals[idx[0]]
            setattr(ch, attr, (s.label, s.data, s.fs))
    acc = [next((i for i, lab in enumerate(up) if lab in (f"ACC {ax}", f"ACC_{ax}", f"ACC{ax}")), -1) for ax in "XYZ"]
    if min(acc) >= 0:
        axes = [rec.signals[i] for i in acc]
        if len({s.fs for s in axes}) == 1 and len({s.data.size for s in axes}) == 1:
            import numpy as np

            ch.acc = (np.stack([s.data for s in axes]), axes[0].fs)
    if not ch.eeg and not ch.ecg and ch.acc is None and ch.loc is None:
        raise InvalidInputError(f"No EEG, EOG, ECG or accelerometer channel in '{recording}' (channels: "
                                f"{', '.join(labels)}). Name one with --channel.")
    stages = None
    if hypno is not None:
        from nexus.formats.coverage import check_coverage
        from nexus.formats.hypnogram import read_hypnogram

        hyp = read_hypnogram(hypno)
        warning = check_coverage(hyp, rec.duration, hypno, recording)
        if warning:
            click.echo(f"warning: {warning}", err=True)
        stages = hyp.stages
    df, notes = detect_all(ch, stages, kinds or ALL_KINDS)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if to_stdout:
        click.echo(format_events(df), nl=False)
    else:
        write_events(output, df)
    counts = df["description"].value_counts().to_dict() if len(df) else {}
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no events"
    click.echo(f"{summary} → {'standard output' if to_stdout else output}", err=to_stdout)
