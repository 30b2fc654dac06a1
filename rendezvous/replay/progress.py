"""A dependency-free progress bar on stderr: redrawn in place on a terminal, a line every
few seconds otherwise (logs, CI). The replay and the demo's load both show it."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts ``done`` out of ``total`` and shows it with the rate (and a note, if any).

    The rate is frozen once ``done`` reaches ``total``: waiting afterwards is not work.
    """

    def __init__(self, total: int, label: str = "replay", stream: TextIO | None = None,
                 enabled: bool = True, width: int = 30, unit: str = "rec/s") -> None:
        self.total, self.label, self.width, self.enabled = total, label, width, enabled
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._every = 0.2 if self._tty else 5.0
        self._start = self._last = time.monotonic()
        self._rate = 0.0

    def advance(self, n: int = 1, note: str = "") -> None:
        self.show(self.done + n, note)

    def show(self, done: int, note: str = "") -> None:
        """Set the count to ``done``; redraw if it is time."""
        self.done = done
        now = time.monotonic()
        if done < self.total or not self._rate:
            self._rate = done / max(now - self._start, 1e-9)
        if self.enabled and now - self._last >= self._every:
            self._last = now
            self._draw(note, final=False)

    def close(self, note: str = "") -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw(note, final=True)

    def _draw(self, note: str, final: bool) -> None:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(self.width * fraction)
        line = (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{self.done:,}/{self.total:,} {fraction:6.1%} {self._rate:,.0f} {self.unit}"
                + (f"  {note}" if note else ""))
        if self._tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
