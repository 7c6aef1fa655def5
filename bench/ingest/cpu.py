"""CPU seconds of the processes under test, read from /proc."""

from __future__ import annotations

import os
from collections.abc import Callable

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, ...]."""
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_cpu(postmaster: int) -> float:
    """The cluster's CPU: the postmaster, its live children and the reaped ones."""
    fields = _stat(postmaster)
    total = sum(int(f) for f in fields[11:15])
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            child = _stat(int(entry))
        except (OSError, IndexError):
            continue
        if child[1] == str(postmaster):
            total += int(child[11]) + int(child[12])
    return total / CLK_TCK


class CpuMeter:
    """CPU seconds of named processes between ``start`` and ``stop``."""

    def __init__(self, sources: dict[str, Callable[[], float]]) -> None:
        self.sources = sources
        self._start: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._start = {name: read() for name, read in self.sources.items()}

    def stop(self) -> None:
        self.used = {name: read() - self._start[name] for name, read in self.sources.items()}
