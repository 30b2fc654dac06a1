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

    def __init__(self) -> None:
        super().__init__()
        self.version: str | None = None
        """The version of the model's latest candidate in the window (its feedback too)."""

    def _extra(self) -> dict[str, Any]:
        return {"version": self.version} if self.version is not None else {}

    def _load_extra(self, raw: dict[str, Any]) -> None:
        version = raw.get("version")
        self.version = str(version) if version is not None else None

    def view(self) -> dict[str, Any]:
        return {
            "version": self.version, "scores": self.scores, "errors": self.errors,
            "candidates": self.candidates, "invalid": self.invalid, "late": self.late,
            "score_quantiles": quantiles(self.score, (0.1, 0.5, 0.9)),
            "service_ms": quantiles(self.service_ms),
            "latency_ms": quantiles(self.latency_ms),
        }


class DecisionWindow(Aggregate):
    """The rendezvous' decisions in one window, by status; ``provisional`` counts the
    decisions whose (progressive) request got a provisional result first, apart from them.

    ``in_time`` counts those decided by their decision deadline (the request's deadline less
    serve's delivery margin): what serve knows. Whether the caller *received* the result in
    time only the caller sees. ``end_to_end_ms`` is decided - the request's ``ts``, and
    ``results`` counts the decisions per ``status|model`` (model ``-`` when none chose)."""

    kind = "decisions"
    counters = ("count", "ok", "fallback", "timeout", "rejected", "provisional", "in_time")
    sketches = ("end_to_end_ms",)
    count: int
    ok: int
    fallback: int
    timeout: int
    rejected: int
    provisional: int
    in_time: int
    end_to_end_ms: DDSketch

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, int] = {}

    def add_result(self, status: str, model: str | None) -> None:
        key = f"{status}|{model or '-'}"
        self.results[key] = self.results.get(key, 0) + 1

    def view(self) -> dict[str, Any]:
        rates = {s: (getattr(self, s) / self.count if self.count else math.nan)
                 for s in ("ok", "fallback", "timeout", "rejected")}
        results: dict[str, dict[str, int]] = {}
        for key, n in sorted(self.results.items()):
            status, _, model = key.partition("|")
            results.setdefault(status, {})[model] = n
        return {"count": self.count, "rates": rates, "provisional": self.provisional,
                "in_time": self.in_time,
                "in_time_rate": self.in_time / self.count if self.count else math.nan,
                "end_to_end_ms": quantiles(self.end_to_end_ms), "results": results}

    def _extra(self) -> dict[str, Any]:
        return {"results": self.results} if self.results else {}

    def _load_extra(self, raw: dict[str, Any]) -> None:
        self.results = {str(k): int(v) for k, v in raw.get("results", {}).items()}


class PairWindow(Aggregate):
    """Canary vs primary on the requests both answered validly in one window.

    ``disagree`` counts the pairs that predict different classes: binary, one score
    >= 0.5 and the other not; multiclass, different labels. A pair whose classes cannot be
    compared (regression, a label missing, models of different tasks) is ``uncompared``:
    the scores' quantile distance is the comparison then."""

    kind = "pair"
    counters = ("both", "disagree", "mapped", "rank_gap_ppm", "uncompared")
    sketches = ("primary", "canary", "primary_q", "canary_q")
    both: int
    disagree: int
    mapped: int
    """Pairs whose scores were also mapped to quantiles of their own references."""
    rank_gap_ppm: int
    """Sum of |quantile(primary) - quantile(canary)| over mapped pairs, in millionths."""
    uncompared: int
    """Pairs whose predicted classes were not compared (regression, a label missing)."""
    primary: DDSketch
    canary: DDSketch
    primary_q: DDSketch
    canary_q: DDSketch

    def view(self) -> dict[str, Any]:
        compared = self.both - self.uncompared
        return {
            "both": self.both,
            "compared": compared,
            "disagreement": self.disagree / compared if compared > 0 else math.nan,
            "score_distance": stats.quantile_distance(self.primary, self.canary),
            "quantile_distance": stats.quantile_distance(self.primary_q, self.canary_q),
            "rank_gap": self.rank_gap_ppm / 1e6 / self.mapped if self.mapped else math.nan,
        }


