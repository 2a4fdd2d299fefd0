"""``nexus stats HYPNO [--json]``."""

from __future__ import annotations

import click


@click.command()
@click.argument("hypnogram", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--format", "fmt", default=None,
              help="Hypnogram format, guessed when omitted: tsv, csv, yasa-int, yasa-str, edf, sleep-edf-csv, "
                   "nsrr-xml.")
def stats(hypnogram: str, as_json: bool, fmt: str | None) -> None:
    """AASM sleep statistics of HYPNOGRAM (any format: TSV, YASA ints/strings, EDF+, Sleep-EDF CSV, NSRR XML).

    Durations in minutes, SE/SME/stage shares in %, as YASA's Hypnogram.sleep_statistics.
    """
    import json
    import math

    from nexus.formats.hypnogram import read_hypnogram
    from nexus.staging.stats import sleep_statistics

    h = read_hypnogram(hypnogram, fmt)
    s = sleep_statistics(h.stages, h.epoch_s)
    if as_json:
        click.echo(json.dumps({k: (None if math.isnan(v) else v) for k, v in s.items()}, indent=2))
        return
    width = max(len(k) for k in s)
    for key, value in s.items():
        click.echo(f"{key:<{width}}  {value:>10.2f}")
