"""``nexus dreamscape``: check, try, render and replay dreamscape programs; print the program schema."""

from __future__ import annotations

import contextlib
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
    """Check PROGRAM (YAML or JSON): schema, contradictions, limits, anti-exploitation; refuse (exit 65) if it fails."""
    from nexus.core.errors import DataFormatError
    from nexus.guard.exploitation import check_program_file as check_file  # checks and the policy

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
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of the first sleeper.")
@click.option("--profile", default="typical_adult", show_default=True,
              help="Synthetic sleeper profile: typical_adult, older_adult, insomniac, nightmare_prone, teen.")
@click.option("--sham", is_flag=True, help="Run without clicks (for with/without comparisons).")
@click.option("--stager", type=click.Choice(["live", "oracle"]), default="live", show_default=True,
              help="Live staging, or the sleepers' true stages.")
@click.option("--decisions", "decisions_out", type=click.Path(dir_okay=False),
              help="Write every decision with its inputs as JSON lines.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary and per-client details as JSON.")
def try_(program: str, clients: int, hours: float, seed: int, profile: str, sham: bool, stager: str,
         decisions_out: str | None, as_json: bool) -> None:
    """Dry-run PROGRAM on synthetic sleepers through the facility loop in fast-forward, and report what happens."""
    from nexus.core.checks import check_writable_path
    from nexus.facility.dryrun import dry_run
    from nexus.guard.exploitation import load_checked_program as load_program  # checks and the policy
    from nexus.sources.synthetic import get_profile

    prog = load_program(program)
    get_profile(profile)
    path = check_writable_path(decisions_out, "decisions file") if decisions_out else None  # before the run
    result = dry_run(prog, clients=clients, hours=hours, seed=seed, profile=profile, stimulate=not sham,
                     stager=stager)
    out = result.summary()
    if path is not None:
        with path.open("w", encoding="utf-8") as fh:
            for d in result.decisions:
                fh.write(json.dumps(d) + "\n")
    if as_json:
        out["sessions"] = [s.to_dict() for s in result.sessions]
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"{out['program']}: {out['clients']} synthetic sleeper{'s' if out['clients'] != 1 else ''} x "
               f"{out['hours']:g} h (stages: {out['stager']})")
    click.echo(f"  clicks {out['clicks']}, cues {out['cues']}, distress responses {out['distress_responses']}, "
               f"quiet on arousal {out['quiet_on_arousal']}")
    click.echo(f"  smart wakes {out['smart_wakes']}"
               + (f" ({100 * out['smart_wake_light_in_window']:.0f}% in light sleep inside the window)"
                  if out["smart_wake_light_in_window"] is not None else ""))
    click.echo(f"  model-dependent (the synthetic sleeper's response): arousals caused {out['arousals_caused']}, "
               f"awakenings {out['awakenings_caused']}, clicks that enlarged slow waves "
               f"{out['clicks_enhancing_slow_waves']}")
    scenes = ", ".join(f"{k} {v:g}" for k, v in out["minutes_per_scene_per_client"].items())
    click.echo(f"  minutes per scene per client: {scenes}")


