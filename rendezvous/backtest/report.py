"""The backtest report directory: ``summary.json``, ``report.html``, ``qq.png``, ``histograms.png``.

Plots are drawn with matplotlib's Agg canvas on standalone figures (no pyplot
state, no display needed), so this works in CI and in a server process alike.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SUMMARY = "summary.json"
REPORT = "report.html"
QQ_PLOT = "qq.png"
HISTOGRAMS = "histograms.png"


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


def qq_plot(candidate: np.ndarray, production: np.ndarray, path: Path,
            names: tuple[str, str]) -> None:
    """Candidate quantiles against production quantiles (percentiles 0..100); the diagonal
    is perfect agreement in distribution."""
    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot()
    if len(candidate) and len(production):
        levels = np.linspace(0, 1, 101)
        axes.plot(np.quantile(production, levels), np.quantile(candidate, levels), "o",
                  markersize=3)
    axes.plot([0, 1], [0, 1], "--", color="grey", linewidth=1)
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"{names[1]} score quantile",
             ylabel=f"{names[0]} score quantile", title="Q-Q: candidate vs production")
    figure.tight_layout()
    _save(figure, path)


def histograms(candidate: np.ndarray, production: np.ndarray, path: Path,
               names: tuple[str, str]) -> None:
    """The two score distributions side by side, on the same bins and axes."""
    figure = Figure(figsize=(9, 3.6))
    bins = np.linspace(0, 1, 21)
    axes = figure.subplots(1, 2, sharex=True, sharey=True)
    for ax, scores, name, color in ((axes[0], production, names[1], "tab:blue"),
                                    (axes[1], candidate, names[0], "tab:orange")):
        ax.hist(scores, bins=bins, color=color)
        ax.set(title=f"{name} ({len(scores):,} rows)", xlabel="score")
    axes[0].set_ylabel("rows")
    figure.tight_layout()
    _save(figure, path)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _html(summary: dict[str, Any]) -> str:
    verdict = "PASSED" if summary["passed"] else "FAILED"
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_number(summary[k])}</td></tr>"
                   for k in ("candidate", "against", "rows", "agreement", "quantile_distance",
                             "input_psi", "input_psi_feature", "label_agreement", "psi",
                             "ks_statistic", "ks_pvalue", "inputs", "invalid_inputs", "scored",
                             "unmatched", "decisions", "rows_per_s", "min_agreement",
                             "max_quantile_distance", "max_psi"))
    q = summary["quantiles"]
    quantile_rows = "".join(
        f"<tr><td>{level:g}</td><td>{_number(c)}</td><td>{_number(p)}</td></tr>"
        for level, c, p in zip(q["levels"], q["candidate"], q["production"], strict=True))
    failures = "".join(f"<li>{html.escape(f)}</li>" for f in summary["failures"])
    skipped = "".join(f"<li>{html.escape(s['path'])}: {html.escape(s['reason'])}</li>"
                      for s in summary["skipped_files"])
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Backtest {html.escape(summary['candidate'])}</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
.passed{{color:#070}}.failed{{color:#b00}}</style></head><body>
<h1>Backtest: {html.escape(summary['candidate'])} vs production ({html.escape(summary['against'])})
</h1>
<p class="{verdict.lower()}"><b>{verdict}</b></p>
{f"<ul>{failures}</ul>" if failures else ""}
<h2>Summary</h2><table>{rows}</table>
<h2>Score quantiles</h2>
<table><tr><th>level</th><th>candidate</th><th>production</th></tr>{quantile_rows}</table>
<h2>Plots</h2><img src="{QQ_PLOT}" alt="q-q plot"><br><img src="{HISTOGRAMS}" alt="histograms">
{f"<h2>Skipped archive files</h2><ul>{skipped}</ul>" if skipped else ""}
</body></html>
"""


def write_report(directory: Path, summary: dict[str, Any], candidate: np.ndarray,
                 production: np.ndarray) -> Path:
    """Write the report files into ``directory`` (created); returns the HTML file's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = (f"candidate {summary['candidate']}", f"production {summary['against']}")
    qq_plot(candidate, production, directory / QQ_PLOT, names)
    histograms(candidate, production, directory / HISTOGRAMS, names)
    (directory / SUMMARY).write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    (directory / REPORT).write_text(_html(summary))
    return directory / REPORT


def _jsonable(value: Any) -> Any:
    """NaN is not JSON: it becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
