"""Errors of the monitor, under one base: :class:`MonitorError`."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class MonitorError(RendezvousError, RuntimeError):
    """The monitor cannot start or go on; the message says what to do."""
