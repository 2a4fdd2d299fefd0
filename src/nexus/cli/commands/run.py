"""``nexus run``: the facility as a service — live beds, the API, the floor feed and the console."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--clients", type=click.IntRange(1, 2000), default=24, show_default=True,
              help="Number of beds (synthetic sleepers with curated programs; some natural nights).")
@click.option("--host", default=None, help="Address to listen on [default: NEXUS_HOST, 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port [default: NEXUS_PORT, 8000].")
@click.option("--speed", type=click.FloatRange(min=0.01, max=10_000), default=1.0, show_default=True,
              help="How much faster than real time the night runs (e.g. 60: an hour a minute).")
@click.option("--hours", type=click.FloatRange(min=0.01, max=24), default=8.0, show_default=True,
              help="Length of the night in hours.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of the first sleeper.")
@click.option("--faults", type=click.IntRange(0, 1000), default=3, show_default=True,
              help="Demonstration glitches: stretches of bad samples on random beds in the first 10 minutes.")
@click.option("--source", "source", default=None, metavar="SPEC",
              help="Where beds come from, as in 'nexus record': synthetic[:N] (N beds, instead of --clients), "
                   "lsl[:type=EEG][:name=PREFIX], brainflow:BOARD[:serial=...], replay:DIR[:speed=X]. Real beds "
                   "record natural nights; a device the --beds map does not name joins unassigned.")
@click.option("--beds", "beds_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML map of stream name or source id to client code ('bed-01: C-0001'), for real beds.")
def run(clients: int, host: str | None, port: int | None, speed: float, hours: float, seed: int,
        faults: int, source: str | None, beds_file: Path | None) -> None:
    """Run the facility: N live beds, the REST API, the floor WebSocket and the technician console.

    Prints the console URL and, on the first run, the first admin's one-time password. Stops cleanly on
    Ctrl-C or SIGTERM (every session ended, the journal flushed). For a night in fast-forward without a
    server, use 'nexus simulate'.
    """
    from nexus.api.server import check_port, ensure_admin, serve
    from nexus.core.settings import load_settings
    from nexus.facility.records import open_db
    from nexus.facility.service import FacilityService, parse_faults

    spec = None
    if source is not None:
        from nexus.sources.spec import parse_source

        spec = parse_source(source)
        if spec.kind == "synthetic":
            if ":" in spec.text:
                clients = spec.count
            spec = None
    bed_map = None
    if beds_file is not None:
        from nexus.facility.floor import BedMap

        bed_map = BedMap.load(beds_file)
    settings = load_settings()
    host = host or settings.host
    port = port or settings.port
    check_port(host, port)
    store = open_db(None)
    try:
        first = ensure_admin(store)
        service: FacilityService
        if spec is None:
            service = FacilityService(store, clients=clients, speed=speed, hours=hours, seed=seed,
                                      data_dir=settings.data_dir, faults=parse_faults(clients, faults, seed=seed))
        else:  # real beds: devices join as they appear (a replay runs at its own speed=X)
            from nexus.facility.floor_service import FloorService

            service = FloorService(store, source=spec, bed_map=bed_map, hours=hours, data_dir=settings.data_dir)
        service.start(background=True)
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
        url = f"http://{shown}:{port}/"

        def ready() -> None:
            if spec is None:
                click.echo(f"Bedtime Nexus: {clients} beds at {speed:g}x real time (run {service.run_id}).")
            else:
                click.echo(f"Bedtime Nexus: {len(service.beds())} beds from {spec.text} so far; more join as their "
                           f"devices appear (run {service.run_id}).")
            click.echo(f"Console:  {url}   API docs: {url}docs")
            if first is not None:
                click.echo(f"First admin (shown once): username '{first[0]}', password '{first[1]}'")
            else:
                click.echo("Log in as an admin or technician ('nexus user add NAME --role technician').")
            click.echo("Stop with Ctrl-C.")

        serve(service, store, host=host, port=port, on_ready=ready, trusted_proxies=settings.proxies)
        click.echo(f"Stopped: {len(service.beds())} sessions ended, journal in {service.root}.")
    finally:
        store.close()
