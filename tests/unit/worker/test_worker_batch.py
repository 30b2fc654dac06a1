"""The worker's decode pass (records -> rows / invalid / shed) and its commit pipeline,
with no broker."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np
import pytest

from rendezvous.model import sample_events
from rendezvous.transport.relay import Pipeline
from rendezvous.worker.batch import TIMESTAMP_NOT_AVAILABLE, RowBuilder, prepare
from rendezvous.worker.errors import DeliveryFailed

NOW = 1_700_000_000_000.0
NAMES = ["a", "b", "c"]


@dataclass
class Record:
    """Stands in for a confluent_kafka.Message."""

    data: bytes | None
    part: int = 0
    ts: float = NOW
    ts_type: int = 1
    off: int = 0

    def topic(self) -> str:
        return "in"

    def offset(self) -> int:
        return self.off

    def value(self) -> bytes | None:
        return self.data

    def partition(self) -> int:
        return self.part

    def timestamp(self) -> tuple[int, int]:
        return self.ts_type, int(self.ts)


def rec(event: dict | str | bytes, **kwargs: object) -> Record:
    data = event if isinstance(event, bytes) else (
        event.encode() if isinstance(event, str) else msgspec.json.encode(event))
    return Record(data, **kwargs)  # type: ignore[arg-type]


def run(*records: Record, names: list[str] = NAMES, now: float = NOW):
    return prepare(list(records), names, now, default_deadline_ms=50.0)


def test_named_and_list_forms_give_rows_in_model_order() -> None:
    batch = run(rec({"id": "x", "features": {"c": 3, "a": 1.5, "b": 2}}, part=2),
                rec({"id": "y", "features": [4.0, 5.0, 6.0]}, part=3))
    assert batch.ids == ["x", "y"]
    assert batch.partitions == [2, 3]
    assert batch.rows.dtype == np.float32
    np.testing.assert_array_equal(batch.rows, [[1.5, 2, 3], [4, 5, 6]])
    assert batch.invalid == [] and batch.shed == 0


@pytest.mark.parametrize("payload, reason", [
    (b"{not json", "undecodable"),
    (b"", "empty record"),
    ('{"id": "n", "features": [NaN, 1, 2]}', "undecodable"),
    ('{"id": "n", "features": [1e999, 1, 2]}', "undecodable"),
    ({"id": "m", "features": {"a": 1, "b": 2}}, "missing ['c']"),
    ({"id": "e", "features": {"a": 1, "b": 2, "c": 3, "d": 4}}, "extra ['d']"),
    ({"id": "r", "features": {"a": 1, "b": 2, "z": 3}}, "missing ['c'], extra ['z']"),
    ({"id": "l", "features": [1.0, 2.0]}, "expected 3 features, got 2"),
    ({"id": "s", "features": {"a": 1, "b": "two", "c": 3}}, "feature 'b' must be a number"),
    ({"id": "t", "features": [1, True, 3]}, "Expected `float`, got `bool`"),
    ({"features": [1, 2, 3]}, "undecodable"),
    ({"id": "", "features": [1, 2, 3]}, "empty id"),
])
def test_invalid_inputs_are_counted_with_a_reason_and_skipped(payload: object, reason: str) -> None:
    good = rec({"id": "ok", "features": [1, 2, 3]}, part=1)
    batch = run(rec(payload), good)  # type: ignore[arg-type]
    assert batch.ids == ["ok"] and batch.partitions == [1]
    assert len(batch.invalid) == 1
    assert reason in batch.invalid[0].reason


def test_expired_on_arrival_is_shed_not_scored() -> None:
    batch = run(
        rec({"id": "old-ts", "features": [1, 2, 3], "ts": NOW - 1000}),
        rec({"id": "old-record", "features": [1, 2, 3]}, ts=NOW - 51),
        rec({"id": "own-deadline", "features": [1, 2, 3], "ts": NOW - 100, "deadline_ms": 500}),
        rec({"id": "fresh", "features": [1, 2, 3]}, ts=NOW - 10),
    )
    assert batch.ids == ["own-deadline", "fresh"]
    assert batch.shed == 2 and batch.invalid == []


def test_deadline_exactly_now_is_shed() -> None:
    batch = run(rec({"id": "edge", "features": [1, 2, 3], "ts": NOW - 50}))
    assert batch.ids == [] and batch.shed == 1


def test_missing_record_timestamp_counts_from_arrival() -> None:
    batch = run(rec({"id": "x", "features": [1, 2, 3]}, ts=-1, ts_type=TIMESTAMP_NOT_AVAILABLE))
    assert batch.ids == ["x"] and batch.shed == 0


def test_invalid_takes_precedence_over_expired() -> None:
    batch = run(rec({"id": "x", "features": [1, 2], "ts": NOW - 1000}))
    assert len(batch.invalid) == 1 and batch.shed == 0


def test_empty_batch_gives_an_empty_array_of_the_model_width() -> None:
    batch = run()
    assert batch.rows.shape == (0, 3) and batch.rows.dtype == np.float32


def test_single_feature_model() -> None:
    batch = prepare([rec({"id": "x", "features": {"only": 7}})], ["only"], NOW, 50.0)
    np.testing.assert_array_equal(batch.rows, [[7.0]])


def test_sample_events_round_trip_exactly_as_float32() -> None:
    from rendezvous.model import load_dataset

    names = load_dataset().feature_names
    events = sample_events(50, seed=3) + sample_events(50, seed=4, named=False)
    builder = RowBuilder(names, 50.0)
    batch = builder.prepare([rec(e) for e in events], NOW)
    assert len(batch.ids) == 100
    expected = np.array([[e["features"][n] for n in names] for e in events[:50]]
                        + [e["features"] for e in events[50:]], dtype=np.float32)
    np.testing.assert_array_equal(batch.rows, expected)


class CommitRecorder:
    def __init__(self) -> None:
        self.commits: list[dict[tuple[str, int], int]] = []

    def commit(self, offsets: list, asynchronous: bool) -> None:
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})


class FakeProducer:
    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        return 0


def pipeline() -> tuple[Pipeline, CommitRecorder]:
    consumer = CommitRecorder()
    return Pipeline(consumer, FakeProducer()), consumer  # type: ignore[arg-type]


def test_offsets_are_committed_in_batch_order_once_acknowledged() -> None:
    pipe, consumer = pipeline()
    first = pipe.begin([Record(None, part=0, off=5), Record(None, part=1, off=2)])
    second = pipe.begin([Record(None, part=0, off=6)])
    first.pending, second.pending = 2, 1
    second.delivered(None, None)  # type: ignore[arg-type]
    pipe.settle(sync=True)
    assert consumer.commits == [], "a later batch must not commit past an unacknowledged one"
    first.delivered(None, None)  # type: ignore[arg-type]
    pipe.settle(sync=True)
    assert consumer.commits == []
    first.delivered(None, None)  # type: ignore[arg-type]
    pipe.settle(sync=True)
    assert consumer.commits == [{("in", 0): 7, ("in", 1): 3}]


def test_a_refused_delivery_stops_without_committing_that_batch() -> None:
    pipe, consumer = pipeline()
    ok = pipe.begin([Record(None, part=0, off=1)])
    bad = pipe.begin([Record(None, part=0, off=2)])
    ok.pending, bad.pending = 1, 1
    ok.delivered(None, None)  # type: ignore[arg-type]
    bad.delivered("broker said no", None)  # type: ignore[arg-type]
    with pytest.raises(DeliveryFailed, match="not committed"):
        pipe.settle(sync=True)
    pipe.drain()  # what closing the consumer does afterwards: nothing more
    assert consumer.commits == []
