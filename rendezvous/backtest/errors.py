"""Errors of the backtest, under one base: :class:`BacktestError`."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class BacktestError(RendezvousError, RuntimeError):
    """A backtest that cannot run as asked; the message says why."""
