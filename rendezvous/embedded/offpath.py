"""Work taken off the latency path: a bounded queue the callers append to, and a thread.

``offer`` never waits and takes no lock: ``deque.append`` is atomic, and the bound is
checked before appending (concurrent callers may pass it by a few items). When the queue
is full the item is dropped and counted. The thread wakes every ``DRAIN_S`` — not per item:
woken per item it would take the GIL from the callers on every call — and hands everything
queued to ``handle``, then calls ``after(stopping)``; ``close()`` drains what is left.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

DRAIN_S = 0.05
"""How often the thread takes what the callers queued."""


class OffPath(Generic[T]):
    """A bounded queue drained by a thread of its own."""

    def __init__(self, name: str, capacity: int, handle: Callable[[list[T]], None],
                 after: Callable[[bool], None] | None = None) -> None:
        self._queue: deque[T] = deque()
        self._capacity = capacity
        self._handle, self._after = handle, after
        self._stop = threading.Event()
        self._drop_lock = threading.Lock()
        self.dropped = 0
        """Items not taken: the queue was full."""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def offer(self, item: T) -> None:
        """Queue ``item``, or drop and count it when the queue is full; never waits."""
        if len(self._queue) < self._capacity:
            self._queue.append(item)
        else:
            with self._drop_lock:
                self.dropped += 1

    def close(self) -> None:
        """Hand what is queued to ``handle`` a last time, then stop the thread."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        queued = self._queue
        while True:
            stopping = self._stop.wait(DRAIN_S)
            items = [queued.popleft() for _ in range(len(queued))]
            try:
                if items:
                    self._handle(items)
                if self._after is not None:
                    self._after(stopping)
            except Exception:  # a bug here must not stop the thread (items would pile up)
                log.exception("%s: failed on %d items", self._thread.name, len(items))
            if stopping:
                return
