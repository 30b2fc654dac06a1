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
"""The rule of a model the policy says nothing about: a probability in [0, 1]."""


class CompiledPolicy:
    """A validated :class:`Policy` with a rank per preferred model (0 = most preferred), and,
    when the policy maps scores and ``scales`` are given, the map of every other model
    version's scores onto the preferred model's scale."""

    __slots__ = ("deadline_ms", "in_time", "policy", "prefer", "rank", "rules", "to_preferred")

    def __init__(self, policy: Policy, scales: Scales | None = None) -> None:
        check_policy(policy)
        self.policy = policy
        self.prefer: tuple[str, ...] = tuple(policy.prefer)
        self.rank: dict[str, int] = {name: i for i, name in enumerate(self.prefer)}
        self.rules: dict[str, ModelRule] = dict(policy.rules)
        self.deadline_ms: float = float(policy.deadline_ms)
        self.to_preferred: dict[str, dict[str, ScaleMap]] = (
            scales.towards(self.prefer[0]) if scales is not None and policy.map_scores else {})
        self.in_time: bool = policy.prefer_in_time

    def judge(self, score: Score) -> str | None:
        """Why ``score`` is not a valid answer under this policy, or None when it is."""
        rule = self.rules.get(score.model, DEFAULT_RULE)
        value = score.score
        # The common valid case in one expression, on the hot path. NaN fails every
        # comparison and the bounds are finite, so anything doubtful takes the slow path.
        if (
            score.status == "ok"
            and value.__class__ is float
            and rule.min_score <= value <= rule.max_score
            and abs(value - 0.5) * 2.0 >= rule.min_confidence
        ):
            return None
        return judge(score, rule)


def judge(score: Score, rule: ModelRule) -> str | None:
    """Why ``score`` does not count as an answer under ``rule``, or None when it does.

    Valid means: status ``ok``, a finite number inside [min_score, max_score],
    and a confidence ``|score - 0.5| * 2`` of at least ``min_confidence``.
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
    if value < rule.min_score or value > rule.max_score:
        return f"score {value:g} outside [{rule.min_score:g}, {rule.max_score:g}]"
    if rule.min_confidence > 0.0:
        confidence = abs(value - 0.5) * 2.0
        if confidence < rule.min_confidence:
            return f"confidence {confidence:.3g} below {rule.min_confidence:g}"
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
        if not all(math.isfinite(b) for b in bounds):
            raise PolicyError(f"rule for {name}: bounds must be finite")
        if rule.min_score > rule.max_score:
            raise PolicyError(f"rule for {name}: min_score > max_score")
        if not 0.0 <= rule.min_confidence <= 1.0:
            raise PolicyError(f"rule for {name}: min_confidence must be in [0, 1]")
