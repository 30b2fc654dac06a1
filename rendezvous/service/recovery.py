"""After an assignment: which requests of a partition were already answered.

The ``scored`` topic is the changelog: a request at or after the committed
input offset may have been answered before a crash or a rebalance, and its
answer, if committed, is on the same partition number of ``scored``. Reading
that tail (``read_committed``) from shortly before the committed input
record's timestamp gives the ids not to answer again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from rendezvous.errors import RendezvousError
from rendezvous.messages import Undecodable, decode_scored, is_provisional
from rendezvous.settings import Settings
from rendezvous.transport.bad_records import BadRecords, where
from rendezvous.transport.reader import NotAtEnd, TopicReader

# Answers are written after their request; the margin covers clock skew between
# producers and the longest deadline.
MARGIN_MS = 120_000
FETCH = {"fetch.wait.max.ms": 10}
_BEGINNING = -1.0
"""No committed input offset: read the partition's answers from the beginning."""


class RecoveryError(RendezvousError, RuntimeError):
    """The answered ids of a partition could not be read back."""


def answered_ids(settings: Settings, committed_inputs: Mapping[int, int | None],
                 timeout_s: float = 60.0) -> dict[int, set[str]]:
    """Per partition: the ids answered on ``scored`` since its committed input offset.

    All partitions are read at once, to their ends (``read_committed``).
    """
    scored = settings.topic("scored")
    with TopicReader(settings, scored, {}, name="recovery", config=FETCH) as reader:
        resume = {p: c for p, c in committed_inputs.items() if c is not None and c >= 0}
        since = _timestamps_at(settings, resume)
        reader.assign({p: _start_offset(reader, p, since.get(p) if p in resume else _BEGINNING)
                       for p in committed_inputs})
        ids: dict[int, set[str]] = {p: set() for p in committed_inputs}
        bad = BadRecords("recovery")
        try:
            for record in reader.read_to_end(timeout_s):
                if is_provisional(record.headers()):  # answered means: the final result
                    continue
                try:
                    ids[int(record.partition() or 0)].add(decode_scored(record.value()).id)
                except Undecodable as exc:  # not ours: nothing it could have answered
                    bad.skip("scored", where(record), str(exc))
        except NotAtEnd as exc:
            raise RecoveryError(f"could not read {exc} (an open transaction of another "
                                "instance?); restart, and give every serve instance its own "
                                "--instance-id") from exc
        return ids


def _start_offset(reader: TopicReader, partition: int, since: float | None) -> int:
    if since == _BEGINNING:
        return OFFSET_BEGINNING
    if since is None:  # nothing at the committed offset yet: nothing to skip
        since = _now_ms()
    found = reader.consumer.offsets_for_times(
        [TopicPartition(reader.topic, partition, int(since - MARGIN_MS))], timeout=10)[0]
    return found.offset if found.offset >= 0 else reader.high_watermark(partition)


def _timestamps_at(settings: Settings, offsets: dict[int, int],
                   timeout_s: float = 10.0) -> dict[int, float | None]:
    """Per partition, the timestamp of the input record at ``offsets[partition]``; None when
    there is none (yet), or it did not come in ``timeout_s``."""
    if not offsets:
        return {}
    found: dict[int, float | None] = {}
    with TopicReader(settings, settings.topic("input"), offsets, name="recovery",
                     config=FETCH) as inputs:
        give_up = time.monotonic() + timeout_s
        while len(found) < len(offsets) and time.monotonic() < give_up:
            for record in inputs.poll(0.1, 100):
                partition = int(record.partition() or 0)
                if partition not in found:
                    found[partition] = float(record.timestamp()[1])
                    inputs.consumer.pause([TopicPartition(inputs.topic, partition)])
            for partition in inputs.at_end - found.keys():
                found[partition] = None
    return found


def _now_ms() -> float:
    return time.time() * 1000
