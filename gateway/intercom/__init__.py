"""Intercom calls: shared entrances (a building's panel, its flats and the
homes they are), the calls panels publish, routed to the dialled flat's home,
rung on every member's live stream, answered by the first, missed after a
timeout (docs/devices.md, "Intercom panels")."""
