"""Record embedded traffic in the decoy's archive layout, off the latency path.

Each input is archived as the ``input`` record the pipeline would have carried (an
:class:`~rendezvous.messages.InputEvent`, key = its id) and each decision as its
``decisions`` record, written by the decoy's own code (:func:`rendezvous.decoy.batches.to_batches`,
:class:`rendezvous.decoy.writer.ArchiveWriter`), so ``replay``, ``backtest`` and
``read_archive`` read it like a deployment's archive.

``score`` only queues the objects (:class:`~rendezvous.embedded.offpath.OffPath`: never a
wait; when full, dropped and counted); the queue's thread encodes and buffers them, and
rolls a durable file every ``roll_s`` and at ``close()``. Records go to partition 0 at
offsets counted from the archiver's start time in microseconds, so two runs into one
directory do not collide (the reader deduplicates on topic, partition and offset).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import msgspec
import numpy as np

from rendezvous.embedded.offpath import OffPath
from rendezvous.messages import Decision, InputEvent

log = logging.getLogger(__name__)

TIMESTAMP_CREATE_TIME = 1
"""``confluent_kafka.TIMESTAMP_CREATE_TIME``: the time the request was made."""
TOPICS = {"input": "input", "decisions": "decisions"}

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
        self._roll_s = roll_s
        self._last_roll = time.monotonic()
        self._offsets = dict.fromkeys(TOPICS, time.time_ns() // 1000)
        self.written = 0
        """Rows in durable files."""
        self.failed: str | None = None
        """Why the last roll failed (the rows stay buffered and are tried again)."""
        self._queue: OffPath[_Item] = OffPath("rendezvous-embedded-archive", capacity,
                                              self._buffer, self._maybe_roll)

    @property
    def dropped(self) -> int:
        """Rows not archived: the queue was full."""
        return self._queue.dropped

    def inputs(self, ids: Sequence[str], rows: Sequence[Any], deadline_ms: float | None,
               ts: float) -> None:
        """Queue a call's inputs (never blocks)."""
        offer = self._queue.offer
        for rid, features in zip(ids, rows, strict=True):
            offer(("input", rid, features, deadline_ms, ts, ts))

    def decisions(self, ids: Sequence[str], decisions: Sequence[Decision | None]) -> None:
        """Queue a call's decisions (never blocks)."""
        offer = self._queue.offer
        for rid, decision in zip(ids, decisions, strict=True):
            if decision is not None:
                offer(("decisions", rid, decision, None, None, decision.decided_ms))

    def close(self) -> None:
        """Write out everything queued, then stop."""
        self._queue.close()

    def _buffer(self, items: list[_Item]) -> None:
        from rendezvous.decoy.batches import to_batches

        records = [self._record(item) for item in items]
        for group, batch in to_batches(cast(Any, records), TOPICS,
                                       int(time.time() * 1000)).items():
            self._writer.add(group, batch)

    def _maybe_roll(self, stopping: bool) -> None:
        if stopping or time.monotonic() - self._last_roll >= self._roll_s:
            self._roll()
            self._last_roll = time.monotonic()

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
