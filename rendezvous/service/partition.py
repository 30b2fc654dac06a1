"""One input partition's share of the rendezvous: its core, commit tracker and return addresses.

Requests, their scores and their results share a partition number
(co-partitioning), so a partition is self-contained: it moves between
instances on a rebalance by dropping this object on one side and rebuilding it
from Kafka on the other.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from prometheus_client import Counter

from rendezvous.core import LiveLatency, OffsetTracker, Outcome, Rendezvous, Scales
from rendezvous.messages import DEADLINE_BOUNDS, DeadlineBounds, Invalid, Policy, request_deadline
from rendezvous.service.decode import Answer, Request
from rendezvous.service.margin import DeliveryMargin

CONFLICTING_IDS = Counter(
    "rendezvous_serve_conflicting_ids",
    "Input records under an id already seen (answered or in flight) whose payload (features, "
    "deadline_ms, reply_to) differs from the first one's: dead-lettered, never answered")
DEADLINES_CLAMPED = Counter(
    "rendezvous_serve_deadlines_clamped",
    "Requests whose deadline was clamped: deadline_ms under serve.min_deadline_ms (min) or "
    "over serve.max_deadline_ms (max), or a ts (else record timestamp) so far ahead that it "
    "would be waited for longer than the maximum from its arrival (future)", ["bound"])
for _bound in ("min", "max", "future"):
    DEADLINES_CLAMPED.labels(_bound)

REMEMBER_DECIDED = 500_000
"""Decided ids a partition remembers (so a redelivered request is not answered twice), and
payload digests of the ids it has seen: as many."""
ANSWERED_CONFLICT = "id already answered with a different payload"
IN_FLIGHT_CONFLICT = "id already in flight with a different payload"


class Digests:
    """An 8-byte digest of the payload of each of the last ``capacity`` ids seen (FIFO)."""

    __slots__ = ("_by_id", "_order", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._by_id: dict[str, bytes] = {}
        self._order: deque[str] = deque()

    def first(self, request_id: str, digest: bytes) -> bytes | None:
        """The digest known for ``request_id``; else remember ``digest`` for it, and None."""
        known = self._by_id.get(request_id)
        if known is None:
            self._by_id[request_id] = digest
            self._order.append(request_id)
            if len(self._order) > self.capacity:
                del self._by_id[self._order.popleft()]
        return known

    def __len__(self) -> int:
        return len(self._by_id)


class PartitionState:
    """The rendezvous for the requests of one input partition."""

    def __init__(self, partition: int, policy: Policy, clock: Callable[[], float],
                 margin: DeliveryMargin | None = None, scales: Scales | None = None,
                 latency: LiveLatency | None = None, *,
                 deadlines: DeadlineBounds = DEADLINE_BOUNDS) -> None:
        self.partition = partition
        self._clock = clock
        self.core = Rendezvous(policy, clock, scales=scales, latency=latency,
                               remember_decided=REMEMBER_DECIDED)
        self.digests = Digests(REMEMBER_DECIDED)
        """What each id seen asked: a second record under one is a replay when it asks the
        same, a conflict (dead-lettered, counted) when not."""
        self._deadlines = deadlines
        self.inputs = OffsetTracker()
        self.scores_next: int | None = None  # scores offset to commit (consumed + 1)
        self.reply_to: dict[str, str] = {}
        self.late: dict[str, int] = {}
        """Answers per model that came after their request was decided, not yet reported
        on a decision."""
        self._margin = margin or DeliveryMargin(0.0, 0.0)

    def on_request(self, request: Request) -> tuple[list[Outcome], str | None]:
        """Open (or reject) ``request``: the decisions it settles, and why its record must be
        dead-lettered, if it must (rejected: invalid, or a ``reply_to`` that is no return
        address of this deployment; or an id already seen with a different payload, which
        is counted and never answered).

        A second record under an id this partition has seen is a replay when it asks the
        same (features, ``deadline_ms``, ``reply_to``) and is dropped silently; an id
        restored as answered after a restart has no digest, so a record under it is taken
        for a replay."""
        event, ts, offset = request.event, request.ts, request.offset
        if isinstance(event, Invalid):
            rid = event.id or request.fallback_id()
            self.inputs.track(offset, rid, resolved=True)
            conflict = self._conflict(rid, request.digest)
            if conflict is not None:
                return [], conflict
            outcomes = self.core.reject(rid, event.reason, ts)
            return outcomes, event.reason if outcomes else None
        rid = event.id
        conflict = self._conflict(rid, request.digest)
        if conflict is not None:
            self.inputs.track(offset, rid, resolved=True)
            return [], conflict
        if self.core.is_decided(rid):  # answered before (a replay, a restart, a rebalance)
            self.inputs.track(offset, rid, resolved=True)
            return [], None
        self.inputs.track(offset, rid)
        if event.reply_to:
            self.reply_to[rid] = event.reply_to
        start = event.ts if event.ts is not None else ts
        deadline, clamp = request_deadline(event, ts, self.core.policy.deadline_ms,
                                           self._deadlines, self._clock())
        if clamp is not None:
            DEADLINES_CLAMPED.labels(clamp).inc()
        return self.core.open(rid, start, self._margin.decide_by(deadline, bool(event.reply_to)),
                              event.progressive), None

    def _conflict(self, rid: str, digest: bytes) -> str | None:
        """Why a record under ``rid`` asking ``digest`` must be dead-lettered (``rid`` was
        seen asking something else), or None: remembered when new, a replay when not."""
        known = self.digests.first(rid, digest)
        if known is None or known == digest:
            return None
        CONFLICTING_IDS.inc()
        return ANSWERED_CONFLICT if self.core.is_decided(rid) else IN_FLIGHT_CONFLICT

    def reject(self, request: Request, reason: str) -> list[Outcome]:
        """Answer ``request`` ``rejected`` (once), whatever its record holds."""
        rid = request.fallback_id()
        self.inputs.track(request.offset, rid, resolved=True)
        return self.core.reject(rid, reason, request.ts)

    def on_answer(self, answer: Answer) -> list[Outcome]:
        """Offer ``answer``'s score to the core (one that cannot be taken is only consumed)."""
        self.scores_next = answer.offset + 1
        score = answer.score
        if score is None:
            return []
        outcomes = self.core.offer(score)
        if not outcomes and self.core.is_decided(score.id):  # late: counted, never re-answered
            self.late[score.model] = self.late.get(score.model, 0) + 1
        return outcomes

    def take_late(self) -> dict[str, int]:
        """The late answers counted since the last call, per model."""
        late, self.late = self.late, {}
        return late

    def settle(self, outcomes: list[Outcome]) -> list[tuple[str, Outcome]]:
        """Mark the final ``outcomes`` answered (a provisional one answers nothing: its
        request still holds the commit back); returns those with a return address."""
        replies = []
        for outcome in outcomes:
            rid = outcome.request_id
            if outcome.decision is None:
                reply_to = self.reply_to.get(rid)
                if reply_to:
                    replies.append((reply_to, outcome))
                continue
            self.inputs.resolve(rid)
            reply_to = self.reply_to.pop(rid, None)
            if reply_to:
                replies.append((reply_to, outcome))
        return replies
