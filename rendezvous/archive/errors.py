"""Errors of the raw archive, under one base: :class:`ArchiveError`."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class ArchiveError(RendezvousError):
    """Base of every error raised while writing or reading the raw archive."""


class UnreadableFile(ArchiveError):
    """One archive file cannot be read (truncated, corrupt, or of an unknown version)."""
