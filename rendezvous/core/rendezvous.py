"""The rendezvous: requests and answers in, exactly one decision per request out.

Pure Python and transport-agnostic: the Kafka runner decodes records, calls
:meth:`Rendezvous.open` / :meth:`~Rendezvous.offer` / :meth:`~Rendezvous.reject`,
calls :meth:`~Rendezvous.tick` from its poll loop (blocking at most until
:meth:`~Rendezvous.next_deadline`; ``tick(within_ms)`` also decides what is due within
that, for a loop that waits in whole milliseconds), and produces every :class:`Outcome` it gets
back. Time comes from the injected clock (epoch milliseconds), so tests drive
it with a virtual one.

When a request is decided:

* at once, when the most preferred model's valid answer arrives (``ok``);
* at once, when every model preferred to the best valid answer present has
  answered invalidly (``fallback``), or every preferred model has answered and
  none validly (``timeout``, "no valid answer");
* at its deadline otherwise, with the best valid answer present (``ok`` if it
  is the most preferred model's, else ``fallback``; none: ``timeout``). A
  request found past its deadline by ``open`` or ``offer`` (the loop was late)
  is decided there and then, with everything that has arrived — the answer in
  hand costs no extra time.

A request opened with ``progressive=True`` also gets a *provisional* outcome
(``decision`` None) as soon as a valid answer is in while the request stays
undecided; its one final outcome follows as above.

With a :class:`~rendezvous.core.latency.LiveLatency`, every answer's latency
is recorded per model; a policy with ``prefer_in_time`` then also decides at
once when a valid answer is in and every more preferred model that has not
answered has a live p99 latency at or past the time the request must be
decided by (it would not answer in time: no need to wait for it).

A shadow version's answer (``Score.shadow``) is recorded among the decision's
candidates when it arrives before the decision, and never chosen nor waited for.

A policy change applies to requests opened after it: each request keeps the
preference, rules and default deadline it was opened with, so one request is
never judged by two policies.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rendezvous.core.latency import LiveLatency
from rendezvous.core.mailbox import DecidedIds, Mailbox, Orphans, Outcome
from rendezvous.core.policy import CompiledPolicy
from rendezvous.core.scales import Scales
from rendezvous.messages import Policy, Score

Clock = Callable[[], float]
"""Returns the current time in epoch milliseconds."""


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters since the rendezvous was created (a snapshot)."""

    pending: int
    decided: int
    late: int
    """Answers that arrived after their request was decided."""
    duplicates: int
    """Second answers from a model that had already answered the request."""
    redelivered: int
    """``open``/``reject`` of a request that was already decided or is pending."""
    orphans: int
    """Answers held now for requests not opened yet."""
    orphans_expired: int
    orphans_dropped: int
    provisional: int = 0
    """Provisional results of progressive requests."""


