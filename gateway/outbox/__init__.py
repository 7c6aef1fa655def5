"""The transactional outbox: what to send is decided inside a database
transaction and sent after it commits, by the alarms role, with retries —
so a crash neither loses a message nor (for the same key) decides it twice."""
