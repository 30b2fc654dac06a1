"""Record embedded traffic in the decoy's archive layout, off the latency path.

Each input is archived as the ``input`` record the pipeline would have carried (an
:class:`~rendezvous.messages.InputEvent`, key = its id) and each decision as its
``decisions`` record, written by the decoy's own code (:func:`rendezvous.decoy.batches.to_batches`,
:class:`rendezvous.decoy.writer.ArchiveWriter`), so ``replay``, ``backtest`` and
``read_archive`` read it like a deployment's archive.

``score`` only appends the objects to a bounded queue (no encoding, no lock, never a wait):
when it is full the row is dropped and counted. A thread wakes every ``DRAIN_S`` (not per
row: woken per row, it would take the GIL from the callers on every call), takes what is
queued, encodes and buffers it, and rolls a durable file every ``roll_s`` and at
``close()``. Records go to partition 0 at offsets counted from the archiver's start time in
microseconds, so two runs into one directory do not collide (the reader deduplicates on
topic, partition and offset).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import msgspec
import numpy as np

from rendezvous.messages import Decision, InputEvent

log = logging.getLogger(__name__)

TIMESTAMP_CREATE_TIME = 1
"""``confluent_kafka.TIMESTAMP_CREATE_TIME``: the time the request was made."""
TOPICS = {"input": "input", "decisions": "decisions"}
DRAIN_S = 0.05
"""How often the archive's thread takes what the callers queued."""

_Item = tuple[str, str, Any, Any, float | None, float]
"""topic, id, the features (input) or the Decision, deadline_ms, ts, record time."""


def _plain(value: Any) -> Any:
    """numpy values (a caller's features may be arrays) as JSON can hold them."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise NotImplementedError(f"cannot archive a {type(value).__name__}")


_encoder = msgspec.json.Encoder(enc_hook=_plain)


class _Record:
    """The part of a ``confluent_kafka.Message`` the decoy's batching reads."""

    __slots__ = ("_key", "_offset", "_topic", "_ts", "_value")

    def __init__(self, topic: str, offset: int, key: bytes, value: bytes, ts: int) -> None:
        self._topic, self._offset, self._key, self._value, self._ts = topic, offset, key, value, ts

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return TIMESTAMP_CREATE_TIME, self._ts


class Archiver:
    """A bounded queue and the thread that writes it to ``root``."""

    def __init__(self, root: Path, capacity: int, roll_s: float) -> None:
        from rendezvous.decoy.writer import ArchiveWriter

        self._writer = ArchiveWriter(root)
        # deque.append and popleft are atomic: callers and the thread need no lock. The
        # bound is checked before appending, so it may be passed by a few concurrent rows.
        self._queue: deque[_Item] = deque()
        self._capacity = capacity
        self._stop = threading.Event()
        self._roll_s = roll_s
        self._offsets = dict.fromkeys(TOPICS, time.time_ns() // 1000)
        self.written = 0
        """Rows in durable files."""
        self.dropped = 0
        """Rows not archived: the queue was full."""
        self.failed: str | None = None
        """Why the last roll failed (the rows stay buffered and are tried again)."""
        self._thread = threading.Thread(target=self._run, name="rendezvous-embedded-archive",
                                        daemon=True)
        self._thread.start()

    def inputs(self, ids: Sequence[str], rows: Sequence[Any], deadline_ms: float | None,
               ts: float) -> None:
        """Queue a call's inputs (never blocks)."""
        queued, capacity = self._queue, self._capacity
        for rid, features in zip(ids, rows, strict=True):
            if len(queued) < capacity:
                queued.append(("input", rid, features, deadline_ms, ts, ts))
            else:
                self.dropped += 1

    def decisions(self, ids: Sequence[str], decisions: Sequence[Decision | None]) -> None:
        """Queue a call's decisions (never blocks)."""
        queued, capacity = self._queue, self._capacity
        for rid, decision in zip(ids, decisions, strict=True):
            if decision is None:
                continue
            if len(queued) < capacity:
                queued.append(("decisions", rid, decision, None, None, decision.decided_ms))
            else:
                self.dropped += 1

    def close(self) -> None:
        """Write out everything queued, then stop."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from rendezvous.decoy.batches import to_batches

        last_roll = time.monotonic()
        queued = self._queue
        while True:
            stopping = self._stop.wait(DRAIN_S)
            pending = [self._record(queued.popleft()) for _ in range(len(queued))]
            if pending:
                now_ms = int(time.time() * 1000)
                for group, batch in to_batches(cast(Any, pending), TOPICS, now_ms).items():
                    self._writer.add(group, batch)
            if stopping or time.monotonic() - last_roll >= self._roll_s:
                self._roll()
                last_roll = time.monotonic()
            if stopping:
                return

    def _record(self, item: _Item) -> _Record:
        topic, rid, payload, deadline_ms, ts, at = item
        if topic == "input":
            value = _encoder.encode(InputEvent(rid, payload, deadline_ms, ts=ts))
        else:
            value = _encoder.encode(msgspec.structs.replace(payload, id=rid))
        offset = self._offsets[topic]
        self._offsets[topic] = offset + 1
        return _Record(topic, offset, rid.encode(), value, int(at))

    def _roll(self) -> None:
        try:
            rolled = self._writer.roll(paced=False)
        except OSError as exc:
            self.failed = str(exc)
            log.warning("embedded archive: cannot write a file, keeping the rows to try again: "
                        "%s", exc)
            return
        self.failed = None
        self.written += sum(f.records for f in rolled)
