"""Sinks: where sound goes — WAV file, live audio device, fake — each with a hard output limiter."""
