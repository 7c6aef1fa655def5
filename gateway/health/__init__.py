"""What ISP operators watch across all contracts: device health (offline,
silent, low battery), the recorders, and this process's metrics."""
