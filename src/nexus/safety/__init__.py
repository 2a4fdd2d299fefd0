"""Safety: extraction, the dead-man's-switch watchdog, hard limits."""
