"""Guard: consent, policy (no exploitation of distress), the tamper-evident audit chain, dependency index."""
