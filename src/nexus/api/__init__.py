"""API: FastAPI REST and WebSocket endpoints, built by an app factory."""
