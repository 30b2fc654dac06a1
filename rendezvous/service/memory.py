"""serve's loop with no broker: topics, committed offsets and return addresses in memory —
the broker-free double a user's own tests import (no Kafka, no Redis).

A :class:`Broker` holds what Kafka and Redis would: records per topic and
partition (each with its offset), the offsets committed by serve, and the
replies sent. :class:`MemorySource` and :class:`MemorySink` are the loop's
source and sink over it, so a test drives the whole service loop — assignment,
recovery from what the ``scored`` topic holds, policy changes, dead letters,
replies, offset commits — in one thread, with a virtual clock. A restart is a
new loop with a new source and sink over the same broker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from rendezvous.messages import Policy, Scored, Undecodable, decode_scored, is_provisional
from rendezvous.service.control import newest_policy
from rendezvous.service.ports import Headers, Listener, Offsets, OutRecord, Redo
from rendezvous.settings import Settings
from rendezvous.transport.bad_records import BadRecords


class Record:
    """One record, with the methods of confluent-kafka's ``Message`` that serve reads."""

    __slots__ = ("_headers", "_key", "_offset", "_partition", "_timestamp", "_topic", "_value")

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None,
                 value: bytes | None, timestamp_ms: int, headers: Headers | None = None) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset
        self._key, self._value, self._timestamp = key, value, timestamp_ms
        self._headers = headers

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return 1, self._timestamp  # CreateTime

    def headers(self) -> Headers | None:
        return self._headers

    def __repr__(self) -> str:
        return f"Record({self._topic}/{self._partition}/{self._offset} key={self._key!r})"


class Broker:
    """Every topic in memory, in the order records were appended; ``clock`` stamps them."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.settings, self.clock = settings, clock
        self.log: list[Record] = []
        self.partitions: dict[str, dict[int, list[Record]]] = defaultdict(
            lambda: defaultdict(list))
        self.committed: dict[tuple[str, int], int] = {}
        self.replies: list[tuple[str, Scored]] = []

    def append(self, kind: str, value: bytes | None, key: bytes | str | None = None,
               partition: int = 0, headers: Headers | None = None) -> Record:
        """Append a record to the topic of ``kind`` (``input``, ``scores``, ...)."""
        return self.append_topic(self.settings.topic(kind), value, key, partition, headers)

    def append_topic(self, topic: str, value: bytes | None, key: bytes | str | None,
                     partition: int, headers: Headers | None = None) -> Record:
        """Append a record to ``topic`` (a full name)."""
        records = self.partitions[topic][partition]
        key = key.encode() if isinstance(key, str) else key
        record = Record(topic, partition, len(records), key, value, int(self.clock()), headers)
        records.append(record)
        self.log.append(record)
        return record

    def records(self, kind: str, partition: int | None = None) -> list[Record]:
        """The records of ``kind``'s topic (of one partition), in append order."""
        topic = self.settings.topic(kind)
        return [r for r in self.log if r.topic() == topic
                and (partition is None or r.partition() == partition)]

    def committed_offset(self, kind: str, partition: int) -> int | None:
        return self.committed.get((self.settings.topic(kind), partition))


class MemorySource:
    """``input`` and ``scores`` of a :class:`Broker`, for the partitions a test assigns."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.topics = (broker.settings.topic("input"), broker.settings.topic("scores"))
        self.positions: dict[tuple[str, int], int] = {}
        self.listener: Listener | None = None
        self._control_seen = 0
        self._bad = BadRecords("serve-memory")

    def open(self, listener: Listener) -> None:
        self.listener = listener

    def assign(self, partitions: Iterable[int]) -> None:
        """Give these partitions to the loop, as a rebalance would."""
        assert self.listener is not None, "open first"
        self.listener.assigned(self._seek({p: self._committed(p) for p in partitions}))

    def revoke(self, partitions: Iterable[int]) -> None:
        assert self.listener is not None
        partitions = list(partitions)
        self.listener.revoked(partitions)
        self._drop(partitions)

    def lose(self, partitions: Iterable[int]) -> None:
        assert self.listener is not None
        partitions = list(partitions)
        self.listener.lost(partitions)
        self._drop(partitions)

    def poll(self, max_records: int, timeout_s: float) -> Sequence[Record]:
        """Every record past the positions, in append order (never waits: time is virtual)."""
        out: list[Record] = []
        positions = self.positions
        for record in self.broker.log:
            where = (record.topic(), record.partition())
            if where in positions and record.offset() >= positions[where]:
                out.append(record)
                positions[where] = record.offset() + 1
                if len(out) == max_records:
                    break
        return out

    def rewind(self) -> dict[int, int | None]:
        return self._seek({p: self._committed(p) for _, p in self.positions})

    def answered(self, committed: Mapping[int, int | None]) -> dict[int, set[str]]:
        ids: dict[int, set[str]] = {p: set() for p in committed}
        for record in self.broker.records("scored"):
            # answered means: the final result (a provisional one answers nothing)
            if record.partition() in ids and not is_provisional(record.headers()):
                try:
                    ids[record.partition()].add(decode_scored(record.value()).id)
                except Undecodable:
                    continue
        return ids

    def current_policy(self) -> Policy | None:
        return self.new_policy()

    def new_policy(self) -> Policy | None:
        control = self.broker.records("control")
        found = newest_policy(control[self._control_seen:], self._bad)
        self._control_seen = len(control)
        return found

    def close(self) -> None:
        self.positions.clear()

    def _committed(self, partition: int) -> int | None:
        return self.broker.committed_offset("input", partition)

    def _seek(self, committed: dict[int, int | None]) -> dict[int, int | None]:
        for p, offset in committed.items():
            self.positions[(self.topics[0], p)] = offset or 0
            self.positions[(self.topics[1], p)] = self.broker.committed_offset("scores", p) or 0
        return committed

    def _drop(self, partitions: list[int]) -> None:
        for p in partitions:
            for topic in self.topics:
                self.positions.pop((topic, p), None)


class MemorySink:
    """Writes to a :class:`Broker` when a step ends, as if acknowledged then; commits the
    step's offsets and sends its replies only behind those writes.

    :meth:`fail_next_step` makes the next step's writes fail, as a broker that refuses
    them would (:class:`~.ports.Redo`: nothing of the step lands or is committed).
    """

    fences_zombies = False

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._records: list[OutRecord] = []
        self._replies: list[tuple[str, Scored]] = []
        self._fail = False

    def fail_next_step(self) -> None:
        self._fail = True

    def write(self, record: OutRecord) -> None:
        self._records.append(record)

    def reply(self, reply_to: str, scored: Scored) -> None:
        self._replies.append((reply_to, scored))

    def end_step(self, offsets: Callable[[], Offsets] | None) -> bool:
        if self._fail:
            self._fail = False
            self.discard()
            raise Redo("a result was not written (injected)")
        self.commit_all(offsets() if offsets is not None else [])
        return True

    def commit_all(self, offsets: Offsets) -> None:
        for topic, value, key, partition, headers in self._records:
            self.broker.append_topic(topic, value, key, partition, headers)
        for position in offsets:
            self.broker.committed[(position.topic, position.partition)] = position.offset
        self.broker.replies.extend(self._replies)
        self.discard()

    def discard(self, settle_s: float = 0.0) -> None:
        self._records.clear()
        self._replies.clear()

    def output_p99_ms(self) -> float | None:
        return None

    def close(self) -> None:
        pass
