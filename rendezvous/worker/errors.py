"""Errors of the model worker, under one base: :class:`WorkerError`."""

from __future__ import annotations


class WorkerError(RuntimeError):
    """The worker cannot start or cannot go on; the message says what to do."""


class DeliveryFailed(WorkerError):
    """The broker did not acknowledge a batch's scores; its input offsets were not committed."""
