"""Errors of the decoy recorder, under one base: :class:`DecoyError`."""

from __future__ import annotations

from rendezvous.archive.errors import ArchiveError


class DecoyError(ArchiveError):
    """The decoy cannot record; the message says what to do."""
