"""Errors of replay, under one base: :class:`ReplayError`."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class ReplayError(RendezvousError, RuntimeError):
    """A replay that cannot be done as asked; the message says why and what to do."""


class InvalidPace(ReplayError, ValueError):
    """A replay speed or rate that is not positive."""
