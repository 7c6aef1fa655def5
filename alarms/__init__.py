"""The alarm-panel engine: a pure state machine with explicit time and no I/O."""
