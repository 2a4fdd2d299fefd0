"""Staging: sleep staging (offline and causal/live), hypnodensity, AASM statistics. Pure: arrays in, results out.

Modules
-------
:mod:`nexus.staging.offline`
    :func:`~nexus.staging.offline.stage_offline` — a whole recording with YASA's classifiers;
    :func:`~nexus.staging.offline.pick_channels` — EEG/EOG/EMG from a recording's labels.
:mod:`nexus.staging.live`
    :class:`~nexus.staging.live.LiveStager` — causal staging of many sessions at once, every 5 s;
    :func:`~nexus.staging.live.stage_causal` — a recording replayed through it.
:mod:`nexus.staging.features`
    YASA's per-epoch features, vectorised (numpy only at import).
:mod:`nexus.staging.model`
    YASA's LightGBM classifiers located without importing yasa, evaluated as arrays.
:mod:`nexus.staging.stats`
    :func:`~nexus.staging.stats.sleep_statistics` — AASM statistics with YASA's definitions.
"""
