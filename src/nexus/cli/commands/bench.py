"""``nexus bench ...``: benchmarks that print one JSON object of figures.

``bench`` is a click group so that other benchmarks (``clas``, ``extraction``) join it as
subcommands: add a function decorated with ``@bench.command()`` in this module.
"""

from __future__ import annotations

import json

import click


@click.group()
def bench() -> None:
    """Benchmarks of the running facility (figures as JSON)."""


@bench.command()
@click.option("--sessions", type=int, default=100, show_default=True, help="Number of beds.")
@click.option("--seconds", type=float, default=10.0, show_default=True, help="Wall-clock length of the run.")
@click.option("--fs", type=float, default=256.0, show_default=True, help="Sampling rate in Hz.")
@click.option("--channels", type=click.IntRange(1, 8), default=8, show_default=True, help="Channels per bed.")
@click.option("--tick-ms", type=float, default=100.0, show_default=True, help="Chunk length in ms.")
@click.option("--events/--no-events", default=True, show_default=True, help="Run the event detectors.")
@click.option("--record/--no-record", default=True, show_default=True, help="Record to a temporary journal.")
@click.option("--live-synth", is_flag=True, help="Generate the synthetic signals inside the ticks.")
@click.option(
    "--start-h",
    type=float,
    default=0.0,
    show_default=True,
    help="Cut the looped signals this many hours into the night (0: beds awake at lights-out; 1+: mostly asleep).",
)
@click.option("--closed-loop/--no-closed-loop", default=True, show_default=True,
              help="Run every bed's dreamscape (controller, sink, lease).")
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON object.")
def live(sessions: int, seconds: float, fs: float, channels: int, tick_ms: float, events: bool, record: bool,
         live_synth: bool, start_h: float, closed_loop: bool, as_json: bool) -> None:
    """Run N synthetic beds in real time through the live engine and report latency and CPU."""
    from nexus.core.checks import plural
    from nexus.facility.benchmark import bench_live
    from nexus.facility.simulate import SIM_CHANNELS

    res = bench_live(sessions, seconds, fs=fs, channels=SIM_CHANNELS[:channels], tick_s=tick_ms / 1000.0,
                     events=events, record=record, live_synth=live_synth, start_h=start_h, closed_loop=closed_loop)
    if not as_json:
        click.echo(
            f"{plural(res['sessions'], 'bed')} x {res['channels']} ch x {res['fs']:g} Hz for {res['seconds']:g} s: "
            f"p50 {res['latency_ms_p50']} ms, p99 {res['latency_ms_p99']} ms, CPU {res['cpu_percent']}%, "
            f"dropped {res['samples_dropped']}, {'real time' if res['realtime'] else 'NOT real time'}"
            + (f"; closed loop: {res['clicks']} clicks, click latency p99 {res['click_latency_ms_p99']} ms"
               if res["closed_loop"] else ""),
            err=True,
        )
    click.echo(json.dumps(res))


@bench.command()
@click.option("--nights", type=int, default=3, show_default=True, help="Synthetic nights for phase accuracy.")
@click.option("--clients", type=int, default=10, show_default=True, help="Sleepers for the closed-loop figures.")
@click.option("--hours", type=float, default=8.0, show_default=True, help="Night length in hours.")
@click.option("--stager", type=click.Choice(["live", "oracle"]), default="live", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON object (the default output too).")
def clas(nights: int, clients: int, hours: float, stager: str, as_json: bool) -> None:
    """CLAS phase accuracy, closed-loop SO power change, arousals per 100 clicks, smart-wake share."""
    from nexus.facility.figures import clas_figures

    click.echo(json.dumps(clas_figures(nights=nights, clients=clients, hours=hours, stager=stager)))


@bench.command()
@click.option("--sessions", type=int, default=1000, show_default=True, help="Number of beds.")
@click.option("--realtime", is_flag=True, help="Run the loop on the real clock (default: fast-forward).")
@click.option("--mode", type=click.Choice(["gentle", "immediate", "release"]), default="immediate",
              show_default=True, help="Extraction mode ordered.")
@click.option("--warm", "warm_s", type=float, default=40.0, show_default=True,
              help="Loop time before the order, in s (the stager needs 30 s before scenes play).")
@click.option("--no-watchdog", is_flag=True, help="Skip the dead-man's switch figure.")
@click.option("--cli", is_flag=True, help="Give the order with a new 'nexus extract --all' process.")
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON object.")
def extraction(sessions: int, realtime: bool, mode: str, warm_s: float, no_watchdog: bool, cli: bool,
               as_json: bool) -> None:
    """Time from 'extract --all' (through the database) to every bed's safe state; watchdog silence time."""
    from nexus.facility.extraction_bench import bench_extraction

    res = bench_extraction(sessions, realtime=realtime, mode=mode, warm_s=warm_s, watchdog=not no_watchdog,
                           cli=cli)
    if not as_json:
        click.echo(f"{res['sessions']} beds ({res['clock']}): safe p50 {res['safe_s_p50']} s, p100 "
                   f"{res['safe_s_p100']} s after the order; watchdog silence p100 "
                   f"{res.get('watchdog_silent_s_p100')} s after the loop stopped", err=True)
    click.echo(json.dumps(res))
