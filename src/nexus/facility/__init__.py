"""Facility: the runtime — clock (real or fast-forward), session supervisor, batched pipeline step."""
