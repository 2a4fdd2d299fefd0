"""Sources: where signals come from — the synthetic sleeper, EDF replay, LSL, BrainFlow — behind one interface."""
