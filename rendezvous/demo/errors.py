"""Errors of ``rendezvous demo`` and ``up``."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class DemoError(RendezvousError, RuntimeError):
    """The demo cannot go on (no broker, a component did not start); the message says why."""