class DriftWindow(Aggregate):
    """Input feature values in one window, binned by the reference (numbers: its quantile
    edges; strings: its categories, the rest, and a last bin for an unseen category), with
    the first few unseen categories of each string feature."""

    kind = "drift"
    counters = ("inputs", "unfit")
    inputs: int
    unfit: int

    def __init__(self) -> None:
        super().__init__()
        self.bins: dict[str, list[int]] = {}
        self.unseen_examples: dict[str, list[str]] = {}

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"bins": self.bins}
        if self.unseen_examples:
            extra["unseen"] = self.unseen_examples
        return extra

    def _load_extra(self, raw: dict[str, Any]) -> None:
        self.bins = {k: list(v) for k, v in raw.get("bins", {}).items()}
        self.unseen_examples = {k: [str(x) for x in v] for k, v in raw.get("unseen", {}).items()}


class FeedbackWindow(Aggregate):
    """One model's predictions that got a label, in the window of their decision.

    Classifiers: ``correct`` of ``classified`` (labels compared as text, so a label
    ``1`` sent as JSON matches a model's class ``1``), and for a binary model the score
    histograms of each true class (AUC). Regression: squared and absolute errors of
    ``valued`` predictions. ``unfit``: labels that could not be compared (a regression's
    label that is no number, a multiclass prediction without its label)."""

    kind = "feedback"
    counters = ("labelled", "correct", "classified", "valued", "unfit")
    labelled: int
    correct: int
    classified: int
    valued: int
    unfit: int

    def __init__(self) -> None:
        super().__init__()
        self.positives: dict[int, int] = {}
        self.negatives: dict[int, int] = {}
        self.squared_error = 0.0
        self.absolute_error = 0.0

    def add(self, score: float, label: int) -> None:
        """A binary prediction with classes 0 and 1 (:meth:`add_binary`)."""
        self.add_binary(score, stats.label_key(label), "0", "1")

    def add_binary(self, score: float, truth: str, negative: str, positive: str) -> None:
        """A binary model's ``score`` (P(positive)) and the true class ``truth``, each class
        as :func:`stats.label_key`: the prediction is ``positive`` when score >= 0.5."""
        self.labelled += 1
        self.classified += 1
        predicted = positive if stats.predicted_label(score) else negative
        self.correct += predicted == truth
        if truth == positive:
            hist = self.positives
        elif truth == negative:
            hist = self.negatives
        else:  # a label that is neither class: wrong, and no part of the AUC
            return
        b = stats.score_bin(score)
        hist[b] = hist.get(b, 0) + 1

    def add_class(self, predicted: str, truth: str) -> None:
        """A classifier's predicted class and the true one (as :func:`stats.label_key`)."""
        self.labelled += 1
        self.classified += 1
        self.correct += predicted == truth

    def add_value(self, predicted: float, truth: float) -> None:
        """A regression's predicted value and the true one."""
        self.labelled += 1
        self.valued += 1
        error = predicted - truth
        self.squared_error += error * error
        self.absolute_error += abs(error)

    def add_unfit(self) -> None:
        """A label that could not be compared with the prediction."""
        self.labelled += 1
        self.unfit += 1

    def view(self) -> dict[str, Any]:
        valued = self.valued
        return {
            "labelled": self.labelled,
            "accuracy": stats.accuracy(self.correct, self.classified),
            "auc": stats.auc(self.positives, self.negatives),
            "rmse": math.sqrt(self.squared_error / valued) if valued else math.nan,
            "mae": self.absolute_error / valued if valued else math.nan,
            "unfit": self.unfit,
        }

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"pos": self.positives, "neg": self.negatives}
        if self.valued:
            extra.update(se=self.squared_error, ae=self.absolute_error)
        return extra

    def _load_extra(self, raw: dict[str, Any]) -> None:
        self.positives = {int(k): int(v) for k, v in raw.get("pos", {}).items()}
        self.negatives = {int(k): int(v) for k, v in raw.get("neg", {}).items()}
        self.squared_error = float(raw.get("se", 0.0))
        self.absolute_error = float(raw.get("ae", 0.0))
        if "classified" not in raw:  # written before regression: every label was a class
            self.classified = self.labelled


KINDS: dict[str, type[Aggregate]] = {
    cls.kind: cls for cls in (ModelWindow, DecisionWindow, PairWindow, DriftWindow, FeedbackWindow)
}
