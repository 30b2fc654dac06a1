"""Errors of the embedded rendezvous, under one base: :class:`EmbeddedError`."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class EmbeddedError(RendezvousError, RuntimeError):
    """``Embedded`` cannot be built or used as asked; the message says what to do."""


class ClosedError(EmbeddedError):
    """``score`` was called after ``close()``: build a new ``Embedded``."""
