"""``nexus worker``: the multi-host floor — open beds for workers, run a worker, see who runs what."""

from __future__ import annotations

import json

import click


@click.group()
def worker() -> None:
    """Workers of a multi-host facility: each runs a share of the floor's beds, with leases in the database.

    Every worker (on any host) points at the same database (NEXUS_DATABASE_URL, PostgreSQL for several
    hosts). When one dies, the others take its beds over within seconds.
    """


@worker.command("open")
@click.option("--clients", type=click.IntRange(1, 10_000), default=24, show_default=True, help="Number of beds.")
@click.option("--hours", type=click.FloatRange(min=0.01, max=24), default=8.0, show_default=True,
              help="Length of each night in hours.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of the first sleeper.")
@click.option("--run", "run_id", default=None, help="Prefix of the session ids [default: a new one].")
def open_(clients: int, hours: float, seed: int, run_id: str | None) -> None:
    """Open N synthetic beds (curated programs, some natural nights) for the workers to run."""
    import uuid

    from nexus.core.settings import load_settings
    from nexus.facility.leases import open_floor
    from nexus.facility.simulate import plan_beds
    from nexus.store import open_store, upgrade

    run_id = run_id or "f" + uuid.uuid4().hex[:8]
    if len(run_id) > 26:
        from nexus.core.errors import InvalidInputError

        raise InvalidInputError(f"Invalid --run '{run_id}': at most 26 characters (session ids are run-NNNN).")
    store = open_store(load_settings(), create=True, check=False)
    try:
        upgrade(store.engine)
        names = open_floor(store, plan_beds(clients, seed=seed, hours=hours, run_id=run_id), hours=hours, fs=100.0)
    finally:
        store.close()
    click.echo(f"Opened {len(names)} beds ({names[0]} … {names[-1]}); every 'nexus worker run' on this database "
               "takes its share.")


@worker.command("run")
@click.option("--capacity", type=click.IntRange(1, 5000), default=100, show_default=True,
              help="Most beds this worker runs at once.")
@click.option("--lease", "lease_s", type=click.FloatRange(min=0.2, max=600), default=2.5, show_default=True,
              help="Seconds after a worker's last heartbeat when the others take its beds over (same on all).")
@click.option("--heartbeat", "heartbeat_s", type=click.FloatRange(min=0.05, max=300), default=0.5,
              show_default=True, help="Seconds between two heartbeats.")
@click.option("--seconds", type=click.FloatRange(min=0), default=None, help="Stop after this long [default: never].")
@click.option("--events/--no-events", default=False, show_default=True, help="Run the event detectors.")
@click.option("--json", "as_json", is_flag=True, help="Print the worker's report as JSON when it stops.")
def run(capacity: int, lease_s: float, heartbeat_s: float, seconds: float | None, events: bool,
        as_json: bool) -> None:
    """Run a worker: claim an even share of the open beds, run them in real time, take over dead workers' beds.

    Stops on Ctrl-C or SIGTERM: its beds are handed to the other workers (or ended when there is none).
    """
    from nexus.core.settings import load_settings
    from nexus.facility.shutdown import FacilityStopped, stop_on_signals
    from nexus.facility.worker import Worker, WorkerLost
    from nexus.store.db import open_store

    settings = load_settings()
    store = open_store(settings)
    try:
        w = Worker(store, data_dir=settings.data_dir, capacity=capacity, lease_s=lease_s, heartbeat_s=heartbeat_s,
                   events=events)
        click.echo(f"Worker {w.id}: journal {w.journal.folder}.", err=True)
        try:
            with stop_on_signals():
                rep = w.run(seconds)
        except FacilityStopped as exc:
            rep = w.report
            rep.stop_reason = exc.reason
        if as_json:
            click.echo(json.dumps(rep.as_dict(), indent=2))
        else:
            click.echo(f"Worker {w.id} stopped ({rep.stop_reason or 'time up'}): {rep.claimed} beds claimed, "
                       f"{rep.taken_over} taken over, {rep.ended} ended, {rep.handed_back} handed over"
                       + (f"; taken for dead and rejoined {len(rep.rejoined)} time(s)." if rep.rejoined else "."))
        if rep.stop_reason.startswith("taken for dead"):
            raise WorkerLost(f"Worker {w.id} was {rep.stop_reason}. Check the database link and the host's load, "
                             "then start a new worker.")
    finally:
        store.close()


@worker.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status(as_json: bool) -> None:
    """Who runs what: the workers (alive or not, beds held) and the open beds of the floor."""
    from nexus.core.settings import load_settings
    from nexus.facility.leases import floor_status
    from nexus.store.db import open_store

    store = open_store(load_settings())
    try:
        st = floor_status(store)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    for w in st["workers"]:
        state = "alive" if w["alive"] else f"gone ({w['ended'] or 'no heartbeat'})"
        click.echo(f"{w['worker']}  {w['host']}:{w['pid']}  {state}  {w['beds']} beds  "
                   f"heartbeat {w['heartbeat_age_s']:.1f} s ago")
    open_beds = [b for b in st["beds"] if b["state"] not in ("ended", "aborted")]
    free = sum(1 for b in open_beds if b["worker"] is None)
    click.echo(f"{len(open_beds)} open beds ({free} waiting for a worker), "
               f"{sum(b['takeovers'] for b in st['beds'])} takeovers so far.")
