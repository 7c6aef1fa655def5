"""Benchmarks: each measures moydom and its baseline side by side in one run."""
