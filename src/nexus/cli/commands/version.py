"""``nexus version``."""

from __future__ import annotations

import platform

import click

from nexus import __version__


@click.command()
def version() -> None:
    """Print the Bedtime Nexus version, Python and the main libraries."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as v

    click.echo(f"bedtime-nexus {__version__}")
    click.echo(f"python {platform.python_version()} ({platform.system()} {platform.machine()})")
    for dist in ("numpy", "scipy", "yasa", "sqlalchemy", "alembic"):
        try:
            click.echo(f"{dist} {v(dist)}")
        except PackageNotFoundError:
            click.echo(f"{dist} (not installed)")
