"""Errors of the model registry, under one base: :class:`RegistryError`."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class RegistryError(RendezvousError, ValueError):
    """A registry change that cannot be made as asked (the message says why and what to do)."""


class PromotionRefused(RegistryError):
    """A promote without a passed backtest of that version (``--force`` overrides)."""
