"""The backtest report directory: ``summary.json``, ``report.html`` and the plots of the task.

Binary and regression: ``qq.png`` (candidate vs production score quantiles) and
``histograms.png`` (the two score distributions); multiclass: ``confusion.png`` (the
candidate's class against production's, per request) and ``histograms.png`` (the
predicted class's probability on each side). ``summary.json`` holds every number, with
null for one that cannot be computed (never NaN).

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
CONFUSION = "confusion.png"
MAX_ANNOTATED_CLASSES = 20
"""A confusion matrix of more classes than this is drawn without a count in each cell."""


def plots_for(task: str) -> tuple[str, ...]:
    """The plot files of a report of a model of ``task``."""
    return (CONFUSION, HISTOGRAMS) if task == "multiclass" else (QQ_PLOT, HISTOGRAMS)


def score_range(*scores: np.ndarray, task: str = "binary") -> tuple[float, float]:
    """The axis range of scores: [0, 1] for probabilities, the data's range (padded) for a
    regression's values."""
    if task != "regression":
        return 0.0, 1.0
    values = np.concatenate([np.asarray(s, dtype=np.float64) for s in scores] or [np.zeros(0)])
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.05 or max(abs(lo) * 0.05, 0.5)
    return lo - pad, hi + pad


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


def qq_plot(candidate: np.ndarray, production: np.ndarray, path: Path,
            names: tuple[str, str], limits: tuple[float, float] = (0.0, 1.0)) -> None:
    """Candidate quantiles against production quantiles (percentiles 0..100); the diagonal
    is perfect agreement in distribution."""
    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot()
    if len(candidate) and len(production):
        levels = np.linspace(0, 1, 101)
        axes.plot(np.quantile(production, levels), np.quantile(candidate, levels), "o",
                  markersize=3)
    axes.plot(limits, limits, "--", color="grey", linewidth=1)
    axes.set(xlim=limits, ylim=limits, xlabel=f"{names[1]} score quantile",
             ylabel=f"{names[0]} score quantile", title="Q-Q: candidate vs production")
    figure.tight_layout()
    _save(figure, path)


def histograms(candidate: np.ndarray, production: np.ndarray, path: Path,
               names: tuple[str, str], limits: tuple[float, float] = (0.0, 1.0),
               xlabel: str = "score") -> None:
    """The two score distributions side by side, on the same bins and axes."""
    figure = Figure(figsize=(9, 3.6))
    bins = np.linspace(limits[0], limits[1], 21)
    axes = figure.subplots(1, 2, sharex=True, sharey=True)
    for ax, scores, name, color in ((axes[0], production, names[1], "tab:blue"),
                                    (axes[1], candidate, names[0], "tab:orange")):
        ax.hist(scores, bins=bins, color=color)
        ax.set(title=f"{name} ({len(scores):,} rows)", xlabel=xlabel)
    axes[0].set_ylabel("rows")
    figure.tight_layout()
    _save(figure, path)


