"""Errors of replay, under one base: :class:`ReplayError`."""

from __future__ import annotations


class ReplayError(RuntimeError):
    """A replay that cannot be done as asked; the message says why and what to do."""
