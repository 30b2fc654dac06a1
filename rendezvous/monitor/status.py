"""``rendezvous status``: one table of the live pipeline, scraped from /metrics endpoints.

Each component exports its own series (see :data:`KINDS`); an endpoint's kind is
recognised by the series it exports, so any name can be given to ``--endpoint``.
Counters are summed over their labels; a counter that is declared but has no
sample yet reads 0 (nothing counted); a gauge or histogram without samples reads
``-`` (nothing measured yet).
"""

from __future__ import annotations

import math
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Series:
    """One metric family, optionally only the samples with these labels."""

    family: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Columns:
    """Where one kind of component exports each column of the table."""

    processed: tuple[Series, ...]
    invalid: tuple[Series, ...]
    lag: Series
    batch: Series
    """A histogram of seconds; the table shows its p99 in ms."""


KINDS: dict[str, Columns] = {
    "worker": Columns(
        processed=(Series("rendezvous_worker_records"),),
        invalid=(Series("rendezvous_worker_invalid"),),
        lag=Series("rendezvous_worker_lag"),
        batch=Series("rendezvous_worker_batch_seconds")),
    "serve": Columns(
        processed=(Series("rendezvous_serve_results"),),
        invalid=(Series("rendezvous_serve_results", {"status": "rejected"}),
                 Series("rendezvous_bad_records", {"component": "serve"})),
        lag=Series("rendezvous_serve_lag"),
        batch=Series("rendezvous_serve_batch_seconds")),
    "decoy": Columns(
        processed=(Series("rendezvous_decoy_records"),),
        invalid=(Series("rendezvous_bad_records", {"component": "decoy"}),),
        lag=Series("rendezvous_decoy_lag"),
        batch=Series("rendezvous_decoy_batch_seconds")),
    "monitor": Columns(
        processed=(Series("rendezvous_monitor_records"),),
        invalid=(Series("rendezvous_monitor_invalid"),),  # bad records included
        lag=Series("rendezvous_monitor_consumer_lag"),
        batch=Series("rendezvous_monitor_batch_latency_seconds")),
    "gateway": Columns(
        processed=(Series("rendezvous_gateway_rows"),),
        invalid=(Series("rendezvous_gateway_requests", {"code": "400"}),),
        lag=Series("rendezvous_gateway_pending_rows"),
        batch=Series("rendezvous_gateway_request_seconds")),
}
"""Per kind of component: processed = records it consumed (serve: results it emitted),
invalid = records it rejected or skipped, lag = records of its topics not consumed yet,
batch = time of one processing step (the monitor's step is one record, the gateway's one
HTTP request; its processed = rows answered, invalid = requests refused as malformed, lag =
rows waiting for their result)."""


@dataclass(frozen=True)
class Row:
    """One component's line of the table (None = not exported or nothing measured yet)."""

    component: str
    kind: str | None = None
    processed: float | None = None
    invalid: float | None = None
    lag: float | None = None
    p99_batch_ms: float | None = None
    error: str | None = None


def summarise(component: str, text: str) -> Row:
    """The row of one component from its Prometheus exposition ``text``."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    kind = next((k for k, c in KINDS.items() if c.processed[0].family in families), None)
    if kind is None:
        return Row(component, error="no rendezvous component's series at this endpoint")
    columns = KINDS[kind]
    return Row(component, kind, _total(families, columns.processed),
               _total(families, columns.invalid), _total(families, (columns.lag,), gauge=True),
               _p99_ms(_buckets(families.get(columns.batch.family))))


def _matches(labels: dict[str, str], series: Series) -> bool:
    return all(labels.get(k) == v for k, v in series.labels.items())


def _total(families: dict[str, Metric], series: tuple[Series, ...],
           gauge: bool = False) -> float | None:
    """Sum of the series' samples; None if no family is exported (or, for a gauge, if it
    has no sample yet)."""
    found, total = False, 0.0
    for one in series:
        family = families.get(one.family)
        if family is None:
            continue
        for sample in family.samples:
            if sample.name in (one.family, f"{one.family}_total") and _matches(sample.labels,
                                                                                one):
                found, total = True, total + sample.value
        found = found or not gauge  # a declared counter with no sample has counted 0
    return total if found else None


def _buckets(family: Metric | None) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for sample in family.samples if family is not None else ():
        if sample.name.endswith("_bucket"):
            le = float(sample.labels["le"])
            buckets[le] = buckets.get(le, 0.0) + sample.value
    return buckets


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
        return Row(component, error=f"unreachable: {getattr(exc, 'reason', exc)}")
    return summarise(component, text)


def render(rows: list[Row]) -> str:
    """The table as text, one line per component."""
    header = (f"{'component':16} {'kind':8} {'processed':>12} {'invalid':>10} {'lag':>10} "
              f"{'p99 batch ms':>13}")
    lines = [header]
    for row in rows:
        if row.error:
            lines.append(f"{row.component:16} {row.error}")
            continue
        lines.append(f"{row.component:16} {row.kind or '?':8} {_cell(row.processed):>12} "
                     f"{_cell(row.invalid):>10} "
                     f"{_cell(row.lag):>10} {_cell(row.p99_batch_ms, 2):>13}")
    return "\n".join(lines)


def _cell(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"
