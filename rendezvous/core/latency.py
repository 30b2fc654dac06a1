"""Each model's live latency, as the rendezvous sees it: request ``ts`` to its answer's arrival.

The policy's ``prefer_in_time`` rule reads it: no need to wait for a more
preferred model whose p99 says its answer comes after the request must be
decided. Recording is a deque append per answer; the p99 is recomputed at
most every ``refresh_ms`` per model, over the last ``window_ms``.

A request decided at its deadline without a model's answer counts as an
answer slower than any (``inf``): a model that answers nothing in time
(or sheds everything) is slow, not unknown.
"""

from __future__ import annotations

import math
from collections import deque


class LiveLatency:
    """Per-model latency samples (epoch ms arrival, latency ms) and their recent p99."""

    __slots__ = ("_cache", "_samples", "capacity", "min_samples", "refresh_ms", "window_ms")

    def __init__(self, window_ms: float = 10_000.0, capacity: int = 1024,
                 min_samples: int = 20, refresh_ms: float = 100.0) -> None:
        self.window_ms = window_ms
        self.capacity = capacity
        self.min_samples = min_samples
        self.refresh_ms = refresh_ms
        self._samples: dict[str, deque[tuple[float, float]]] = {}
        self._cache: dict[str, tuple[float, float | None]] = {}  # model -> (computed at, p99)

    def observe(self, model: str, latency_ms: float, now_ms: float) -> None:
        """An answer of ``model``, ``latency_ms`` after its request's ``ts``, seen at ``now_ms``."""
        samples = self._samples.get(model)
        if samples is None:
            samples = self._samples[model] = deque(maxlen=self.capacity)
        samples.append((now_ms, latency_ms))

    def missed(self, model: str, now_ms: float) -> None:
        """``model`` had not answered a request decided at its deadline."""
        self.observe(model, math.inf, now_ms)

    def p99(self, model: str, now_ms: float) -> float | None:
        """The p99 latency of ``model``'s answers in the last ``window_ms`` (``inf`` when more
        than 1 % missed their deadline); None with fewer than ``min_samples``."""
        cached = self._cache.get(model)
        if cached is not None and now_ms - cached[0] < self.refresh_ms:
            return cached[1]
        samples = self._samples.get(model)
        value: float | None = None
        if samples:
            cutoff = now_ms - self.window_ms
            while samples and samples[0][0] < cutoff:
                samples.popleft()
            if len(samples) >= self.min_samples:
                ordered = sorted(latency for _, latency in samples)
                value = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        self._cache[model] = (now_ms, value)
        return value

    def models(self) -> list[str]:
        """The models with samples."""
        return list(self._samples)
