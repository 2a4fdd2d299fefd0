"""``nexus dreamscape``: check, try, render and replay dreamscape programs; print the program schema."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def dreamscape() -> None:
    """Check, dry-run, render and replay dreamscape programs."""


@dreamscape.command()
@click.argument("program", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(program: str, as_json: bool) -> None:
    """Check PROGRAM (YAML or JSON): schema, contradictions, limits; refuse (exit 65) when it fails."""
    from nexus.core.errors import DataFormatError
    from nexus.dreamscape.check import check_file

    report = check_file(program)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())
    if not report.ok:
        raise DataFormatError(f"Program '{program}' refused: {len(report.errors)} error(s), see above.")


@dreamscape.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of dreamscape programs (version 1)."""
    from nexus.dreamscape.schema import json_schema

    text = json.dumps(json_schema(), indent=2)
    if output:
        from nexus.core.checks import check_writable_path

        check_writable_path(output, "schema file").write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)


@dreamscape.command("try")
@click.argument("program", type=click.Path(dir_okay=False))
@click.option("--clients", default=20, show_default=True, type=click.IntRange(1, 10000), help="Synthetic sleepers.")
@click.option("--hours", default=8.0, show_default=True, type=click.FloatRange(0.01, 24), help="Night length.")
@click.option("--seed", default=0, show_default=True, help="Seed of the first sleeper.")
@click.option("--profile", default="typical_adult", show_default=True, help="Synthetic sleeper profile.")
@click.option("--sham", is_flag=True, help="Run without clicks (for with/without comparisons).")
@click.option("--stager", type=click.Choice(["live", "oracle"]), default="live", show_default=True,
              help="Live staging, or the sleepers' true stages.")
@click.option("--decisions", "decisions_out", type=click.Path(dir_okay=False),
              help="Write every decision with its inputs as JSON lines.")
@click.option("--json", "as_json", is_flag=True, help="Print per-client details too, as JSON.")
def try_(program: str, clients: int, hours: float, seed: int, profile: str, sham: bool, stager: str,
         decisions_out: str | None, as_json: bool) -> None:
    """Dry-run PROGRAM on synthetic sleepers in fast-forward, in closed loop, and report what happens."""
    from nexus.dreamscape.check import load_program
    from nexus.dreamscape.dryrun import dry_run

    prog = load_program(program)
    result = dry_run(prog, clients=clients, hours=hours, seed=seed, profile=profile, stimulate=not sham,
                     stager=stager)
    out = result.summary()
    if as_json:
        out["sessions"] = [s.to_dict() for s in result.sessions]
    click.echo(json.dumps(out, indent=2))
    if decisions_out:
        from nexus.core.checks import check_writable_path

        path = check_writable_path(decisions_out, "decisions file")
        with path.open("w", encoding="utf-8") as fh:
            for d in result.decisions:
                fh.write(json.dumps(d.to_dict()) + "\n")


