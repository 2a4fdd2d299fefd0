"""``nexus compare HYPNO REFERENCE [--json] [-o plot.png|report.html|report.pdf]``."""

from __future__ import annotations

import click


@click.command()
@click.argument("hypnogram", type=click.Path(dir_okay=False))
@click.argument("reference", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every disagreeing epoch) instead of a table.")
@click.option("--format", "fmt", default=None, help="Format of HYPNOGRAM (guessed when omitted).")
@click.option("--reference-format", "ref_fmt", default=None, help="Format of REFERENCE (guessed when omitted).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Also write a plot (.png) or a short report (.html/.pdf).")
def compare(hypnogram: str, reference: str, as_json: bool, fmt: str | None, ref_fmt: str | None,
            output: str | None) -> None:
    """Epoch-by-epoch agreement of HYPNOGRAM with REFERENCE (any formats 'nexus stats' reads).

    Accuracy, Cohen's kappa, per-stage precision/recall/F1, the confusion matrix (rows: reference)
    and the epochs that disagree. Artefact and unscored epochs are left out of the comparison.
    """
    import json

    from nexus.reports.compare import compare_files

    result = compare_files(hypnogram, reference, fmt=fmt, reference_fmt=ref_fmt, output=output)
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.text())
    if output is not None:
        click.echo(f"Wrote {output}", err=True)
