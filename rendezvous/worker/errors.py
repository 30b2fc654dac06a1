"""Errors of the model worker, under one base: :class:`WorkerError`."""

from __future__ import annotations

from rendezvous.errors import RendezvousError
from rendezvous.transport.errors import DeliveryFailed

__all__ = ["DeliveryFailed", "WorkerError"]


class WorkerError(RendezvousError, RuntimeError):
    """The worker cannot start or cannot go on; the message says what to do."""
