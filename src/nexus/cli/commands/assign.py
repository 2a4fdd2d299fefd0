"""``nexus assign``: give an unassigned bed's session (a stream that matched no client) to its client."""

from __future__ import annotations

import click


@click.command()
@click.argument("session")
@click.argument("client")
def assign(session: str, client: str) -> None:
    """Assign SESSION, recorded from a stream that matched no client, to CLIENT (audited).

    The client must have consented to recording. Session ids are in 'nexus sessions' and record.json.
    A running 'nexus run --source' facility reads it from the database within a second: the bed shows
    its client and runs under the client's consent from then on.
    """
    from nexus.facility.record import assign_bed
    from nexus.facility.records import open_db

    store = open_db()
    try:
        assign_bed(store, session, client)
    finally:
        store.close()
    click.echo(f"Session {session} now belongs to client {client}.")
