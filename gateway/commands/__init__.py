"""Commands to gates, barriers and intercom doors (invariant 3: never late,
never twice). ``records`` keeps the rows and their history, ``views`` shows
them, ``sender`` publishes them on the broker, ``sweep`` expires the unanswered.
The controller's side of the protocol is ``devices.commands``."""
