"""When each replayed record is due: as fast as possible, at a fixed rate, or at a speed-up
of the recorded timeline. Pure: the caller waits (while serving its producer)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from rendezvous.replay.errors import InvalidPace

Mode = Literal["max", "rate", "speed"]


@dataclass
class Pacer:
    """Says how long to wait before sending record ``index`` whose recorded time is ``event_ms``.

    ``rate``: ``value`` records per second. ``speed``: the recorded timeline
    played ``value`` times faster (1 = as recorded). ``max``: never wait.
    """

    mode: Mode
    value: float = 0.0
    clock: Callable[[], float] = time.monotonic
    _start: float | None = field(default=None, init=False)
    _first_ms: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.mode != "max" and not self.value > 0:
            raise InvalidPace(f"--{self.mode} must be positive, got {self.value}")

    def delay(self, index: int, event_ms: float) -> float:
        """Seconds to wait before sending this record (0 when it is due or late)."""
        now = self.clock()
        if self._start is None:
            self._start, self._first_ms = now, event_ms
        if self.mode == "max":
            return 0.0
        if self.mode == "rate":
            due = self._start + index / self.value
        else:
            due = self._start + (event_ms - self._first_ms) / 1000.0 / self.value
        return max(0.0, due - now)
