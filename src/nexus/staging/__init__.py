"""Staging: sleep staging (offline and causal/live), hypnodensity, AASM statistics. Pure: arrays in, results out."""
