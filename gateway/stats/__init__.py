"""Statistics per agency and day, daily rankings per role, and their exports (read side)."""
