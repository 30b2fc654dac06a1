"""What Kafka still holds of a forgotten request, and waiting for the decoy's buffer.

``rendezvous archive forget`` removes a request from the archive's files. Two places are
not files:

- the decoy's buffer: records polled but not yet rolled (up to ``roll_seconds``, longer
  while the disk is full). :func:`wait_for_decoy` takes the recorded topics' end offsets
  when ``forget`` starts and waits until the decoy's consumer group has committed past
  them: the decoy commits only after the file holding a record is durable, so by then
  everything written before ``forget`` started is in a finished file, and ``forget``
  reads the files after that. (Chosen over reading the file being written: the buffer
  is in the decoy's memory, not in any file.)
- the Kafka topics themselves, until their retention deletes the request:
  :func:`still_held` reads each pipeline topic's ``retention.ms`` and ``segment.ms``
  (admin client), says whether the topic still holds the request (exactly, by
  partition and offset, for the topics the archive recorded; else whether it holds
  records from the request's time) and how long until retention removes it. Kafka
  cannot delete one record from a topic that is not compacted; a record goes when its
  whole log segment is older than ``retention.ms``, and the segment still being written
  is never deleted, so the time is "at the earliest", and at most ``segment.ms`` later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from rendezvous.archive.retention import Located
from rendezvous.settings import Settings
from rendezvous.transport.connect import kafka_config

REQUEST_TOPICS = ("input", "scores", "scored", "decisions", "deadletter", "feedback")
"""The pipeline's topics whose records carry a request id (logical names)."""
CO_PARTITIONED = ("input", "scores", "scored", "decisions")
"""A request's records in these sit in the same partition number as its input."""
RAW_INPUT = ("input", "deadletter")
"""Topics holding a request's input as it was sent: never redacted in Kafka."""
NOT_OFFSET = -1001  # librdkafka's OFFSET_INVALID: no committed offset


class Cluster(Protocol):
    """What :func:`wait_for_decoy` and :func:`still_held` ask Kafka (faked in tests)."""

    def partitions(self, topic: str) -> list[int] | None: ...

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]: ...

    def committed(self, topic: str, partitions: Sequence[int]) -> dict[int, int | None]: ...

    def assigned(self, topic: str) -> bool: ...

    def offset_for_time(self, topic: str, partition: int, ms: int) -> int: ...

    def config(self, topic: str) -> dict[str, str]: ...


class KafkaCluster:
    """:class:`Cluster` on a real cluster: one consumer of the decoy's group that never
    subscribes or commits (it only reads the group's committed offsets), and an admin
    client for the topics' configuration."""

    def __init__(self, settings: Settings, group: str, timeout_s: float = 10.0) -> None:
        from rendezvous.transport.clients import make_consumer

        self.timeout_s = timeout_s
        self.group = group
        self._consumer = make_consumer(settings, group, **{"enable.auto.commit": False})
        self._admin = AdminClient(kafka_config(settings))

    def close(self) -> None:
        self._consumer.close()

    def partitions(self, topic: str) -> list[int] | None:
        found = self._consumer.list_topics(topic, timeout=self.timeout_s).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return None
        return sorted(found.partitions)

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        low, high = self._consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=self.timeout_s, cached=False)
        return int(low), int(high)

    def committed(self, topic: str, partitions: Sequence[int]) -> dict[int, int | None]:
        done = self._consumer.committed([TopicPartition(topic, p) for p in partitions],
                                        timeout=self.timeout_s)
        return {tp.partition: (None if tp.offset < 0 else int(tp.offset)) for tp in done}

    def assigned(self, topic: str) -> bool:
        """Whether a live member of the group is assigned partitions of ``topic``."""
        future = self._admin.describe_consumer_groups(
            [self.group], request_timeout=self.timeout_s)[self.group]
        members = future.result(self.timeout_s).members or []
        return any(tp.topic == topic for member in members
                   for tp in (member.assignment.topic_partitions if member.assignment else []))

    def offset_for_time(self, topic: str, partition: int, ms: int) -> int:
        (found,) = self._consumer.offsets_for_times([TopicPartition(topic, partition, ms)],
                                                    timeout=self.timeout_s)
        return int(found.offset)

    def config(self, topic: str) -> dict[str, str]:
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        entries = self._admin.describe_configs([resource])[resource].result(self.timeout_s)
        return {name: entry.value for name, entry in entries.items()}


@dataclass(frozen=True)
class Waited:
    """What :func:`wait_for_decoy` found: ``done`` when the decoy has archived everything
    written before the wait began (or records none of it); ``pending`` the partitions it
    had not, as (topic, partition, committed, end offset)."""

    done: bool
    waited_s: float
    pending: tuple[tuple[str, int, int | None, int], ...] = ()
    unrecorded: tuple[str, ...] = ()
    """Topics the decoy's group has never committed and no live member of it reads:
    nothing of them is archived."""


