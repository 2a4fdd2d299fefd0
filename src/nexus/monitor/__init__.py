"""Monitor: glitch detection and triage (technical, psyche, system) with prioritised alarms."""
