"""Run a backtest: read the archive, score, compare, write the report, and give a verdict.

Exit status of ``rendezvous backtest`` (for CI gates): 0 when the candidate
agrees with production at least ``min_agreement`` and its score PSI is at
most ``max_psi``; 3 when it does not, or when no request could be compared
(the gate fails closed); 1 for errors (unreadable model, missing archive).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rendezvous.archive import TimeLike, read_archive, skipped_files
from rendezvous.backtest import stats
from rendezvous.backtest.report import write_report
from rendezvous.backtest.scoring import CHOSEN, Comparison, compare
from rendezvous.model import Model

log = logging.getLogger(__name__)

EXIT_PASSED = 0
EXIT_FAILED = 3


@dataclass(frozen=True)
class BacktestConfig:
    """What to compare and the thresholds a candidate must meet."""

    archive: Path
    report: Path
    against: str = CHOSEN
    """Production model whose recorded scores are compared (``chosen``: the answer given)."""
    min_agreement: float = 0.95
    max_psi: float = 0.2
    threshold: float = 0.5
    """Score at and above which the label is 1, on both sides."""
    start: TimeLike | None = None
    end: TimeLike | None = None
    batch_size: int = 4096


@dataclass(frozen=True)
class BacktestResult:
    """The summary written to ``summary.json``, and the exit status it implies."""

    summary: dict[str, Any]
    exit_status: int


def summarize(comparison: Comparison, model: Model, config: BacktestConfig,
              skipped: list[dict[str, str]], seconds: float) -> dict[str, Any]:
    """Every number of the report, with the verdict and the reasons for a failure."""
    candidate, production = comparison.candidate, comparison.production
    agreement = stats.agreement(candidate, production, config.threshold)
    psi = stats.psi(production, candidate)
    ks_statistic, ks_pvalue = stats.ks(production, candidate)
    failures = []
    if len(candidate) == 0:
        failures.append("no request could be compared (no archived inputs with a recorded "
                        f"score from {config.against!r})")
    else:
        if agreement < config.min_agreement:
            failures.append(f"agreement {agreement:.4f} < min {config.min_agreement}")
        if not psi <= config.max_psi:
            failures.append(f"PSI {psi:.4f} > max {config.max_psi}")
    return {
        "candidate": f"{model.name}/{model.version}",
        "against": config.against,
        "archive": str(config.archive),
        "rows": len(candidate),
        "agreement": agreement,
        "threshold": config.threshold,
        "psi": psi,
        "ks_statistic": ks_statistic,
        "ks_pvalue": ks_pvalue,
        "quantiles": {
            "levels": list(stats.QUANTILE_LEVELS),
            "candidate": stats.quantiles(candidate),
            "production": stats.quantiles(production),
        },
        "inputs": comparison.inputs,
        "invalid_inputs": comparison.invalid,
        "scored": comparison.scored,
        "unmatched": comparison.unmatched,
        "decisions": comparison.decisions,
        "rows_per_s": comparison.rows_per_s,
        "seconds": seconds,
        "min_agreement": config.min_agreement,
        "max_psi": config.max_psi,
        "passed": not failures,
        "failures": failures,
        "skipped_files": skipped,
    }


def backtest(model: Model, config: BacktestConfig) -> BacktestResult:
    """Compare ``model`` with the production answers archived under ``config.archive``."""
    started = time.perf_counter()
    inputs = read_archive(config.archive, "input", config.start, config.end)
    decisions = read_archive(config.archive, "decisions", config.start, config.end)
    skipped = skipped_files(inputs) + skipped_files(decisions)
    comparison = compare(inputs, decisions, model, config.against, config.batch_size)
    summary = summarize(comparison, model, config, skipped, time.perf_counter() - started)
    write_report(config.report, summary, comparison.candidate, comparison.production)
    status = EXIT_PASSED if summary["passed"] else EXIT_FAILED
    log.info("backtest %s: %d rows, agreement %s, PSI %s -> exit %d", summary["candidate"],
             summary["rows"], summary["agreement"], summary["psi"], status)
    return BacktestResult(summary, status)
