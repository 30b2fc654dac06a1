"""The ready signal every long-running component gives, for supervisors and tests to wait on:
a line on stderr, and ``/readyz`` on the metrics port (see :mod:`rendezvous.metrics`)."""

from __future__ import annotations

import sys
import threading

READY_MARK = "rendezvous-ready"

# Set by announce_ready: the metrics server's /readyz answers 200 from then on.
_announced = threading.Event()


def announce_ready(component: str, detail: str = "") -> None:
    """Write one ``rendezvous-ready <component>`` line to stderr, at once."""
    # The process's real stderr: some frameworks (faust) redirect sys.stderr to a logger.
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"{READY_MARK} {component} {detail}".rstrip() + "\n")
    stream.flush()
    _announced.set()


def is_ready() -> bool:
    """Whether this process has announced ready (what ``/readyz`` reports)."""
    return _announced.is_set()
