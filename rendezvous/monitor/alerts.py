"""Alert thresholds, and the alert records a closed window produces."""

from __future__ import annotations

import math
from typing import Any

import msgspec

from rendezvous.messages import SCHEMA_VERSION
from rendezvous.settings import Thresholds

__all__ = ["Alert", "Thresholds"]


class Alert(msgspec.Struct, frozen=True):
    """One threshold crossed in one window, on the ``alerts`` topic (JSON)."""

    cause: str
    """``drift``, ``disagreement``, ``timeout_rate`` or ``p99_latency``."""
    value: float
    threshold: float
    window_start: int
    """Epoch ms."""
    window_end: int
    samples: int
    model: str | None = None
    feature: str | None = None
    v: int = SCHEMA_VERSION

    @property
    def subject(self) -> str:
        return self.feature or self.model or "-"

    @property
    def dedupe_key(self) -> str:
        return f"a|{self.window_start}|{self.cause}|{self.subject}"


def _crossed(value: float, threshold: float | None) -> bool:
    return threshold is not None and not math.isnan(value) and value > threshold


def evaluate(view: dict[str, Any], thresholds: Thresholds) -> list[Alert]:
    """The alerts of one window's view (as built by :meth:`MonitorState.window_view`)."""
    start, end, floor = view["start"], view["end"], thresholds.min_samples
    found: list[Alert] = []

    def add(cause: str, value: float, threshold: float, samples: int,
            model: str | None = None, feature: str | None = None) -> None:
        found.append(Alert(cause, round(value, 6), threshold, start, end, samples,
                           model=model, feature=feature))

    drift = view.get("drift")
    if drift and drift["inputs"] >= floor and thresholds.max_psi is not None:
        for feature, value in sorted(drift["psi"].items()):
            if _crossed(value, thresholds.max_psi):
                add("drift", value, thresholds.max_psi, drift["inputs"], feature=feature)
    pair = view.get("pair")
    if (pair and pair["both"] >= floor
            and _crossed(pair["disagreement"], thresholds.max_disagreement)):
        assert thresholds.max_disagreement is not None
        add("disagreement", pair["disagreement"], thresholds.max_disagreement, pair["both"],
            model=pair["canary"])
    decisions = view.get("decisions")
    if (decisions and decisions["count"] >= floor
            and _crossed(decisions["rates"]["timeout"], thresholds.max_timeout_rate)):
        assert thresholds.max_timeout_rate is not None
        add("timeout_rate", decisions["rates"]["timeout"], thresholds.max_timeout_rate,
            decisions["count"])
    if thresholds.max_p99_ms is not None:
        for model, m in sorted(view.get("models", {}).items()):
            samples = max(m["candidates"], m["scores"])
            p99 = m["latency_ms"]["p99"] if m["candidates"] else m["service_ms"]["p99"]
            if samples >= floor and _crossed(p99, thresholds.max_p99_ms):
                add("p99_latency", p99, thresholds.max_p99_ms, samples, model=model)
    return found
