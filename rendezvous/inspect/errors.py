"""Errors of ``rendezvous inspect``, under one base: :class:`InspectError`."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class InspectError(RendezvousError):
    """The request cannot be looked for as asked (a bad time, no archive); says what to do."""
