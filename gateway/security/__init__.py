"""The security service in the gateway: runs the pure engine of :mod:`alarms`
against the database (locked panel rows, stored deadlines) and turns its
effects into cases, alerts and outbox rows in the same transaction."""
