"""What the monitor shows: Prometheus text for ``/metrics`` and JSON for ``/windows``.

Window series describe the latest *closed* window (its end plus grace has
passed), so a scrape never sees a half-filled window; ``/windows`` shows every
kept window, open ones included.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "rendezvous_monitor"

REGISTRY = CollectorRegistry()
RECORDS = Counter(f"{PREFIX}_records", "Records consumed, before sampling.", ["topic"],
                  registry=REGISTRY)
PROCESSED = Counter(f"{PREFIX}_processed", "Records aggregated (after sampling).", ["topic"],
                    registry=REGISTRY)
INVALID = Counter(f"{PREFIX}_invalid", "Records that could not be decoded or did not fit.",
                  ["topic"], registry=REGISTRY)
ALERTS = Counter(f"{PREFIX}_alerts", "Alerts sent to the alerts topic.", ["cause"],
                 registry=REGISTRY)
SAMPLE_RATIO = Gauge(f"{PREFIX}_sample_ratio", "Fraction of requests aggregated (by id hash).",
                     registry=REGISTRY)
LAG = Gauge(f"{PREFIX}_consumer_lag", "Records not yet consumed, per topic.", ["topic"],
            registry=REGISTRY)
BATCH_LATENCY = Histogram(
    f"{PREFIX}_batch_latency_seconds", "Time to aggregate one slice of records (up to 256).",
    buckets=(1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1), registry=REGISTRY)


def _finite(value: float) -> bool:
    return value is not None and not math.isnan(value)


class WindowCollector(Collector):
    """Gauges of the latest closed window, read from the view the monitor last published."""

    def __init__(self) -> None:
        self.view: dict[str, Any] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        view = self.view
        if view is None:
            return
        g = {name: GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
             for name, doc, labels in _WINDOW_SERIES}
        g["window_start_seconds"].add_metric([], view["start"] / 1000)
        g["window_end_seconds"].add_metric([], view["end"] / 1000)
        for model, m in view["models"].items():
            if m.get("task"):
                g["model_task"].add_metric([model, m["task"]], 1)
            g["scores"].add_metric([model], m["scores"])
            g["candidates"].add_metric([model], m["candidates"])
            g["late"].add_metric([model], m["late"])
            for source in ("service_ms", "latency_ms"):
                for q, value in m[source].items():
                    if _finite(value):
                        g["latency_ms"].add_metric([model, source.removesuffix("_ms"),
                                                    _level(q)], value)
            for q, value in m["score_quantiles"].items():
                if _finite(value):
                    g["score_quantile"].add_metric([model, _level(q)], value)
            fb = m.get("feedback")
            if fb:
                g["labelled"].add_metric([model], fb["labelled"])
                for name in ("accuracy", "auc", "rmse", "mae"):  # those of the model's task
                    if _finite(fb.get(name, math.nan)):
                        g[name].add_metric([model], fb[name])
        decisions = view.get("decisions")
        if decisions:
            g["decisions"].add_metric([], decisions["count"])
            g["provisional"].add_metric([], decisions.get("provisional", 0))
            for status, rate in decisions["rates"].items():
                if _finite(rate):
                    g["decision_rate"].add_metric([status], rate)
            if _finite(decisions.get("in_time_rate", math.nan)):
                g["decided_in_time_rate"].add_metric([], decisions["in_time_rate"])
            for q, value in decisions.get("end_to_end_ms", {}).items():
                if _finite(value):
                    g["end_to_end_ms"].add_metric([_level(q)], value)
            for status, by_model in decisions.get("results", {}).items():
                for model, count in by_model.items():
                    g["results"].add_metric([status, model], count)
        pair = view.get("pair")
        if pair:
            for name in ("disagreement", "score_distance", "quantile_distance", "rank_gap"):
                if _finite(pair[name]):
                    g[name].add_metric([pair["primary"], pair["canary"]], pair[name])
        drift = view.get("drift")
        if drift:
            g["inputs"].add_metric([], drift["inputs"])
            for feature, value in drift["psi"].items():
                if _finite(value):
                    g["psi"].add_metric([feature], value)
            for feature, count in drift.get("unseen", {}).items():
                g["unseen"].add_metric([feature], count)
        yield from g.values()


def _level(q: str) -> str:
    return str(int(q[1:]) / 100)


_WINDOW_SERIES = [
    ("window_start_seconds", "Start of the window the other gauges describe.", []),
    ("window_end_seconds", "End of that window.", []),
    ("model_task", "Each model's task from its manifest (binary, multiclass or regression): "
     "which of accuracy, auc, rmse and mae it has; always 1.", ["model", "task"]),
    ("scores", "Scores received from each model's workers in the window.", ["model"]),
    ("candidates", "Candidates of each model in the window's decisions.", ["model"]),
    ("late", "Answers of each model that came after their request was decided (reported by "
     "serve on the window's decisions).", ["model"]),
    ("latency_ms", "Latency quantiles: source=service (worker scored-received) or "
     "latency (as the rendezvous saw it).", ["model", "source", "quantile"]),
    ("score_quantile", "Score quantiles per model (DDSketch, 1% relative accuracy).",
     ["model", "quantile"]),
    ("decisions", "Decisions in the window.", []),
    ("provisional", "Decisions in the window whose progressive request got a provisional "
     "result first (counted apart: a provisional result is no decision).", []),
    ("decision_rate", "Fraction of decisions per status (ok, fallback, timeout, rejected).",
     ["status"]),
    ("decided_in_time_rate", "Fraction of decisions made by their decision deadline (the "
     "request's deadline less serve's delivery margin). What serve knows: whether the caller "
     "received the result in time only the caller sees.", []),
    ("end_to_end_ms", "Quantiles of request ts to decision, ms (delivery not included).",
     ["quantile"]),
    ("results", "Decisions of the window per status and chosen model (- when none).",
     ["status", "model"]),
    ("disagreement", "Fraction of requests where canary and primary predict different classes "
     "(binary: score >= 0.5 or not; multiclass: different labels; none for regression).",
     ["primary", "canary"]),
    ("score_distance", "Mean absolute difference of canary and primary score quantiles.",
     ["primary", "canary"]),
    ("quantile_distance", "The same after mapping each score to its quantile under its own "
     "model's training reference (0..1, scale-free).", ["primary", "canary"]),
    ("rank_gap", "Mean |quantile(primary) - quantile(canary)| per request, each under its "
     "own reference: 0 when both rank requests alike.", ["primary", "canary"]),
    ("inputs", "Input events binned for drift in the window.", []),
    ("psi", "Population stability index of each feature against the training reference "
     "(numbers: on its quantile bins; strings: on its category shares).", ["feature"]),
    ("unseen", "Inputs of the window whose string feature had a category the model's "
     "manifest never saw.", ["feature"]),
    ("labelled", "Decisions of the window joined to a feedback label, per model.", ["model"]),
    ("accuracy", "Accuracy of each classifier on the labelled requests of the window "
     "(binary: score >= 0.5 predicts the positive class; multiclass: its label).", ["model"]),
    ("auc", "ROC AUC of each binary classifier on the labelled requests of the window.",
     ["model"]),
    ("rmse", "Root mean squared error of each regression model on the labelled requests of "
     "the window.", ["model"]),
    ("mae", "Mean absolute error of each regression model on the labelled requests of the "
     "window.", ["model"]),
]

WINDOWS = WindowCollector()
REGISTRY.register(WINDOWS)


class PipelineCollector(Collector):
    """Gauges of what the monitor reads from the broker (not from records): each consumer
    group's lag and the registry's live and shadow versions
    (:class:`~rendezvous.monitor.pipeline.PipelineView`)."""

    def __init__(self) -> None:
        self.view: dict[str, Any] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        view = self.view
        if view is None or view.get("at") is None:
            return
        lag = GaugeMetricFamily(f"{PREFIX}_group_lag", "Records of the pipeline's topics not "
                                "yet committed by each consumer group (high watermark - "
                                "committed offset), read from the broker once per window.",
                                labels=["group"])
        for group, found in view.get("lag", {}).items():
            lag.add_metric([group], found["total"])
        versions = GaugeMetricFamily(f"{PREFIX}_model_version", "The registry's versions in "
                                     "force per model (role live or shadow); always 1.",
                                     labels=["model", "version", "role"])
        for model, entry in view.get("versions", {}).items():
            versions.add_metric([model, entry["live"], "live"], 1)
            for version in entry["shadow"]:
                versions.add_metric([model, version, "shadow"], 1)
        yield lag
        yield versions


PIPELINE = PipelineCollector()
REGISTRY.register(PIPELINE)


def metrics_text() -> bytes:
    """The Prometheus exposition of every monitor series."""
    return generate_latest(REGISTRY)


def windows_json(views: list[dict[str, Any]], sample_ratio: float,
                 **extra: Any) -> bytes:
    """``/windows``: the kept windows, newest first, and ``extra`` top-level fields (the
    page's: open alerts, thresholds, the pipeline's versions and lags); NaN becomes null."""
    return msgspec.json.encode({"sample_ratio": sample_ratio, "windows": _nan_to_none(views),
                                **_nan_to_none(extra)})


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value
