"""The policy as the core uses it: a preference rank per model and a validity rule.

:class:`messages.Policy` is the wire form (on the control topic);
:class:`CompiledPolicy` is the same policy checked once and turned into the
lookups the hot path needs, so deciding a request costs dict reads only.
"""

from __future__ import annotations

import math

from rendezvous.core.errors import PolicyError
from rendezvous.core.scales import ScaleMap, Scales
from rendezvous.messages import ModelRule, Policy, Score

DEFAULT_RULE = ModelRule()
"""The rule of a model the policy says nothing about: a classifier's probability in [0, 1],
a regression's value anything finite."""

INF = math.inf


def bounds(rule: ModelRule) -> tuple[tuple[float, float], tuple[float, float]]:
    """``rule``'s [min, max] score for a classifier's answer (a probability: [0, 1] where
    unset) and for a regression's (a value: unbounded where unset), in that order: index
    it with ``score.label is None``."""
    lo, hi = rule.min_score, rule.max_score
    return ((0.0 if lo is None else lo, 1.0 if hi is None else hi),
            (-INF if lo is None else lo, INF if hi is None else hi))


DEFAULT_BOUNDS = bounds(DEFAULT_RULE)


def confidence(score: Score) -> float | None:
    """How sure a classifier's answer is, in [0, 1]: binary ``|p - 0.5| * 2``; multiclass
    ``(p - 1/K) / (1 - 1/K)`` for the predicted class's probability ``p`` of ``K`` classes
    (the same formula: 0 at a coin toss, 1 at certainty). None for a regression's value."""
    value = score.score
    if value is None or score.label is None:
        return None
    if score.probabilities:
        chance = 1.0 / len(score.probabilities)
        return (value - chance) / (1.0 - chance) if chance < 1.0 else 1.0
    return abs(value - 0.5) * 2.0


class CompiledPolicy:
    """A validated :class:`Policy` with a rank per preferred model (0 = most preferred), and,
    when the policy maps scores and ``scales`` are given, the map of every other model
    version's scores onto the preferred model's scale."""

    __slots__ = ("bounds", "deadline_ms", "in_time", "policy", "prefer", "rank", "rules",
                 "to_preferred")

    def __init__(self, policy: Policy, scales: Scales | None = None) -> None:
        check_policy(policy)
        self.policy = policy
        self.prefer: tuple[str, ...] = tuple(policy.prefer)
        self.rank: dict[str, int] = {name: i for i, name in enumerate(self.prefer)}
        self.rules: dict[str, ModelRule] = dict(policy.rules)
        self.bounds = {name: bounds(rule) for name, rule in self.rules.items()}
        self.deadline_ms: float = float(policy.deadline_ms)
        self.to_preferred: dict[str, dict[str, ScaleMap]] = (
            scales.towards(self.prefer[0]) if scales is not None and policy.map_scores else {})
        self.in_time: bool = policy.prefer_in_time

    def judge(self, score: Score) -> str | None:
        """Why ``score`` is not a valid answer under this policy, or None when it is."""
        rule = self.rules.get(score.model, DEFAULT_RULE)
        low, high = self.bounds.get(score.model, DEFAULT_BOUNDS)[score.label is None]
        value = score.score
        # The common valid case in one expression, on the hot path. NaN and infinities fail
        # (an infinity minus itself is NaN), so anything doubtful takes the slow path.
        if (
            score.status == "ok"
            and value.__class__ is float
            and low <= value <= high
            and value - value == 0.0
            and rule.min_confidence == 0.0
        ):
            return None
        return judge(score, rule)


def judge(score: Score, rule: ModelRule) -> str | None:
    """Why ``score`` does not count as an answer under ``rule``, or None when it does.

    Valid means: status ``ok``, a finite number inside [min_score, max_score] (where
    unset: [0, 1] for a classifier's probability, unbounded for a regression's value), and
    a :func:`confidence` of at least ``min_confidence`` (a regression's answer has none:
    the rule does not apply to it).
    """
    if score.status != "ok":
        if score.reason:
            return f"status {score.status}: {score.reason}"
        return f"status {score.status}"
    value = score.score
    # bool is an int; a True/False "score" is a worker bug, not a probability.
    if value is None or isinstance(value, bool) or not isinstance(value, float | int):
        return "no score"
    if not math.isfinite(value):
        return f"score is {value}"
    low, high = bounds(rule)[score.label is None]
    if value < low or value > high:
        return f"score {value:g} outside [{low:g}, {high:g}]"
    if rule.min_confidence > 0.0:
        sure = confidence(score)
        if sure is not None and sure < rule.min_confidence:
            return f"confidence {sure:.3g} below {rule.min_confidence:g}"
    return None


def check_policy(policy: Policy) -> None:
    """Raise :class:`PolicyError` unless ``policy`` can be applied as it is."""
    if not policy.prefer:
        raise PolicyError("prefer must name at least one model")
    if len(set(policy.prefer)) != len(policy.prefer):
        raise PolicyError(f"prefer names a model twice: {policy.prefer}")
    if not all(isinstance(name, str) and name for name in policy.prefer):
        raise PolicyError("prefer must hold non-empty model names")
    if not (math.isfinite(policy.deadline_ms) and policy.deadline_ms > 0):
        raise PolicyError(f"deadline_ms must be a positive number, got {policy.deadline_ms}")
    for name, rule in policy.rules.items():
        bounds = (rule.min_score, rule.max_score, rule.min_confidence)
        if not all(b is None or math.isfinite(b) for b in bounds):
            raise PolicyError(f"rule for {name}: bounds must be finite")
        if (rule.min_score is not None and rule.max_score is not None
                and rule.min_score > rule.max_score):
            raise PolicyError(f"rule for {name}: min_score > max_score")
        if not 0.0 <= rule.min_confidence <= 1.0:
            raise PolicyError(f"rule for {name}: min_confidence must be in [0, 1]")