@dreamscape.command()
@click.argument("intake", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Program file to write (YAML).")
def curate(intake: str, output: str) -> None:
    """Build a checked program from a client's INTAKE (YAML: client, goals, consent, sensitivities, ...)."""
    import yaml

    from nexus.core.checks import check_file_exists, check_writable_path
    from nexus.core.errors import DataFormatError
    from nexus.dreamscape.curator import Intake
    from nexus.dreamscape.curator import curate as build

    path = check_file_exists(intake, "intake file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataFormatError(f"Malformed intake file '{intake}': {exc}.") from None
    if not isinstance(data, dict) or "client" not in data:
        raise DataFormatError(f"The intake file '{intake}' must be a mapping with at least 'client'.")
    known = set(Intake.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        from nexus.core.checks import did_you_mean

        raise DataFormatError(f"Unknown intake key '{unknown[0]}'.{did_you_mean(unknown[0], known)} "
                              f"Known: {', '.join(sorted(known))}.")
    if "wake_window" in data and data["wake_window"] is not None:
        data["wake_window"] = tuple(data["wake_window"])
    result = build(Intake(**data))
    check_writable_path(output, "program file").write_text(result.to_yaml(), encoding="utf-8")
    click.echo(f"Wrote {output} for client {data['client']}:")
    for r in result.reasons:
        click.echo(f"  {r.choice}: {r.why}")


@dreamscape.command()
@click.argument("program", type=click.Path(dir_okay=False))
@click.option("--hypno", required=True, type=click.Path(dir_okay=False), help="Hypnogram (any supported format).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output WAV file (48 kHz).")
@click.option("--edf", type=click.Path(dir_okay=False), help="The night's EEG, to place CLAS clicks on its phase.")
@click.option("--channel", help="EEG channel of --edf (default: the first EEG channel).")
@click.option("--start-min", default=0.0, show_default=True, type=click.FloatRange(0), help="Render from here.")
@click.option("--minutes", type=click.FloatRange(0, min_open=True), help="Render this long (default: to the end).")
def render(program: str, hypno: str, output: str, edf: str | None, channel: str | None, start_min: float,
           minutes: float | None) -> None:
    """Render what PROGRAM would play over the night of HYPNO into a WAV file, for offline listening."""
    from nexus.core.checks import check_writable_path
    from nexus.dreamscape.check import load_program
    from nexus.dreamscape.offline import run_hypnogram
    from nexus.dreamscape.renderer import Renderer
    from nexus.formats.hypnogram import read_hypnogram
    from nexus.sinks.wav import WavSink

    prog = load_program(program)
    check_writable_path(output, "WAV file")
    hyp = read_hypnogram(hypno)
    eeg = fs = None
    if edf:
        sig = _eeg_signal(edf, channel)
        eeg, fs = sig.data, sig.fs
    run = run_hypnogram(prog, hyp.stages, epoch_s=hyp.epoch_s, eeg=eeg, fs=fs)
    start = start_min * 60.0
    duration = (run.duration_s - start) if minutes is None else min(minutes * 60.0, run.duration_s - start)
    if duration <= 0:
        from nexus.core.errors import InvalidInputError

        raise InvalidInputError(f"Nothing to render: --start-min {start_min:g} is past the night's end "
                                f"({run.duration_s / 60:g} min).")
    with WavSink(output, ceiling_dbfs=prog.limits.max_level_db) as sink:
        stats = Renderer(prog, base_dir=Path(program).parent).render(run.commands, sink, duration, start_s=start)
    clicks = int(stats.pop("clicks"))
    note = "" if edf else " (no EEG given: CLAS clicks need --edf)"
    click.echo(f"Wrote {output}: {duration / 60:.1f} min at 48 kHz, {clicks} clicks{note}, "
               f"{int(stats.pop('cues'))} cues; " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in stats.items()))


def _eeg_signal(edf: str, channel: str | None):  # type: ignore[no-untyped-def]
    from nexus.core.checks import check_option
    from nexus.formats.edf import read_edf

    rec = read_edf(edf)
    if channel is None:
        eegs = [s.label for s in rec.signals if s.label.upper().startswith("EEG")]
        if not eegs:
            from nexus.core.errors import InvalidInputError

            raise InvalidInputError(f"No EEG channel found in '{edf}'; choose one with --channel "
                                    f"({', '.join(rec.labels)}).")
        channel = eegs[0]
    check_option("channel", channel, rec.labels)
    return rec.channel(channel)


@dreamscape.command("clas-replay")
@click.argument("recording", type=click.Path(dir_okay=False))
@click.option("--channel", help="EEG channel (default: the first EEG channel).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Pulses TSV (onset in s).")
@click.option("--program", type=click.Path(dir_okay=False), help="Take the CLAS settings from this program.")
@click.option("--hypno", type=click.Path(dir_okay=False), help="Use this hypnogram instead of live staging.")
@click.option("--stage", "assume", type=click.Choice(["N3"]), help="Treat the whole recording as N3 (excerpts).")
@click.option("--latency-ms", type=click.FloatRange(0, 250), help="Sample-to-sound latency (default: program's).")
def clas_replay(recording: str, channel: str | None, output: str, program: str | None, hypno: str | None,
                assume: str | None, latency_ms: float | None) -> None:
    """Replay RECORDING as if live: stage it and run the CLAS controller causally; write the pulses it plays."""
    import numpy as np
    import pandas as pd

    from nexus.core.checks import check_writable_path
    from nexus.dreamscape.check import load_program
    from nexus.dreamscape.offline import clas_replay as replay
    from nexus.dreamscape.offline import stages_to_probs
    from nexus.formats.events import write_events

    check_writable_path(output, "pulses file")
    sig = _eeg_signal(recording, channel)
    if hypno:
        from nexus.formats.hypnogram import read_hypnogram

        probs = stages_to_probs(read_hypnogram(hypno).stages)
        staging = f"hypnogram {hypno}"
    elif assume:
        n3 = np.eye(5)[3]
        probs = lambda chunk, t: n3  # noqa: E731 - known from the first sample, unlike a hypnogram
        staging = "assumed N3"
    else:
        probs, staging = _live_probs(recording, sig)
    prog = load_program(program) if program else None
    res = replay(sig.data, sig.fs, probs, program=prog, latency_s=None if latency_ms is None else latency_ms / 1e3)
    n = res.onsets.size
    df = pd.DataFrame({"onset": np.round(res.onsets, 4), "duration": 0.05, "description": "clas_click",
                       "channel": sig.label, "phase_pred_deg": res.phase_pred_deg, "envelope_uv": res.envelope_uv})
    write_events(output, df)
    click.echo(f"Wrote {output}: {n} pulses over {sig.data.size / sig.fs / 60:.1f} min of {sig.label} "
               f"(staging: {staging}).")


def _live_probs(recording: str, sig):  # type: ignore[no-untyped-def]
    """A live stager fed chunk by chunk with the EEG (and the EOG and EMG when the recording has them)."""
    import numpy as np

    from nexus.core.errors import InvalidInputError
    from nexus.formats.edf import read_edf

    try:
        from nexus.staging.live import LiveStager
    except ImportError:
        raise InvalidInputError(
            "Live staging (nexus.staging.live) is not available in this installation; give --hypno H or --stage N3."
        ) from None

    rec = read_edf(recording)
    rows, kinds = [sig.data], ["eeg"]
    for kind in ("EOG", "EMG"):
        other = next((s for s in rec.signals if kind in s.label.upper() and s.fs == sig.fs), None)
        if other is not None:
            rows.append(other.data)
            kinds.append(kind.lower())
    data = np.stack(rows)
    stager = LiveStager(1, sig.fs, tuple(kinds), night_hours=max(sig.data.size / sig.fs / 3600.0, 0.1))
    pos = {"i": 0}

    def probs(chunk, t):  # type: ignore[no-untyped-def]
        i = pos["i"]
        stager.push(data[None, :, i : i + chunk.size])
        pos["i"] = i + chunk.size
        return stager.update().probabilities[0]

    return probs, f"live ({'+'.join(kinds)})"
