"""A dependency-free progress bar on stderr: redrawn in place on a terminal, a line every
few seconds otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts ``done`` out of ``total`` and shows it with the rate."""

    def __init__(self, total: int, label: str = "replay", stream: TextIO | None = None,
                 enabled: bool = True, width: int = 30) -> None:
        self.total, self.label, self.width, self.enabled = total, label, width, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._every = 0.2 if self._tty else 5.0
        self._start = self._last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= self._every:
            self._last = now
            self._draw(now, final=False)

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw(time.monotonic(), final=True)

    def _draw(self, now: float, final: bool) -> None:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(self.width * fraction)
        rate = self.done / max(now - self._start, 1e-9)
        line = (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{self.done:,}/{self.total:,} {fraction:6.1%} {rate:,.0f} rec/s")
        if self._tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
