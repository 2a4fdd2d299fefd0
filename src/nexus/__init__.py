"""Bedtime Nexus: a sleep facility platform.

The package is layered; lower layers never import higher ones (``tests/test_layers.py``
enforces it)::

    core → formats → dsp, staging, events → sources, sinks → dreamscape
         → monitor, safety, guard → store → facility → api, console, reports, cli

Importing :mod:`nexus` is cheap: it loads no numeric, database or web library.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bedtime-nexus")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
