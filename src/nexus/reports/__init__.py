"""Reports: night reports (HTML/PDF)."""
