"""Durable device ingest: MQTT messages into the database exactly once."""
