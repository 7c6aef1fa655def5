"""People on a contract: its members and their per-home permissions, and
the passwords of owner and members (change, reset by code, reset by support)."""
