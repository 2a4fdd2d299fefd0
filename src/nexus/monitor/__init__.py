"""Monitor: glitch detection and triage (technical, psyche, system) with prioritised alarms.

* :mod:`nexus.monitor.glitch` — the :class:`Glitch` record and the kinds (category, priority).
* :mod:`nexus.monitor.live` — :class:`GlitchMonitor`, the batched streaming monitor of a lane
  (its docstring is the interface, with units); detectors in :mod:`~nexus.monitor.technical` and
  :mod:`~nexus.monitor.psyche`, window features in :mod:`~nexus.monitor.features`, episodes in
  :mod:`~nexus.monitor.episodes`.
* :mod:`nexus.monitor.alarms` — :class:`AlarmBook`: raised, acknowledged, escalated, resolved.
* :mod:`nexus.monitor.offline` — the same monitor over a whole recording (``nexus glitches``).
* :mod:`nexus.monitor.preparation` — the signal check before a night.
"""
