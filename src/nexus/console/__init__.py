"""Console: the technician's static web console (every bed at once, prioritised alarms)."""
