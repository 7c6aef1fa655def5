"""One timed run's outcome: what was received or stored, when, and at what CPU cost."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Phase:
    name: str
    messages: int
    first_publish: float
    done: float
    last_puback: float
    acked: int
    cpu: dict[str, float]
    publisher_cpu: float
    note: str = ""
    failed: bool = False

    @property
    def wall(self) -> float:
        return self.done - self.first_publish

    @property
    def rate(self) -> float:
        return self.messages / self.wall

    @property
    def publish_rate(self) -> float:
        return self.acked / (self.last_puback - self.first_publish)
