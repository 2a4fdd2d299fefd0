"""Core: types, stage codes, units, validation helpers, errors, settings and logging.

Everything else in :mod:`nexus` may import from here; this layer imports nothing of ours.
"""
