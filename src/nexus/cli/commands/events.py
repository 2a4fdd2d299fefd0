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
    import numpy as np

    from nexus.core.checks import check_writable_path
    from nexus.events.run_all import ALL_KINDS, Channels, detect_all
    from nexus.formats.edf import read_edf
    from nexus.formats.events import format_events, write_events

    to_stdout = output == "-"
    if not to_stdout:
        check_writable_path(output, "events file")
    wanted = kinds or ALL_KINDS
    plan: dict[str, list[int]] = {}
    names: list[str] = []

    def pick(labels: list[str]) -> list[str]:
        # chosen from the header: only the channels the detectors asked for are read (a 10-channel night is 590 MB)
        plan.update(_plan(labels, channels, wanted, recording))
        names.extend(labels)
        return [labels[i] for idx in plan.values() for i in idx]

    rec = read_edf(recording, pick=pick, annotations=False)  # potentials in µV, as the detectors take them
    chosen = {lab for idx in plan.values() for lab in (names[i] for i in idx)}
    row = np.cumsum([lab in chosen for lab in names]) - 1  # file index → row of rec (the chosen ones, file order)
    sig = {role: [rec.signals[row[i]] for i in idx] for role, idx in plan.items()}
    ch = Channels()
    for s in sig["eeg"]:
        ch.eeg[s.label] = (s.data, s.fs)
    if sig["eog"]:
        a, b = sig["eog"]
        ch.loc, ch.roc = (a.label, a.data, a.fs), (b.label, b.data, b.fs)
    for attr in ("emg", "ecg"):
        if sig[attr]:
            s = sig[attr][0]
            setattr(ch, attr, (s.label, s.data, s.fs))
    axes = sig["acc"]
    if axes and len({s.fs for s in axes}) == 1 and len({s.data.size for s in axes}) == 1:
        ch.acc = (np.stack([s.data for s in axes]), axes[0].fs)
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


def _plan(labels: list[str], channels: tuple[str, ...], kinds: tuple[str, ...], recording: str) -> dict[str, list[int]]:
    """Indices (in ``labels``) of the channels to read per role: ``eeg``, ``eog``, ``emg``, ``ecg``, ``acc``, ``time``.

    A role is read only when a requested detector uses it: EEG for spindles, slow oscillations and
    arousals (EMG with the arousals), two EOG channels for rapid eye movements, ECG for heart rate,
    three accelerometer axes for movements. ``time`` is one channel, read only when none of the
    others is, for the recording's length (the hypnogram check needs it).
    """
    from nexus.core.errors import InvalidInputError
    from nexus.core.montage import channel_roles
    from nexus.formats.edf import channel_index

    roles = channel_roles(labels)
    up = [lab.upper() for lab in labels]
    eeg = list(dict.fromkeys(channel_index(labels, c) for c in channels)) if channels else roles["eeg"][:1]
    eog = roles["eog"][:2] if len(roles["eog"]) >= 2 else []
    acc = [next((i for i, lab in enumerate(up) if lab in (f"ACC {ax}", f"ACC_{ax}", f"ACC{ax}")), -1) for ax in "XYZ"]
    acc = acc if min(acc) >= 0 else []
    if not eeg and not roles["ecg"] and not acc and not eog:
        raise InvalidInputError(f"No EEG, EOG, ECG or accelerometer channel in '{recording}' (channels: "
                                f"{', '.join(labels)}). Name one with --channel.")
    used = {
        "eeg": bool({"spindle", "slow_oscillation", "arousal"} & set(kinds)),
        "eog": "rem" in kinds,
        "emg": "arousal" in kinds and bool(eeg),
        "ecg": "heart_rate" in kinds,
        "acc": "movement" in kinds,
    }
    found = {"eeg": eeg, "eog": eog, "emg": roles["emg"][:1], "ecg": roles["ecg"][:1], "acc": acc}
    plan = {role: idx if used[role] else [] for role, idx in found.items()}
    plan["time"] = [] if any(plan.values()) else [next(i for idx in found.values() for i in idx)]
    return plan
