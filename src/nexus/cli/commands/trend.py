"""``nexus trend CLIENT [--json] [-o trend.html|.pdf]``."""

from __future__ import annotations

import click


@click.command()
@click.argument("client")
@click.option("--json", "as_json", is_flag=True, help="Print the nights as JSON instead of a table.")
@click.option("--database", default=None, help="Database URL (default: NEXUS_DATABASE_URL or the data dir's).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Also write trend.html or .pdf.")
def trend(client: str, as_json: bool, database: str | None, output: str | None) -> None:
    """A client's sleep across nights (id or code): TST, SE, SOL, WASO, N3, REM, arousal index, CLAS clicks.

    Natural (record-only) and stimulated nights are compared side by side.
    """
    import json
    import math

    from nexus.core.settings import load_settings
    from nexus.reports.trend import build_trend_report, client_trend, side_by_side
    from nexus.store import open_store

    if output is not None:
        from pathlib import Path

        from nexus.core.checks import check_writable_path
        from nexus.core.errors import InvalidInputError
        from nexus.reports.document import FORMATS

        if Path(output).suffix.lower() not in FORMATS:
            raise InvalidInputError(f"Cannot write '{output}': name the output file *.html or *.pdf.")
        check_writable_path(output, "trend report")
    store = open_store(load_settings(database_url=database) if database else load_settings())
    try:
        code, nights = client_trend(store, client)
    finally:
        store.close()
    if as_json:
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                for r in nights.to_dict(orient="records")]
        click.echo(json.dumps({"client": code, "nights": rows}, indent=2, default=str))
    elif not len(nights):
        click.echo(f"Client {code} has no night with a hypnogram yet.")
    else:
        from nexus.core.checks import plural

        click.echo(f"client {code}: {plural(len(nights), 'night')}")
        click.echo(nights.to_string(index=False, float_format=lambda v: f"{v:.1f}", na_rep="n/a"))
        click.echo("")
        click.echo(f"{'metric':<24}{'natural':>10}{'stimulated':>12}{'difference':>12}")
        for name, a, b, d in side_by_side(nights):
            click.echo(f"{name:<24}{a:>10}{b:>12}{d:>12}")
    if output is not None:
        from nexus.reports.document import write_report

        write_report(build_trend_report(code, nights), output)
        click.echo(f"Wrote {output}", err=True)
