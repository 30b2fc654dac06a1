"""Per-window aggregates, each small, mergeable and serialisable to bytes.

One aggregate per (kind, subject, window start): a model's scores, the
decisions, the canary-vs-primary pair, the input features, a model's feedback.
Sketches are DDSketch (relative accuracy 1%) stored as their protobuf, so a
window's state can be written to a faust changelog and read back after a
restart exactly as it was.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import msgspec
from ddsketch import DDSketch
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchMessage
from ddsketch.pb.proto import DDSketchProto

from rendezvous.monitor import stats

RELATIVE_ACCURACY = 0.01


def window_start(ts_ms: float, window_ms: int) -> int:
    """Start (epoch ms) of the tumbling window holding ``ts_ms``."""
    return int(ts_ms // window_ms) * window_ms


def new_sketch() -> DDSketch:
    return DDSketch(RELATIVE_ACCURACY)


def sketch_to_bytes(sketch: DDSketch) -> bytes:
    return bytes(DDSketchProto.to_proto(sketch).SerializeToString())


def sketch_from_bytes(data: bytes) -> DDSketch:
    message = DDSketchMessage()
    message.ParseFromString(data)
    return DDSketchProto.from_proto(message)


def quantiles(sketch: DDSketch, levels: tuple[float, ...] = (0.5, 0.99)) -> dict[str, float]:
    """``{"p50": ..., "p99": ...}`` of a sketch (NaN when empty)."""
    out = {}
    for level in levels:
        value = sketch.get_quantile_value(level) if sketch.count else None
        out[f"p{round(level * 100):d}"] = math.nan if value is None else float(value)
    return out


class Aggregate:
    """Base of every window aggregate: counters (ints) plus named sketches."""

    kind: ClassVar[str]
    counters: ClassVar[tuple[str, ...]] = ()
    sketches: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        for name in self.counters:
            setattr(self, name, 0)
        for name in self.sketches:
            setattr(self, name, new_sketch())

    def _extra(self) -> dict[str, Any]:
        return {}

    def _load_extra(self, raw: dict[str, Any]) -> None:
        pass

    def to_bytes(self) -> bytes:
        raw: dict[str, Any] = {name: getattr(self, name) for name in self.counters}
        raw.update({name: sketch_to_bytes(getattr(self, name)) for name in self.sketches})
        raw.update(self._extra())
        return msgspec.msgpack.encode(raw)

    @classmethod
    def from_bytes(cls, data: bytes) -> Aggregate:
        raw = msgspec.msgpack.decode(data)
        agg = cls()
        for name in cls.counters:
            setattr(agg, name, int(raw.get(name, 0)))
        for name in cls.sketches:
            if name in raw:
                setattr(agg, name, sketch_from_bytes(raw[name]))
        agg._load_extra(raw)
        return agg


class ModelWindow(Aggregate):
    """One model in one window: its scores (scores topic) and its candidates (decisions)."""

    kind = "model"
    counters = ("scores", "errors", "candidates", "invalid", "late")
    sketches = ("score", "service_ms", "latency_ms")
    scores: int
    errors: int
    candidates: int
    invalid: int
    late: int
    """Answers that came after their request was decided (serve reports them on decisions)."""
    score: DDSketch
    service_ms: DDSketch
    latency_ms: DDSketch
    # service_ms: scored_ms - received_ms at the worker; latency_ms: what the rendezvous saw

    def view(self) -> dict[str, Any]:
        return {
            "scores": self.scores, "errors": self.errors,
            "candidates": self.candidates, "invalid": self.invalid, "late": self.late,
            "score_quantiles": quantiles(self.score, (0.1, 0.5, 0.9)),
            "service_ms": quantiles(self.service_ms),
            "latency_ms": quantiles(self.latency_ms),
        }


class DecisionWindow(Aggregate):
    """The rendezvous' decisions in one window, by status; ``provisional`` counts the
    decisions whose (progressive) request got a provisional result first, apart from them."""

    kind = "decisions"
    counters = ("count", "ok", "fallback", "timeout", "rejected", "provisional")
    count: int
    ok: int
    fallback: int
    timeout: int
    rejected: int
    provisional: int

    def view(self) -> dict[str, Any]:
        rates = {s: (getattr(self, s) / self.count if self.count else math.nan)
                 for s in ("ok", "fallback", "timeout", "rejected")}
        return {"count": self.count, "rates": rates, "provisional": self.provisional}


class PairWindow(Aggregate):
    """Canary vs primary on the requests both answered validly in one window."""

    kind = "pair"
    counters = ("both", "disagree", "mapped", "rank_gap_ppm")
    sketches = ("primary", "canary", "primary_q", "canary_q")
    both: int
    disagree: int
    mapped: int
    """Pairs whose scores were also mapped to quantiles of their own references."""
    rank_gap_ppm: int
    """Sum of |quantile(primary) - quantile(canary)| over mapped pairs, in millionths."""
    primary: DDSketch
    canary: DDSketch
    primary_q: DDSketch
    canary_q: DDSketch

    def view(self) -> dict[str, Any]:
        return {
            "both": self.both,
            "disagreement": self.disagree / self.both if self.both else math.nan,
            "score_distance": stats.quantile_distance(self.primary, self.canary),
            "quantile_distance": stats.quantile_distance(self.primary_q, self.canary_q),
            "rank_gap": self.rank_gap_ppm / 1e6 / self.mapped if self.mapped else math.nan,
        }


class DriftWindow(Aggregate):
    """Input feature values in one window, binned by the reference's quantile edges."""

    kind = "drift"
    counters = ("inputs", "unfit")
    inputs: int
    unfit: int

    def __init__(self) -> None:
        super().__init__()
        self.bins: dict[str, list[int]] = {}

    def _extra(self) -> dict[str, Any]:
        return {"bins": self.bins}

    def _load_extra(self, raw: dict[str, Any]) -> None:
        self.bins = {k: list(v) for k, v in raw.get("bins", {}).items()}


class FeedbackWindow(Aggregate):
    """One model's predictions that got a label, in the window of their decision."""

    kind = "feedback"
    counters = ("labelled", "correct")
    labelled: int
    correct: int

    def __init__(self) -> None:
        super().__init__()
        self.positives: dict[int, int] = {}
        self.negatives: dict[int, int] = {}

    def add(self, score: float, label: int) -> None:
        self.labelled += 1
        self.correct += int(stats.predicted_label(score) == label)
        hist = self.positives if label == 1 else self.negatives
        b = stats.score_bin(score)
        hist[b] = hist.get(b, 0) + 1

    def view(self) -> dict[str, Any]:
        return {
            "labelled": self.labelled,
            "accuracy": stats.accuracy(self.correct, self.labelled),
            "auc": stats.auc(self.positives, self.negatives),
        }

    def _extra(self) -> dict[str, Any]:
        return {"pos": self.positives, "neg": self.negatives}

    def _load_extra(self, raw: dict[str, Any]) -> None:
        self.positives = {int(k): int(v) for k, v in raw.get("pos", {}).items()}
        self.negatives = {int(k): int(v) for k, v in raw.get("neg", {}).items()}


KINDS: dict[str, type[Aggregate]] = {
    cls.kind: cls for cls in (ModelWindow, DecisionWindow, PairWindow, DriftWindow, FeedbackWindow)
}
