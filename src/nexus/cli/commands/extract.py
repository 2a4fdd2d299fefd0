"""``nexus extract SESSION|--all [--mode gentle|immediate|release]``: end sessions safely, through the database.

The order goes into the facility database (not through the API), so it works when the API is
overloaded or down; the running facility carries it out at its next step and writes back when each
bed reached the safe state.
"""

from __future__ import annotations

import json
from datetime import datetime

import click


def _seconds(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


@click.command()
@click.argument("session", required=False)
@click.option("--all", "all_", is_flag=True, help="Extract every running session.")
@click.option("--mode", type=click.Choice(["gentle", "immediate", "release"]), default="gentle", show_default=True,
              help="After stimulation stops: wake in light sleep, wake now, or release to natural sleep.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until every bed is safe.")
@click.option("--until", type=click.Choice(["safe", "done"]), default="safe", show_default=True,
              help="Wait for the safe state (stimulation stopped), or for the session's end (woken).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0), default=30.0, show_default=True,
              help="Longest wait in seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the orders as JSON.")
def extract(session: str | None, all_: bool, mode: str, wait: bool, until: str, timeout_s: float,
            as_json: bool) -> None:
    """Extract SESSION (or --all): stimulation stops at once, then a gentle or immediate wake, or release.

    Conflicting orders resolve to the safest (release < gentle < immediate); repeating an order
    changes nothing. Exits non-zero when a bed did not reach the state waited for in time.
    """
    from sqlalchemy import select

    from nexus.core.errors import StateError
    from nexus.core.settings import load_settings
    from nexus.facility.orders import order_rows, run_alive, submit_orders, wait_orders
    from nexus.store.db import open_store
    from nexus.store.models import FacilityRun

    if bool(session) == all_:
        raise click.UsageError("Give one SESSION or --all.")
    store = open_store(load_settings())
    try:
        ids = submit_orders(store, None if all_ else session, mode)
        rows = order_rows(store, ids)
        with store.session() as s:
            runs = {r.id: r for r in s.scalars(select(FacilityRun).where(
                FacilityRun.id.in_({r["run"] for r in rows if r["run"]})))}
        gone = [r["session"] for r in rows if r["run"] not in runs or not run_alive(runs[r["run"]])]
        if gone:
            click.echo(f"Warning: {len(gone)} session(s) belong to no running facility ({', '.join(gone[:5])}"
                       f"{' …' if len(gone) > 5 else ''}): nothing plays there; 'nexus recover' ends them.", err=True)
        ok = True
        if wait and len(gone) < len(rows):
            live = [r["order"] for r in rows if r["session"] not in set(gone)]
            waited, ok = wait_orders(store, live, timeout_s=timeout_s, until=until)
            rows = waited + [r for r in rows if r["session"] in set(gone)]
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for r in rows:
            safe = _seconds(r["ordered_at"], r["safe_at"])
            done = _seconds(r["ordered_at"], r["done_at"])
            if r["status"] == "refused":
                click.echo(f"{r['session']}: refused: {r['message']}")
            elif safe is None:
                click.echo(f"{r['session']}: {mode} extraction ordered (order {r['order']}), not yet carried out")
            else:
                click.echo(f"{r['session']}: safe {safe:.2f} s after the order ({r['mode']}, {r['outcome']})"
                           + (f"; ended {done:.1f} s after the order" if done is not None else ""))
    if wait and not ok:
        late = [r["session"] for r in rows if r["status"] != "refused"
                and not (r["safe_at"] if until == "safe" else r["done_at"])]
        raise StateError(f"{len(late)} session(s) not {until} within {timeout_s:g} s ({', '.join(late[:5])}): "
                         "is the facility running? 'nexus extract' again is harmless.")
