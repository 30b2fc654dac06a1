"""The ready signal every long-running component gives, for supervisors and tests to wait on."""

from __future__ import annotations

import sys

READY_MARK = "rendezvous-ready"


def announce_ready(component: str, detail: str = "") -> None:
    """Write one ``rendezvous-ready <component>`` line to stderr, at once."""
    # The process's real stderr: some frameworks (faust) redirect sys.stderr to a logger.
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"{READY_MARK} {component} {detail}".rstrip() + "\n")
    stream.flush()
