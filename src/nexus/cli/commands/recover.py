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
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DatabaseError

    from nexus.core.errors import StorageError
    from nexus.core.settings import load_settings
    from nexus.facility.recovery import recover as do_recover
    from nexus.store.db import open_store

    settings = load_settings()
    try:
        store = open_store(settings)
        try:
            rep = do_recover(store, unowned=unowned, merge=not no_merge)
        finally:
            store.close()
    except DatabaseError as exc:
        where = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        raise StorageError(f"'{where}' is not a facility database ({exc.orig}); check "
                           "NEXUS_DATABASE_URL. Nothing was changed.") from None
    click.echo(json.dumps(rep.as_dict(), indent=2) if as_json else rep.summary())
