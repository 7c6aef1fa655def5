"""The MQTT broker as moydom sees it: its generated config, the embedded
Mosquitto supervisor, and live account management through dynamic security."""
