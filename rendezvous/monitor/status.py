"""``rendezvous status``: one table of the live pipeline, scraped from /metrics endpoints.

Any component's series are recognised by suffix, so every component follows
one naming rule: ``rendezvous_<component>_processed_total``,
``..._invalid_total`` (counters, summed over labels), ``..._consumer_lag``
(gauge, summed) and ``..._batch_latency_seconds`` (histogram; p99 estimated
from its buckets).
"""

from __future__ import annotations

import math
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Row:
    """One component's line of the table (None = the component does not export it)."""

    component: str
    processed: float | None = None
    invalid: float | None = None
    lag: float | None = None
    p99_batch_ms: float | None = None
    error: str | None = None


def summarise(component: str, text: str) -> Row:
    """The row of one component from its Prometheus exposition ``text``."""
    totals: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            for suffix in ("_processed_total", "_invalid_total", "_consumer_lag"):
                if name.startswith("rendezvous_") and name.endswith(suffix):
                    totals[suffix] = totals.get(suffix, 0.0) + sample.value
            if name.startswith("rendezvous_") and name.endswith("_batch_latency_seconds_bucket"):
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return Row(component, totals.get("_processed_total"), totals.get("_invalid_total"),
               totals.get("_consumer_lag"), _p99_ms(buckets))


def _p99_ms(buckets: dict[float, float]) -> float | None:
    """The upper bound of the bucket holding the 99th percentile, in ms."""
    if not buckets:
        return None
    ordered = sorted(buckets.items())
    total = ordered[-1][1]
    if total == 0:
        return None
    for le, count in ordered:
        if count >= 0.99 * total:
            return le * 1000 if math.isfinite(le) else math.inf
    return None


def scrape(component: str, url: str, timeout_s: float = 3.0) -> Row:
    """Fetch and summarise one endpoint; an unreachable one is a row with the error."""
    target = url if url.rstrip("/").endswith("/metrics") else url.rstrip("/") + "/metrics"
    try:
        with urllib.request.urlopen(target, timeout=timeout_s) as response:
            text = response.read().decode()
    except OSError as exc:
        return Row(component, error=str(getattr(exc, "reason", exc)))
    return summarise(component, text)


def render(rows: list[Row]) -> str:
    """The table as text, one line per component."""
    header = f"{'component':16} {'processed':>12} {'invalid':>10} {'lag':>10} {'p99 batch ms':>13}"
    lines = [header]
    for row in rows:
        if row.error:
            lines.append(f"{row.component:16} unreachable: {row.error}")
            continue
        lines.append(f"{row.component:16} {_cell(row.processed):>12} {_cell(row.invalid):>10} "
                     f"{_cell(row.lag):>10} {_cell(row.p99_batch_ms, 2):>13}")
    return "\n".join(lines)


def _cell(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"