def wait_for_decoy(cluster: Cluster, topics: Iterable[str], timeout_s: float,
                   poll_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> Waited:
    """Wait until the decoy's group has committed, on every partition of ``topics`` (full
    names), the end offset the partition had when this was called."""
    started = clock()
    targets: dict[tuple[str, int], int] = {}
    unrecorded = []
    for topic in topics:
        partitions = cluster.partitions(topic)
        if not partitions:
            continue
        committed = cluster.committed(topic, partitions)
        if all(offset is None for offset in committed.values()) and not cluster.assigned(topic):
            unrecorded.append(topic)  # no decoy records this topic: nothing to wait for
            continue
        for partition in partitions:
            low, high = cluster.watermarks(topic, partition)
            if high > low:
                targets[(topic, partition)] = high
    pending: list[tuple[str, int, int | None, int]] = []
    while True:
        pending = []
        for topic in {t for t, _ in targets}:
            wanted = {p: high for (t, p), high in targets.items() if t == topic}
            committed = cluster.committed(topic, sorted(wanted))
            pending += [(topic, p, committed.get(p), high) for p, high in sorted(wanted.items())
                        if (committed.get(p) or 0) < high]
        waited = clock() - started
        if not pending or waited >= timeout_s:
            return Waited(not pending, waited, tuple(sorted(pending)), tuple(unrecorded))
        sleep(poll_s)


@dataclass(frozen=True)
class Held:
    """What one topic still holds of the forgotten request."""

    topic: str
    """The full topic name."""
    logical: str
    holds: bool | None
    """True: it holds the request (or, where no row was archived, records from its time);
    False: retention has removed them; None: cannot tell (nothing to date the request)."""
    where: str
    exact: bool
    """Whether ``holds`` comes from the request's own offsets (else from its time)."""
    retention_ms: int | None
    """``retention.ms``; -1: kept forever; None: compacted (``cleanup.policy=compact``)."""
    segment_ms: int | None
    remaining_ms: int | None
    """Until retention may delete it, at the earliest (0: due now)."""

    def line(self) -> str:
        """One line for ``rendezvous archive forget``."""
        head = f"kafka {self.topic}: "
        raw = (" Its records there are the input as sent, NOT redacted (the archive's "
               "redaction applies to the archive only).") if self.logical in RAW_INPUT else ""
        if self.retention_ms is None:
            return (head + "compacted (cleanup.policy=compact): a record stays until a newer "
                    "one with the same key replaces it." + raw)
        if self.holds is False:
            return head + (f"no longer holds it: retention has removed {self.where}."
                           if self.exact else
                           f"holds no record from the request's time ({self.where}).")
        if self.retention_ms < 0:
            keep = "kept forever (retention.ms=-1): delete it there yourself"
        elif self.remaining_ms is None:
            keep = (f"a record is removed at most {duration(self.retention_ms)} + segment.ms "
                    f"{duration(self.segment_ms)} after it was written (retention.ms)")
        else:
            later = (f", at most {duration(self.remaining_ms + self.segment_ms)}: its log "
                     f"segment must have rolled, segment.ms {duration(self.segment_ms)}"
                     if self.segment_ms else "")
            keep = (f"retention removes it in {duration(self.remaining_ms)} at the earliest"
                    f"{later} (retention.ms {duration(self.retention_ms)})")
        what = ("still holds it" if self.holds and self.exact else
                "holds records from the request's time" if self.holds else
                "may hold it (nothing archived to date the request)")
        return f"{head}{what} ({self.where}); {keep}.{raw}"


def still_held(cluster: Cluster, settings: Settings, located: Sequence[Located],
               now_ms: int | None = None,
               topics: Sequence[str] = REQUEST_TOPICS) -> list[Held]:
    """For each pipeline topic, what it still holds of the request whose archived rows
    are ``located`` (see :class:`Held`)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    times = [r.timestamp_ms for r in located if r.timestamp_ms is not None]
    first_ms = min(times) if times else None
    input_partitions = sorted({r.partition for r in located if r.topic == "input"})
    found = []
    for logical in topics:
        topic = settings.topic(logical)
        partitions = cluster.partitions(topic)
        if partitions is None:
            continue
        config = cluster.config(topic)
        compact = "compact" in config.get("cleanup.policy", "delete")
        retention = None if compact else int(config.get("retention.ms", "-1"))
        segment = int(config["segment.ms"]) if config.get("segment.ms") else None
        own = [r for r in located if r.topic == logical]
        holds: bool | None
        if own:  # archived: its own partition and offset say it exactly
            held = [r for r in own if _within(cluster.watermarks(topic, r.partition), r.offset)]
            holds, exact = bool(held), True
            where = ", ".join(f"partition {r.partition} offset {r.offset}" for r in own[:5])
            newest = max((r.timestamp_ms for r in held if r.timestamp_ms is not None),
                         default=first_ms)
        elif first_ms is not None:
            candidates = (input_partitions if logical in CO_PARTITIONED and input_partitions
                          else partitions)
            at = [p for p in candidates if _has_time(cluster, topic, p, first_ms)]
            holds, exact, newest = bool(at), False, first_ms
            where = (f"partition {', '.join(map(str, at or candidates))}, from "
                     f"{_iso(first_ms)}")
        else:
            holds, exact, newest, where = None, False, None, "no archived row"
        remaining = (max(0, newest + retention - now_ms)
                     if holds and newest is not None and retention is not None
                     and retention >= 0 else None)
        found.append(Held(topic, logical, holds, where, exact, retention, segment, remaining))
    return found


def _within(watermarks: tuple[int, int], offset: int) -> bool:
    low, high = watermarks
    return low <= offset < high


def _has_time(cluster: Cluster, topic: str, partition: int, ms: int) -> bool:
    """Whether the partition still holds records from about ``ms`` (a second before): the
    first offset at or after that time is past the partition's start, or nothing was
    ever deleted from it."""
    offset = cluster.offset_for_time(topic, partition, ms - 1000)
    if offset < 0:
        return False  # no record that late: none of the request's either
    low, _ = cluster.watermarks(topic, partition)
    return offset > low or low == 0


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def duration(ms: int | None) -> str:
    """``6d 23h``, ``5h 2m``, ``42s``: two units at most."""
    if ms is None:
        return "?"
    seconds = max(0, int(ms // 1000))
    units = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        if seconds >= size or (name == "s" and not parts):
            parts.append(f"{seconds // size}{name}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def kafka_error(exc: BaseException) -> str:
    """A Kafka error in one line."""
    if isinstance(exc, KafkaException) and exc.args:
        return str(exc.args[0])
    return str(exc)
