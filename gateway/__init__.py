"""moydom gateway: the composition root (settings, database, broker, API, CLI)."""
