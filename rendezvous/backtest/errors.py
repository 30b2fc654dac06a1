"""Errors of the backtest, under one base: :class:`BacktestError`."""

from __future__ import annotations


class BacktestError(RuntimeError):
    """A backtest that cannot run as asked; the message says why."""
