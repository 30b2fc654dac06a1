"""The transport helpers with no broker: back-pressure retry, and where a reader trusts the
end of a partition."""

from __future__ import annotations

import io
from dataclasses import dataclass

from confluent_kafka import KafkaError

from rendezvous.replay.progress import Progress
from rendezvous.transport.clients import produce
from rendezvous.transport.reader import TopicReader


class FullOnce:
    """A producer whose local queue is full for the first ``full`` calls."""

    def __init__(self, full: int) -> None:
        self.full, self.produced, self.polls = full, [], 0

    def produce(self, topic: str, value: bytes, key: bytes | None, **options: object) -> None:
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        self.produced.append((topic, value, key, options))

    def poll(self, _timeout: float) -> int:
        self.polls += 1
        return 0


def test_produce_waits_for_room_then_sends_once() -> None:
    producer = FullOnce(full=3)
    produce(producer, "t", b"v", b"k", partition=2)  # type: ignore[arg-type]
    assert producer.produced == [("t", b"v", b"k", {"partition": 2})]
    assert producer.polls == 3


@dataclass
class Event:
    """A record or an end-of-partition event, as a consumer returns them."""

    part: int
    off: int
    eof: bool = False

    def error(self) -> KafkaError | None:
        return KafkaError(KafkaError._PARTITION_EOF) if self.eof else None

    def partition(self) -> int:
        return self.part

    def offset(self) -> int:
        return self.off


class Script:
    """A consumer that returns the given batches, one per poll."""

    def __init__(self, *batches: list[Event]) -> None:
        self.batches = list(batches)

    def poll(self, _timeout: float) -> Event | None:
        batch = self.batches[0] if self.batches else []
        return batch.pop(0) if batch else None

    def consume(self, _n: int, _timeout: float) -> list[Event]:
        return self.batches.pop(0) if self.batches else []


def reader(consumer: Script, ends: dict[int, int]) -> TopicReader:
    found = TopicReader.__new__(TopicReader)
    found.topic, found.consumer, found.ends, found.at_end = "t", consumer, ends, set()
    return found


def test_end_of_partition_is_trusted_only_at_the_high_watermark() -> None:
    tail = reader(Script([Event(0, 0, eof=True), Event(1, 0, eof=True)],
                         [Event(0, 0), Event(0, 1), Event(0, 2, eof=True)]), {0: 2, 1: 0})
    assert tail.poll() == []
    assert tail.at_end == {1} and not tail.caught_up(), "an early EOF below 2 is not the end"
    assert [e.off for e in tail.poll()] == [0, 1]
    assert tail.caught_up()


def test_a_record_after_the_end_means_not_at_the_end_any_more() -> None:
    tail = reader(Script([Event(0, 3, eof=True)], [Event(0, 3)]), {0: 3})
    tail.poll()
    assert tail.caught_up()
    tail.poll()
    assert not tail.caught_up()


def test_progress_shows_the_count_rate_and_note_once_closed() -> None:
    out = io.StringIO()
    bar = Progress(4, "sent", stream=out, unit="/s")
    bar.show(4, "results 3")
    bar.close("results 4")
    line = out.getvalue().strip().splitlines()[-1]
    assert line.startswith("sent [") and "4/4" in line and "100.0%" in line
    assert line.endswith("results 4")
