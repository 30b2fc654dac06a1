"""Errors of ``rendezvous demo`` and ``up``."""

from __future__ import annotations


class DemoError(RuntimeError):
    """The demo cannot go on (no broker, a component did not start); the message says why."""