class Rendezvous:
    """Mailboxes per request, decided by the policy on arrival or at the deadline.

    ``orphan_ttl_ms`` and ``max_orphans`` bound the answers held for requests
    not opened yet; ``remember_decided`` bounds the memory of decided ids that
    stops a redelivered request from being answered twice. ``scales`` (each model
    version's quantile function) put a fallback's score on the preferred model's scale
    when the policy maps scores; ``latency`` records every answer's latency (it may be
    shared by several instances) for the policy's ``prefer_in_time`` rule.
    """

    def __init__(
        self,
        policy: Policy,
        clock: Clock,
        *,
        orphan_ttl_ms: float = 60_000.0,
        max_orphans: int = 100_000,
        remember_decided: int = 500_000,
        scales: Scales | None = None,
        latency: LiveLatency | None = None,
    ) -> None:
        self._scales = scales
        self._latency = latency
        self._policy = CompiledPolicy(policy, scales)
        self._clock = clock
        self._pending: dict[str, Mailbox] = {}
        # (deadline, seq, mailbox); decided mailboxes stay until popped (lazy deletion).
        self._heap: list[tuple[float, int, Mailbox]] = []
        self._dead = 0  # decided mailboxes still in the heap
        self._seq = itertools.count()
        self._orphans = Orphans(orphan_ttl_ms, max_orphans)
        self._decided = DecidedIds(remember_decided)
        self._decided_ts = self._decided.ts_by_id  # the same dict, for O(1) lookups inline
        self._n_decided = 0
        self._n_late = 0
        self._n_duplicates = 0
        self._n_redelivered = 0
        self._n_provisional = 0

    @property
    def policy(self) -> Policy:
        """The policy new requests are opened with."""
        return self._policy.policy

    def set_policy(self, policy: Policy) -> None:
        """Use ``policy`` for requests opened from now on; raises PolicyError and keeps the old."""
        self._policy = CompiledPolicy(policy, self._scales)

    def open(
        self, request_id: str, ts_ms: float, deadline_at_ms: float | None = None,
        progressive: bool = False,
    ) -> list[Outcome]:
        """Open a mailbox for a request made at ``ts_ms``, due at ``deadline_at_ms``.

        Without a deadline the policy's ``deadline_ms`` after ``ts_ms`` is used.
        Answers that came first are applied now, which may decide the request.
        A request already decided (or already open) gets nothing.
        """
        if request_id in self._decided_ts or request_id in self._pending:
            self._n_redelivered += 1
            return []
        policy = self._policy
        if deadline_at_ms is None:
            deadline_at_ms = ts_ms + policy.deadline_ms
        box = Mailbox(request_id, ts_ms, deadline_at_ms, policy, progressive)
        now = self._clock()
        if self._orphans.count:
            latency = self._latency
            for score, arrived in self._orphans.take(request_id):
                if not box.add(score, arrived):
                    self._n_duplicates += 1
                elif latency is not None:
                    latency.observe(score.model, arrived - ts_ms, arrived)
        # Settled (waiting cannot improve the answer) or past the deadline: decide now.
        if (box.frontier >= box.best_rank or now >= deadline_at_ms
                or (policy.in_time and self._give_up(box, now))):
            return [self._finish(box, now)]
        self._pending[request_id] = box
        heapq.heappush(self._heap, (deadline_at_ms, next(self._seq), box))
        return self._early(box, now) if progressive else []

    def offer(self, score: Score) -> list[Outcome]:
        """Deliver one model's answer; returns the decision if this answer settles it."""
        now = self._clock()
        rid = score.id
        box = self._pending.get(rid)
        if box is None:
            if rid in self._decided_ts:
                if not score.shadow:  # a shadow answer is never an answer, so never late
                    self._record_late(score, now)
            else:
                self._orphans.add(score, now)
            return []
        if not box.add(score, now):
            self._n_duplicates += 1
            return []
        if self._latency is not None:
            self._latency.observe(score.model, now - box.ts_ms, now)
        if (box.frontier >= box.best_rank or now >= box.deadline_ms
                or (box.policy.in_time and self._give_up(box, now))):
            del self._pending[rid]
            self._dead += 1
            return [self._finish(box, now)]
        return self._early(box, now) if box.progressive else []

    def reject(self, request_id: str, reason: str, ts_ms: float) -> list[Outcome]:
        """Answer a request that failed validation at once, with status ``rejected``."""
        if request_id in self._decided_ts:
            self._n_redelivered += 1
            return []
        now = self._clock()
        box = self._pending.pop(request_id, None)
        if box is not None:
            self._dead += 1
        else:
            policy = self._policy
            box = Mailbox(request_id, ts_ms, ts_ms + policy.deadline_ms, policy)
            for score, arrived in self._orphans.take(request_id):
                box.add(score, arrived)
        self._n_decided += 1
        self._decided.add(request_id, box.ts_ms)
        return [box.reject(reason, now)]

    def tick(self, within_ms: float = 0.0) -> list[Outcome]:
        """Decide every request whose deadline has come, or comes within ``within_ms`` (a
        caller that can wait only in whole milliseconds decides those now, a little early,
        rather than spin or be late); expire old orphan answers."""
        now = self._clock()
        due = now + within_ms
        heap = self._heap
        out: list[Outcome] = []
        while heap and heap[0][0] <= due:
            box = heapq.heappop(heap)[2]
            if box.decided:
                self._dead -= 1
                continue
            del self._pending[box.request_id]
            if self._latency is not None:
                self._missed(box, now)
            out.append(self._finish(box, now))
        if self._dead > 1024 and self._dead * 2 > len(heap):
            self._compact()
        self._orphans.expire(now)
        return out

    def next_deadline(self) -> float | None:
        """The earliest deadline of a pending request (epoch ms), or None when none is pending."""
        heap = self._heap
        while heap and heap[0][2].decided:
            heapq.heappop(heap)
            self._dead -= 1
        return heap[0][0] if heap else None

    def mark_decided(self, request_ids: Iterable[str]) -> None:
        """Remember ids already answered (e.g. read back from the scored topic after a restart).

        They are never decided again; a pending one is dropped without a decision.
        """
        for rid in request_ids:
            box = self._pending.pop(rid, None)
            if box is not None:
                box.decided = True
                self._dead += 1
            self._orphans.take(rid)
            self._decided.add(rid, box.ts_ms if box is not None else None)

    def is_decided(self, request_id: str) -> bool:
        """True when ``request_id`` is remembered as decided."""
        return request_id in self._decided_ts

    def pending(self) -> int:
        """How many requests are open and undecided."""
        return len(self._pending)

    def stats(self) -> Stats:
        """A snapshot of the counters."""
        return Stats(
            pending=len(self._pending),
            decided=self._n_decided,
            late=self._n_late,
            duplicates=self._n_duplicates,
            redelivered=self._n_redelivered,
            orphans=self._orphans.count,
            orphans_expired=self._orphans.expired,
            orphans_dropped=self._orphans.dropped,
            provisional=self._n_provisional,
        )

    def _give_up(self, box: Mailbox, now: float) -> bool:
        """(Under ``prefer_in_time``) a valid answer is in and no more preferred model that
        is still missing can answer before ``box`` must be decided, by its live p99."""
        latency = self._latency
        if box.best is None or latency is None:
            return False
        box.gave_up = not box.in_time(lambda model: latency.p99(model, now))
        return box.gave_up

    def _early(self, box: Mailbox, now: float) -> list[Outcome]:
        early = box.early(now)
        if early is None:
            return []
        self._n_provisional += 1
        return [early]

    def _missed(self, box: Mailbox, now: float) -> None:
        """Decided at its deadline: every more preferred model still silent missed it."""
        assert self._latency is not None
        prefer, answered = box.policy.prefer, box.answered
        for rank in range(min(box.best_rank, len(prefer))):
            if not answered >> rank & 1:
                self._latency.missed(prefer[rank], now)

    def _finish(self, box: Mailbox, now: float) -> Outcome:
        self._n_decided += 1
        self._decided.add(box.request_id, box.ts_ms)
        return box.decide(now)

    def _record_late(self, score: Score, now: float) -> None:
        self._n_late += 1
        ts = self._decided_ts.get(score.id)
        if self._latency is not None and ts is not None:
            # Late answers count too: else a model slower than the deadline would leave
            # no samples, and the rule would forget it is slow.
            self._latency.observe(score.model, now - ts, now)

    def _compact(self) -> None:
        # Requests decided early leave heap entries behind until their deadline;
        # with long deadlines those would pile up, so drop them in one O(n) pass.
        self._heap = [entry for entry in self._heap if not entry[2].decided]
        heapq.heapify(self._heap)
        self._dead = 0
