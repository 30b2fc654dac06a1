"""Which input offset of one partition is safe to commit.

A partition's records are answered out of order (a request decided at its
deadline may follow ten decided on arrival), so the committable offset is the
lowest one whose request is still unresolved: after a restart the consumer
re-reads every request that has no answer yet, and the rendezvous' memory of
decided ids skips the ones that were answered.
"""

from __future__ import annotations

import heapq


class OffsetTracker:
    """Unresolved input offsets of one partition, and the offset that is safe to commit."""

    __slots__ = ("_by_id", "_heap", "_next", "_resolved")

    def __init__(self) -> None:
        self._heap: list[int] = []  # unresolved offsets, plus resolved ones not popped yet
        self._resolved: set[int] = set()  # resolved offsets still inside the heap
        self._by_id: dict[str, list[int]] = {}
        self._next: int | None = None  # last offset seen + 1

    def track(self, offset: int, request_id: str | None, *, resolved: bool = False) -> None:
        """Note that the record at ``offset`` carries ``request_id``.

        ``resolved=True`` (or no request id) means nothing is waiting on it — a
        rejected record, or a request that was already answered — so it never
        holds the commit back.
        """
        if self._next is None or offset >= self._next:
            self._next = offset + 1
        if resolved or request_id is None:
            return
        heapq.heappush(self._heap, offset)
        offsets = self._by_id.get(request_id)
        if offsets is None:
            self._by_id[request_id] = [offset]
        else:
            offsets.append(offset)  # the same id twice in a partition: both wait for its answer

    def resolve(self, request_id: str) -> bool:
        """Mark every offset of ``request_id`` answered; False when it was not tracked."""
        offsets = self._by_id.pop(request_id, None)
        if offsets is None:
            return False
        self._resolved.update(offsets)
        return True

    def committable(self) -> int | None:
        """The offset to commit: the lowest unresolved one, else the last seen + 1.

        None before any record was tracked.
        """
        heap = self._heap
        resolved = self._resolved
        while heap and heap[0] in resolved:
            resolved.discard(heapq.heappop(heap))
        return heap[0] if heap else self._next
