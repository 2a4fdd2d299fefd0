"""The ``nexus`` command line: one module per command in :mod:`nexus.cli.commands`, each only calls the library."""
