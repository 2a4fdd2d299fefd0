"""``nexus sessions [--state S] [--client CODE] [--json]``: the sessions the facility ran."""

from __future__ import annotations

import click

STATES = ("prepared", "calibrating", "running", "extracting", "ended", "aborted")


@click.command()
@click.option("--state", type=click.Choice(STATES), help="Only sessions in this state.")
@click.option("--client", "client_code", help="Only sessions of this client (its code).")
@click.option("--limit", type=click.IntRange(1), default=200, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def sessions(state: str | None, client_code: str | None, limit: int, as_json: bool) -> None:
    """List sessions with client, program, mode, state, start, end and end reason (newest first)."""
    import json

    from nexus.core.settings import load_settings
    from nexus.store.db import open_store
    from nexus.store.sessions import list_sessions

    store = open_store(load_settings())
    try:
        rows = list_sessions(store, state=state, client_code=client_code, limit=limit)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No sessions" + (f" in state '{state}'" if state else "") + ".")
        return
    cols = ("session", "client", "program", "mode", "state", "started", "ended", "end reason")
    table = [cols] + [(r["session"], r["client"], r["program"] or "-", r["mode"], r["state"],
                       (r["started_at"] or "")[:19].replace("T", " "), (r["ended_at"] or "")[:19].replace("T", " "),
                       r["end_reason"] or "") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols) - 1)]
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) + "  " + row[-1])
