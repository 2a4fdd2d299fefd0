"""``nexus recover``: end the sessions a crashed facility left open, and merge their journals."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--unowned", is_flag=True, help="Also end open sessions that no facility run owns.")
@click.option("--no-merge", is_flag=True, help="Do not merge the journals into EDF+ files.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def recover(unowned: bool, no_merge: bool, as_json: bool) -> None:
    """Find sessions left running by a facility that stopped (kill -9, power cut), recover and end them.

    Their journals are merged into EDF+ (recordings/ next to each journal) and the sessions end as
    'aborted' with the reason "facility crashed; recovered". A facility still running is left alone.
    """
    from nexus.core.settings import load_settings
    from nexus.facility.recovery import recover as do_recover
    from nexus.store.db import open_store

    store = open_store(load_settings())
    try:
        rep = do_recover(store, unowned=unowned, merge=not no_merge)
    finally:
        store.close()
    click.echo(json.dumps(rep.as_dict(), indent=2) if as_json else rep.summary())
