"""Errors of ``rendezvous plan``."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class PlanError(RendezvousError):
    """A plan that cannot be kept, or a costs file that cannot be read; says why and what to do."""
