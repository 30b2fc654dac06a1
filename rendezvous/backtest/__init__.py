"""Backtest: score the archived inputs with a candidate and compare with production's answers."""

from rendezvous.backtest.errors import BacktestError
from rendezvous.backtest.runner import (
    EXIT_FAILED,
    EXIT_PASSED,
    BacktestConfig,
    BacktestResult,
    backtest,
)
from rendezvous.backtest.scoring import CHOSEN, Comparison, compare

__all__ = [
    "CHOSEN",
    "EXIT_FAILED",
    "EXIT_PASSED",
    "BacktestConfig",
    "BacktestError",
    "BacktestResult",
    "Comparison",
    "backtest",
    "compare",
]
