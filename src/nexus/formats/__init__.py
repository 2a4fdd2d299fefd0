"""Formats: EDF/EDF+/BDF, hypnogram and event files, read and write."""
