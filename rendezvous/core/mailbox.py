"""A mailbox per request, and the bounded stores around it.

:class:`Mailbox` collects one request's answers and knows when it can decide
and what. :class:`Orphans` holds answers whose request has not been seen yet
(scores and inputs are different topics, so a fast model can beat its own
input); :class:`DecidedIds` remembers which requests were already answered, so
a redelivered request is never answered twice. Both are bounded.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable

import msgspec

from rendezvous.core.policy import CompiledPolicy
from rendezvous.messages import Candidate, Decision, Score, Scored, ScoredStatus

UNMAPPED_MULTICLASS = "unmapped:multiclass"
"""``Decision.quantiles`` of a multiclass fallback: its score was left on its own scale."""


class Outcome(msgspec.Struct, frozen=True):
    """One decision: the result for the caller and the record of why; or, with ``decision``
    None, a provisional result of a progressive request (its final outcome follows).

    In process only, never encoded: the runner encodes ``scored`` and ``decision``.
    (A Struct rather than a NamedTuple: it is built on every decision, in C.)
    """

    request_id: str
    scored: Scored
    decision: Decision | None

    @property
    def final(self) -> bool:
        """True for the one decision of a request; False for a provisional result."""
        return self.decision is not None


class Mailbox:
    """The answers to one request, and the decision they lead to.

    Each answer is kept as the :class:`Candidate` the decision record will
    carry, built once on arrival.
    """

    __slots__ = (
        "answered",
        "best",
        "best_rank",
        "candidates",
        "deadline_ms",
        "decided",
        "frontier",
        "gave_up",
        "policy",
        "progressive",
        "provisional",
        "provisional_ms",
        "request_id",
        "ts_ms",
    )

    def __init__(
        self, request_id: str, ts_ms: float, deadline_ms: float, policy: CompiledPolicy,
        progressive: bool = False,
    ) -> None:
        self.request_id = request_id
        self.ts_ms = ts_ms
        self.deadline_ms = deadline_ms
        self.policy = policy
        self.candidates: list[Candidate] = []
        self.best: Score | None = None
        self.best_rank = len(policy.prefer)  # "none yet" sorts after every preferred model
        self.answered = 0  # bit r set: the model of rank r has answered (validly or not)
        self.frontier = 0  # every rank below this has answered
        self.decided = False
        self.gave_up = False  # decided early: the missing models' live p99 was too late
        self.progressive = progressive
        self.provisional: str | None = None  # the model of the provisional result sent
        self.provisional_ms: float | None = None

    def add(self, score: Score, arrived_ms: float) -> bool:
        """Record ``score``; False when its model had answered already (the first answer counts)."""
        model = score.model
        if score.shadow:
            return self._add_shadow(score, arrived_ms)
        for candidate in self.candidates:
            if candidate.model == model and not candidate.shadow:
                return False
        reason = self.policy.judge(score)
        self.candidates.append(
            Candidate(
                model, score.version, score.score, arrived_ms - self.ts_ms, reason is None, reason,
                score.scored_ms - score.received_ms if score.scored_ms else None,
                label=score.label,
            )
        )  # fmt: skip
        rank = self.policy.rank.get(model, -1)
        if rank < 0:  # not in the preference: recorded, never chosen
            return True
        if reason is None and rank < self.best_rank:
            self.best = score
            self.best_rank = rank
        self.answered |= 1 << rank
        while self.answered >> self.frontier & 1:
            self.frontier += 1
        return True

    def _add_shadow(self, score: Score, arrived_ms: float) -> bool:
        """A shadow version's answer: a candidate of the record, never a rank, never chosen."""
        for candidate in self.candidates:
            if candidate.shadow and candidate.model == score.model \
                    and candidate.version == score.version:
                return False
        reason = self.policy.judge(score)
        self.candidates.append(
            Candidate(
                score.model, score.version, score.score, arrived_ms - self.ts_ms, reason is None,
                reason, score.scored_ms - score.received_ms if score.scored_ms else None, True,
                score.label,
            )
        )  # fmt: skip
        return True

    def decide(self, now_ms: float) -> Outcome:
        """The decision from what is here at ``now_ms``: the most preferred valid answer."""
        best = self.best
        if best is None:
            n = len(self.policy.prefer)
            reason = "no valid answer" if self.frontier >= n else "no valid answer by deadline"
            return self._outcome("timeout", None, f"{reason} ({self._misses(n)})", now_ms)
        if self.best_rank == 0:
            return self._outcome("ok", best, None, now_ms)
        return self._outcome("fallback", best, self._misses(self.best_rank), now_ms)

    def early(self, now_ms: float) -> Outcome | None:
        """A provisional result, if this progressive request should get one now: a valid
        answer is in, the decision is not, and none was sent yet."""
        best = self.best
        if not self.progressive or best is None or self.provisional is not None:
            return None
        self.provisional, self.provisional_ms = best.model, now_ms
        score, _ = self._on_preferred_scale(best)
        answered = [c.model for c in self.candidates if c.valid]
        scored = Scored(
            self.request_id, "fallback", score, best.label, best.model, best.version,
            now_ms - self.ts_ms, answered, f"provisional: waiting for {self.policy.prefer[0]}",
            now_ms, best.score, True, probabilities=best.probabilities,
        )  # fmt: skip
        return Outcome(self.request_id, scored, None)

    def in_time(self, p99_ms: Callable[[str], float | None]) -> bool:
        """Whether a more preferred model than the best answer in hand may still answer
        before the decision is due, by its live p99 latency (unknown: it may)."""
        prefer, answered = self.policy.prefer, self.answered
        due = self.deadline_ms - self.ts_ms
        for rank in range(self.best_rank):
            if not answered >> rank & 1:
                p99 = p99_ms(prefer[rank])
                if p99 is None or p99 < due:
                    return True
        return False

    def reject(self, reason: str, now_ms: float) -> Outcome:
        """The decision for a request that failed validation: no model is chosen."""
        return self._outcome("rejected", None, reason, now_ms)

    def _misses(self, below: int) -> str:
        """Why each model more preferred than rank ``below`` was passed over."""
        by_model = {c.model: c for c in self.candidates if not c.shadow}
        parts = []
        for model in self.policy.prefer[:below]:
            candidate = by_model.get(model)
            if candidate is not None:
                parts.append(f"{model}: {candidate.reason}")
            elif self.gave_up:
                parts.append(f"{model}: not waited for (live p99 latency past the decision time)")
            else:
                parts.append(f"{model}: no answer by deadline")
        return "; ".join(parts)

    def _on_preferred_scale(self, chosen: Score) -> tuple[float | None, str | None]:
        """``chosen``'s score on the preferred model's scale, and the map's label (None:
        not mapped — mapping off, or no quantile function for that model version).

        A multiclass answer is never mapped: its score is the probability of its own
        predicted class, which may not be the preferred model's, so no scale holds both;
        the label says so (``unmapped:multiclass``)."""
        if chosen.probabilities is not None:
            return chosen.score, UNMAPPED_MULTICLASS
        maps = self.policy.to_preferred.get(chosen.model)
        if maps is not None and chosen.score is not None:
            to_preferred = maps.get(chosen.version)
            if to_preferred is not None:
                return to_preferred(chosen.score), to_preferred.label
        return chosen.score, None

    def _outcome(
        self, status: ScoredStatus, chosen: Score | None, reason: str | None, now_ms: float
    ) -> Outcome:
        self.decided = True
        rid = self.request_id
        answered = [c.model for c in self.candidates if c.valid and not c.shadow]
        latency = now_ms - self.ts_ms
        quantiles = None
        # Positional arguments, in field order: measurably cheaper on the hot path.
        model: str | None = None
        version: str | None = None
        if chosen is None:
            scored = Scored(rid, status, None, None, None, None, latency, answered, reason, now_ms)
        else:
            model, version = chosen.model, chosen.version
            raw = chosen.score
            # The preferred model's answer ("ok") is on its own scale: nothing to map.
            score, quantiles = (raw, None) if status == "ok" else self._on_preferred_scale(chosen)
            scored = Scored(
                rid, status, score, chosen.label, model, chosen.version, latency, answered,
                reason, now_ms, raw,
            ) if chosen.probabilities is None else Scored(
                rid, status, score, chosen.label, model, chosen.version, latency, answered,
                reason, now_ms, raw, probabilities=chosen.probabilities,
            )  # fmt: skip
        decision = Decision(
            rid, status, model, self.candidates, self.deadline_ms, now_ms, self.ts_ms, quantiles,
            self.provisional, self.provisional_ms, version=version,
        )  # fmt: skip
        return Outcome(rid, scored, decision)