def confusion_plot(labels: list[str], counts: list[list[int]], path: Path,
                   names: tuple[str, str]) -> None:
    """Production's class (rows) against the candidate's (columns), each cell's colour its
    share of the row: a candidate that agrees is a dark diagonal."""
    k = max(len(labels), 1)
    side = min(max(4.0, 0.6 * k + 2.0), 16.0)
    figure = Figure(figsize=(side + 1.0, side))
    axes = figure.add_subplot()
    matrix = np.array(counts, dtype=np.float64).reshape(len(labels), len(labels))
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    image = axes.imshow(shares if len(labels) else np.zeros((1, 1)), cmap="Blues", vmin=0,
                        vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the row")
    if 0 < len(labels) <= MAX_ANNOTATED_CLASSES:
        for i in range(len(labels)):
            for j in range(len(labels)):
                axes.text(j, i, f"{int(matrix[i, j]):,}", ha="center", va="center",
                          fontsize=8, color="white" if shares[i, j] > 0.5 else "black")
    axes.set_xticks(range(len(labels)), labels, rotation=45 if k > 6 else 0, ha="right"
                    if k > 6 else "center")
    axes.set_yticks(range(len(labels)), labels)
    axes.set(xlabel=f"{names[0]}: class", ylabel=f"{names[1]}: class",
             title="Classes: candidate vs production")
    figure.tight_layout()
    _save(figure, path)


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


SUMMARY_KEYS = {
    "binary": ("agreement", "quantile_distance", "input_psi", "input_psi_feature",
               "label_agreement", "threshold", "psi", "ks_statistic", "ks_pvalue"),
    "regression": ("agreement", "quantile_distance", "input_psi", "input_psi_feature", "psi",
                   "ks_statistic", "ks_pvalue"),
    "multiclass": ("label_agreement", "input_psi", "input_psi_feature", "psi", "ks_statistic",
                   "ks_pvalue"),
}
"""The numbers the HTML summary shows per task (summary.json has them all)."""
THRESHOLD_KEYS = {
    "binary": ("min_agreement", "max_quantile_distance", "max_psi"),
    "regression": ("min_agreement", "max_quantile_distance", "max_psi"),
    "multiclass": ("min_label_agreement", "max_psi"),
}


def _table(rows: list[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{_number(v)}</td></tr>"
                               for k, v in rows) + "</table>"


def _labels_html(labels: dict[str, Any] | None) -> str:
    if not labels:
        return ""
    names, counts = labels["confusion"]["labels"], labels["confusion"]["counts"]
    header = "".join(f"<th>{html.escape(str(n))}</th>" for n in names)
    body = "".join(f"<tr><th>{html.escape(str(n))}</th>"
                   + "".join(f"<td>{c:,}</td>" for c in row) + "</tr>"
                   for n, row in zip(names, counts, strict=True))
    return (f"<h2>Classes</h2><p>Production's class recorded for "
            f"{labels['labelled_rows']:,} requests, not for {labels['unlabelled_rows']:,}.</p>"
            "<p>Rows: production's class; columns: the candidate's.</p>"
            "<table><tr><th></th>" + header + "</tr>" + body
            + "</table>")


def _quality_html(quality: dict[str, Any] | None) -> str:
    if not quality:
        return ""
    candidate, production = quality["candidate"], quality["production"]
    metrics = [k for k in candidate if k != "rows"]
    rows = "".join(f"<tr><th>{html.escape(m)}</th><td>{_number(candidate.get(m))}</td>"
                   f"<td>{_number(production.get(m))}</td></tr>" for m in ["rows", *metrics])
    return (f"<h2>Quality against feedback ({quality['labelled_rows']:,} labelled requests)"
            "</h2><table><tr><th></th><th>candidate</th><th>production</th></tr>"
            f"{rows}</table>")


def _html(summary: dict[str, Any]) -> str:
    verdict = "PASSED" if summary["passed"] else "FAILED"
    task = summary.get("task", "binary")
    rows = _table([(k, summary[k]) for k in ("candidate", "against", "task", "rows")]
                  + [(k, summary[k]) for k in SUMMARY_KEYS[task]]
                  + [(k, summary[k]) for k in ("inputs", "invalid_inputs", "scored",
                                               "unmatched", "decisions", "rows_per_s")]
                  + [(k, summary[k]) for k in THRESHOLD_KEYS[task]])
    q = summary["quantiles"]
    quantile_rows = "".join(
        f"<tr><td>{level:g}</td><td>{_number(c)}</td><td>{_number(p)}</td></tr>"
        for level, c, p in zip(q["levels"], q["candidate"], q["production"], strict=True))
    what = {"regression": "Predicted value quantiles",
            "multiclass": "Predicted class probability quantiles"}.get(task, "Score quantiles")
    failures = "".join(f"<li>{html.escape(f)}</li>" for f in summary["failures"])
    skipped = "".join(f"<li>{html.escape(s['path'])}: {html.escape(s['reason'])}</li>"
                      for s in summary["skipped_files"])
    images = "<br>".join(f'<img src="{name}" alt="{name[:-4]}">' for name in plots_for(task))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Backtest {html.escape(summary['candidate'])}</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
.passed{{color:#070}}.failed{{color:#b00}}</style></head><body>
<h1>Backtest: {html.escape(summary['candidate'])} vs production ({html.escape(summary['against'])})
</h1>
<p class="{verdict.lower()}"><b>{verdict}</b> ({html.escape(task)}; gates:
{html.escape(", ".join(summary.get("gates", [])))})</p>
{f"<ul>{failures}</ul>" if failures else ""}
<h2>Summary</h2>{rows}
{_labels_html(summary.get("labels"))}
{_quality_html(summary.get("quality"))}
<h2>{what}</h2>
<table><tr><th>level</th><th>candidate</th><th>production</th></tr>{quantile_rows}</table>
<h2>Plots</h2>{images}
{f"<h2>Skipped archive files</h2><ul>{skipped}</ul>" if skipped else ""}
</body></html>
"""


def write_report(directory: Path, summary: dict[str, Any], candidate: np.ndarray,
                 production: np.ndarray) -> Path:
    """Write the report files of the summary's task into ``directory`` (created); returns
    the HTML file's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    task = summary.get("task", "binary")
    names = (f"candidate {summary['candidate']}", f"production {summary['against']}")
    limits = score_range(candidate, production, task=task)
    if task == "multiclass":
        confusion = (summary.get("labels") or {}).get("confusion") or {"labels": [],
                                                                       "counts": []}
        confusion_plot(confusion["labels"], confusion["counts"], directory / CONFUSION, names)
        histograms(candidate, production, directory / HISTOGRAMS, names, limits,
                   "predicted class probability")
    else:
        xlabel = "predicted value" if task == "regression" else "score"
        qq_plot(candidate, production, directory / QQ_PLOT, names, limits)
        histograms(candidate, production, directory / HISTOGRAMS, names, limits, xlabel)
    (directory / SUMMARY).write_text(
        json.dumps(_jsonable(summary), indent=2, allow_nan=False) + "\n")
    (directory / REPORT).write_text(_html(summary))
    return directory / REPORT


def _jsonable(value: Any) -> Any:
    """NaN is not JSON: it becomes null (numpy numbers become Python's)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
