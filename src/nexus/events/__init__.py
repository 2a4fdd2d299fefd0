"""Events: detectors of slow oscillations, spindles, rapid eye movements, arousals, heart rate, movement.

Pure: arrays (µV; milli-g for the accelerometer) and sampling rates in, results out. Each detector
has an offline function returning an :class:`~nexus.events.table.EventResults` (``.events``
DataFrame, ``.summary()``) and a batched streaming class with ``step(block)`` (leading axis =
session) returning an :class:`~nexus.events.table.EventBatch` of newly confirmed events.

==========================  ==============================  ===============================
module                      offline                         streaming
==========================  ==============================  ===============================
:mod:`.spindles`            :func:`detect_spindles`         :class:`SpindleStream`
:mod:`.slow_waves`          :func:`detect_slow_waves`       :class:`SlowWaveStream` (+ causal down-states)
:mod:`.rems`                :func:`detect_rems`             :class:`REMStream`
:mod:`.arousals`            :func:`detect_arousals`         :class:`ArousalStream`
:mod:`.heart`               :func:`detect_heartbeats`       :class:`HeartRateStream`
:mod:`.movement`            :func:`detect_movements`        :class:`MovementStream`
==========================  ==============================  ===============================

:func:`nexus.events.run_all.detect_all` runs them all over one recording's channels;
:func:`nexus.events.evaluation.match_events` scores detections against a reference (IoU F1).
"""