@dreamscape.command()
@click.argument("intake", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Program file to write (YAML).")
def curate(intake: str, output: str) -> None:
    """Build a checked program from a client's INTAKE (YAML: client, goals, consent, sensitivities, ...).

    Example: examples/intakes/deeper-sleep.yaml (every key, with the allowed values). Consent scopes: audio,
    stimulation, dream_incubation, memory_cues, smart_wake; 'audio' is needed for anything to be played, so
    'stimulation' (CLAS clicks) and prompts come only with 'audio'.
    """
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
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Output WAV file (48 kHz; '-': standard output, into a pipe or a file, not a terminal).")
@click.option("--edf", type=click.Path(dir_okay=False), help="The night's EEG, to place CLAS clicks on its phase.")
@click.option("--channel", help="EEG channel of --edf (default: the first EEG channel).")
@click.option("--start-min", default=0.0, show_default=True, type=click.FloatRange(0), help="Render from here.")
@click.option("--minutes", type=click.FloatRange(0, min_open=True), help="Render this long (default: to the end).")
def render(program: str, hypno: str, output: str, edf: str | None, channel: str | None, start_min: float,
           minutes: float | None) -> None:
    """Render what PROGRAM would play over the night of HYPNO into a WAV file, for offline listening."""
    from nexus.core.checks import check_writable_path
    from nexus.core.stdout import stdout_file
    from nexus.dreamscape.renderer import Renderer
    from nexus.facility.replay import hypnogram_night
    from nexus.formats.hypnogram import read_hypnogram
    from nexus.guard.exploitation import load_checked_program as load_program  # checks and the policy
    from nexus.sinks.wav import WavSink

    prog = load_program(program)
    to_stdout = output == "-"
    if to_stdout:
        from nexus.core.stdout import check_binary_stdout

        check_binary_stdout("WAV file", "night.wav")
    else:
        check_writable_path(output, "WAV file")
    hyp = read_hypnogram(hypno)
    eeg = fs = None
    if edf:
        sig = _eeg_signal(edf, channel)
        eeg, fs = sig.data, sig.fs
    commands, night_s = hypnogram_night(prog, hyp.stages, epoch_s=hyp.epoch_s, eeg=eeg, fs=fs)
    start = start_min * 60.0
    duration = (night_s - start) if minutes is None else min(minutes * 60.0, night_s - start)
    if duration <= 0:
        from nexus.core.errors import InvalidInputError

        raise InvalidInputError(f"Nothing to render: --start-min {start_min:g} is past the night's end "
                                f"({night_s / 60:g} min).")
    with contextlib.ExitStack() as stack:
        # to standard output: the WAV (its header completed at the end) goes out once rendered
        target = stack.enter_context(stdout_file(".wav")) if to_stdout else Path(output)
        with WavSink(target, ceiling_dbfs=prog.limits.max_level_db) as sink:
            stats = Renderer(prog, base_dir=Path(program).parent).render(commands, sink, duration, start_s=start)
    clicks = int(stats.pop("clicks"))
    note = "" if edf else " (no EEG given: CLAS clicks need --edf)"
    click.echo(f"Wrote {'standard output' if to_stdout else output}: {duration / 60:.1f} min at 48 kHz, {clicks} "
               f"clicks{note}, {int(stats.pop('cues'))} cues; "
               + ", ".join(f"{k} {v / 60:.1f} min" for k, v in stats.items()), err=to_stdout)


def _eeg_signal(edf: str, channel: str | None):  # type: ignore[no-untyped-def]
    from nexus.core.checks import check_option
    from nexus.formats.edf import read_edf

    rec = read_edf(edf)
    if channel is None:
        from nexus.core.montage import channel_role

        eegs = [s.label for s in rec.signals if channel_role(s.label) == "eeg"]
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
    """Replay RECORDING through the facility loop as if live (0.1-s steps); write the pulses CLAS plays."""
    import numpy as np
    import pandas as pd

    from nexus.core.checks import check_writable_path
    from nexus.facility.replay import clas_replay as replay
    from nexus.formats.events import write_events
    from nexus.guard.exploitation import load_checked_program as load_program  # checks and the policy

    check_writable_path(output, "pulses file")
    sig = _eeg_signal(recording, channel)
    hypnogram, others = None, None
    if hypno:
        from nexus.formats.coverage import check_coverage
        from nexus.formats.hypnogram import read_hypnogram

        hyp = read_hypnogram(hypno)
        warning = check_coverage(hyp, sig.data.size / sig.fs, hypno, recording)
        if warning:
            click.echo(f"warning: {warning}", err=True)
        hypnogram = hyp.stages
        stages, staging = "hypnogram", f"hypnogram {hypno}"
    elif assume:
        stages, staging = "n3", "assumed N3"
    else:
        others = _staging_channels(recording, sig)
        stages = "live"
        staging = "live (" + "+".join(["EEG", *(k.split()[0] for k in others)]) + ")"
    prog = load_program(program) if program else None
    res = replay(sig.data, sig.fs, stages=stages, hypnogram=hypnogram, others=others, program=prog,
                 sound_latency_s=0.05 if latency_ms is None else latency_ms / 1e3)
    n = res.onsets.size
    df = pd.DataFrame({"onset": np.round(res.onsets, 4), "duration": 0.05, "description": "clas_click",
                       "channel": sig.label, "phase_pred_deg": res.phase_pred_deg, "envelope_uv": res.envelope_uv})
    write_events(output, df)
    click.echo(f"Wrote {output}: {n} pulse{'s' if n != 1 else ''} over {sig.data.size / sig.fs / 60:.1f} min of "
               f"{sig.label} (staging: {staging}).")


def _staging_channels(recording: str, sig):  # type: ignore[no-untyped-def]
    """The recording's EOG and EMG at the EEG's rate, named by role, for the live stager."""
    from nexus.core.montage import channel_role
    from nexus.formats.edf import read_edf

    rec = read_edf(recording)
    out = {}
    for kind in ("EOG", "EMG"):
        other = next((s for s in rec.signals if channel_role(s.label) == kind.lower() and s.fs == sig.fs
                      and s.data.size == sig.data.size), None)
        if other is not None:
            out[f"{kind} {other.label}"] = other.data
    return out