class Orphans:
    """Answers that arrived before their request, kept at most ``ttl_ms`` and ``capacity`` answers.

    Oldest first: expiry and overflow both drop the request id whose first
    answer arrived earliest, with all its answers.
    """

    __slots__ = ("_by_id", "capacity", "count", "dropped", "expired", "ttl_ms")

    def __init__(self, ttl_ms: float, capacity: int) -> None:
        self.ttl_ms = ttl_ms
        self.capacity = capacity
        self._by_id: OrderedDict[str, list[tuple[Score, float]]] = OrderedDict()
        self.count = 0
        """Answers held now."""
        self.expired = 0
        """Answers dropped because their request did not come within ``ttl_ms``."""
        self.dropped = 0
        """Answers dropped to stay within ``capacity``."""

    def add(self, score: Score, now_ms: float) -> None:
        """Hold ``score`` until its request opens (or it expires)."""
        held = self._by_id.get(score.id)
        if held is None:
            self._by_id[score.id] = [(score, now_ms)]
        else:
            held.append((score, now_ms))
        self.count += 1
        while self.count > self.capacity:
            _, oldest = self._by_id.popitem(last=False)
            self.count -= len(oldest)
            self.dropped += len(oldest)

    def take(self, request_id: str) -> list[tuple[Score, float]]:
        """Remove and return the answers held for ``request_id`` (with arrival times)."""
        held = self._by_id.pop(request_id, None)
        if held is None:
            return []
        self.count -= len(held)
        return held

    def expire(self, now_ms: float) -> None:
        """Drop the answers of every request id whose first answer is older than ``ttl_ms``."""
        cutoff = now_ms - self.ttl_ms
        by_id = self._by_id
        while by_id:
            first = next(iter(by_id))
            if by_id[first][0][1] > cutoff:
                return
            held = by_id.pop(first)
            self.count -= len(held)
            self.expired += len(held)

    def __len__(self) -> int:
        return len(self._by_id)


class DecidedIds:
    """The ids of the last ``capacity`` decided requests, with their ``ts`` when known.

    ``ts_by_id`` is public so the hot path can test membership with a plain dict
    lookup; change it only through :meth:`add`.
    """

    __slots__ = ("_order", "capacity", "ts_by_id")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.ts_by_id: dict[str, float | None] = {}
        # A deque beside a plain dict: FIFO eviction in O(1) without OrderedDict's slower inserts.
        self._order: deque[str] = deque()

    def add(self, request_id: str, ts_ms: float | None) -> None:
        """Remember ``request_id`` as decided, forgetting the oldest beyond ``capacity``."""
        if request_id in self.ts_by_id:
            return
        self.ts_by_id[request_id] = ts_ms
        self._order.append(request_id)
        if len(self._order) > self.capacity:
            del self.ts_by_id[self._order.popleft()]

    def __contains__(self, request_id: object) -> bool:
        return request_id in self.ts_by_id

    def __len__(self) -> int:
        return len(self.ts_by_id)
