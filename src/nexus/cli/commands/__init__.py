"""One module per ``nexus`` command (or command group)."""
