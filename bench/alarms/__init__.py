"""Alarm latency: a leak sensor trips → the case shows on the dispatch WebSocket.

What a dispatcher waits for, end to end, through the real gateway: the device's
QoS 1 publish, Mosquitto, the ingest worker (which steps the home's panel and
opens the case in the transaction that stores the event, with fsync on), the
notice on ``<root>/_events``, the API's hub and the WebSocket frame.

In one invocation, on one private broker (moydom's generated config, as
``bench.ingest``) and one private database (PostgreSQL with fsync on, or a
SQLite file), two runs, each on a fresh copy of the same template database and
a fresh ``moydom run`` (every role: api, ingest, alarms) as a subprocess:

- idle: nothing else is published;
- background: B motion sensors of other contracts (no security service)
  publish Zigbee2MQTT motion reports at QoS 1 from a separate process at a
  target total rate; the rate the broker acknowledged is reported.

Each run provisions H homes over the admin REST API (a contract, a ``leak``
device — a 24-hour zone, so every dry → wet change raises an alarm whatever
the panel's state — and the security service), one dispatcher, and opens
``/api/v1/dispatch/stream``. Every home reports dry once, then each home is
tripped once unmeasured (warm-up). A trip: ``{"water_leak": true}`` from the
next home in turn (one MQTT connection per device); the clock runs from just
before that publish to the arrival of the stream's first message about a case
id not seen before (checked to be that home's leak). Then, untimed, the
device reports dry, the dispatcher closes the case over REST (so nothing is
re-sent and the snapshot stays small), and the next trip waits until the
database holds both of the device's reports (polled every 2 ms): no report of
ours is ever queued ahead of the timed one, so when idle it meets an idle
ingest worker (and waits out its linger alone) as a real lone trip would.
Trips run one after another.

Prints p50/p95/p99/max per run, the background rate achieved, the CPU seconds
of the gateway, the database and the broker during the trips, and how long the
gateway took after the background stopped to store what it had been sent (its
backlog: 0 means ingest kept up). The machine is noisy: quote medians.

    .venv/bin/python -m bench.alarms [--trips 1000] [--homes 20]
        [--background-devices 20] [--background-rate 2000]
        [--database postgresql|sqlite]
        [--gateway-env MOYDOM_INGEST_LINGER_MS=0 ...]  # gateway settings to try
        [--keep]  # keep the temporary directory with the gateway's logs

The package: ``__main__`` (the command line), ``gateway`` (the subprocess and
its REST calls), ``stream`` (the dispatch WebSocket), ``stored`` (the sensors'
reports the database holds), ``background`` (the paced publisher process),
``trips`` (one run) and ``report``. The broker, the
template database, the background devices and the CPU meters are
``bench.ingest``'s.
"""
