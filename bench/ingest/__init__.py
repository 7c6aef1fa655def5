"""Ingest throughput: QoS 1 device messages from the broker into the database.

In one run, on one private broker (moydom's generated config) and one private
database (PostgreSQL with fsync on, or a SQLite file):

- raw: ``mosquitto_sub -q 1 -c`` (a persistent MQTT v5 session, as the service
  account) receives the messages and prints them — the broker's own speed;
- moydom, 1 worker: ``moydom run --role ingest`` stores them, acknowledging
  each only after its commit; timed until ``events`` holds every one;
- moydom, 2 workers: the same with two processes sharing the MQTT v5 shared
  subscription (``MOYDOM_INGEST_SHARED_SUBSCRIPTION=true``; one worker runs
  with moydom's defaults).

Publishers are M provisioned devices, each in its own process, publishing
Zigbee2MQTT motion reports with a sequence number at QoS 1 (MQTT v5), with at
most 1,000 unacknowledged each; a message counts when its PUBACK arrives. By
default each is ``publisher.c`` on libmosquitto, compiled into the temporary
directory at the start (gcc and Debian's libmosquitto-dev): the load
generator should not eat the two cores under test, and paho publishers used
about 1.1 of them at 10,000 messages/s. ``--publisher python`` runs paho
instead. Raw and moydom runs always use the same kind. Each
timing runs from the first publish to the last message received (raw) or
stored (moydom). Prints the rates, the ratios moydom/raw, and the CPU seconds
each process used during the timed window. A moydom run that stores nothing
for 30 s is reported as stalled, with its rate up to then and the last error
in the worker's log. Every stored count is checked: no message lost, doubled
or rejected.

    .venv/bin/python -m bench.ingest [--messages 100000] [--publishers 4]
        [--database postgresql|sqlite] [--publisher c|python]
        [--ingest-env MOYDOM_INGEST_BATCH_MAX=2000 ...]  # worker settings to try
        [--py-spy FILE]  # profile the 1-worker run (py-spy installed by hand)
        [--py-spy-samples wall|cpu|gil]  # all threads, threads on a CPU, the GIL holder
        [--keep]         # keep the temporary directory with the logs

The package: ``__main__`` (the command line), ``rig`` (broker, template
database, devices), ``databases`` and ``cluster`` (SQLite or PostgreSQL with
fsync on), ``publishers`` (and ``publisher.c``), ``raw`` and ``moydom`` (the
timed runs), ``phase`` (one run's outcome), ``cpu`` (CPU seconds from /proc)
and ``report``.
"""
