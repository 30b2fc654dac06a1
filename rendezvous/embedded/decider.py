"""The core :class:`~rendezvous.core.Rendezvous` shared by every call, and who waits for what.

serve's decision code, unchanged: each row of a call is a request opened in the core, each
model's answer is offered to it, and the core says when and what to decide (the preferred
model's valid answer at once, a fallback once every more preferred model answered invalidly,
else the best answer at the deadline, which the waiting caller asks for with ``tick``). One
lock around the core: its calls take microseconds, and the models run outside it.

The core keys requests by an internal key, unique per row, so a caller's own ids may repeat;
each result gets the caller's id back.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence

import msgspec

from rendezvous.core import Clock, LiveLatency, Outcome, Rendezvous, Scales, Stats
from rendezvous.messages import Decision, Policy, Score, Scored

REMEMBER_DECIDED = 100_000
"""Decided keys the core remembers, so an answer that comes after its call was decided is
counted late (and teaches ``prefer_in_time`` that the model is slow) rather than held."""


class Call:
    """One ``score``/``score_batch`` call: its rows' ids and, once decided, their results."""

    __slots__ = ("deadline_at", "decisions", "done", "done_hooks", "ids", "left", "notify",
                 "results")

    def __init__(self, ids: Sequence[str], deadline_at: float,
                 notify: Callable[[], None] | None = None) -> None:
        self.ids = ids
        self.deadline_at = deadline_at
        n = len(ids)
        self.results: list[Scored | None] = [None] * n
        self.decisions: list[Decision | None] = [None] * n
        self.left = n
        self.done = threading.Event()
        self.notify = notify
        """Called (from any thread) when the last row is decided: wakes an ``await``."""
        self.done_hooks: list[Callable[[], object]] = []
        """Run by the caller once every row is decided (cancel model runs not started)."""

    def settle(self, index: int, outcome: Outcome) -> None:
        self.results[index] = msgspec.structs.replace(outcome.scored, id=self.ids[index])
        self.decisions[index] = outcome.decision
        self.left -= 1
        if self.left == 0:
            self.done.set()
            notify = self.notify  # read once: a cancelled caller may clear it meanwhile
            if notify is not None:
                notify()


class Decider:
    """The core under a lock, routing each final outcome to the call it belongs to."""

    def __init__(self, policy: Policy, clock: Clock, scales: Scales | None) -> None:
        self._lock = threading.Lock()
        self._core = Rendezvous(policy, clock, scales=scales, latency=LiveLatency(),
                                remember_decided=REMEMBER_DECIDED)
        self._waiting: dict[str, tuple[Call, int]] = {}
        self._keys = itertools.count()

    @property
    def policy(self) -> Policy:
        return self._core.policy

    def set_policy(self, policy: Policy) -> None:
        """Calls made from now on are decided by ``policy`` (raises PolicyError, keeping
        the old one, when it cannot be applied)."""
        with self._lock:
            self._core.set_policy(policy)

    def keys(self, n: int) -> list[str]:
        """``n`` fresh internal keys."""
        return [str(next(self._keys)) for _ in range(n)]

    def open(self, call: Call, keys: Sequence[str], ts_ms: float,
             rejected: dict[int, str]) -> None:
        """Open a request per key, due at the call's deadline; those in ``rejected`` (row
        index -> reason) are answered ``rejected`` at once. Requests already due are decided
        first: a caller that stopped waiting (a cancelled ``ascore``) leaves its request to
        the next call's tick."""
        with self._lock:
            core, waiting, deadline = self._core, self._waiting, call.deadline_at
            if core.next_deadline() is not None:
                self._route(core.tick())
            for i, key in enumerate(keys):
                waiting[key] = (call, i)
                reason = rejected.get(i)
                if reason is None:
                    self._route(core.open(key, ts_ms, deadline))
                else:
                    self._route(core.reject(key, reason, ts_ms))

    def offer(self, scores: list[Score]) -> None:
        """Models' answers; each may decide its request."""
        with self._lock:
            core, waiting = self._core, self._waiting
            for score in scores:
                if score.id in waiting or core.is_decided(score.id):
                    self._route(core.offer(score))

    def tick(self) -> None:
        """Decide every request whose deadline has come."""
        with self._lock:
            self._route(self._core.tick())

    def stats(self) -> Stats:
        with self._lock:
            return self._core.stats()

    def _route(self, outcomes: list[Outcome]) -> None:
        waiting = self._waiting
        for outcome in outcomes:
            if outcome.decision is None:  # provisional: an embedded call is never progressive
                continue
            entry = waiting.pop(outcome.request_id, None)
            if entry is not None:
                entry[0].settle(entry[1], outcome)
