"""The raw archive without a broker: writing durably, reading back deduplicated, skipping
broken files, reading older schema versions, and the replay order derived from it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Message

from rendezvous.archive import (
    ARCHIVE_SCHEMA,
    SCHEMA_VERSION,
    ArchiveError,
    read_archive,
    skipped_files,
    to_epoch_ms,
)
from rendezvous.archive.layout import HOUR_MS
from rendezvous.archive.schema import VERSION_KEY
from rendezvous.decoy.batches import payload_bytes, to_batches
from rendezvous.decoy.writer import ROW_GROUP_ROWS, ArchiveWriter
from rendezvous.process import CpuBudget
from rendezvous.replay.pacing import Pacer
from rendezvous.replay.replayer import replay_order

T0 = to_epoch_ms("2024-03-05T07:15:00Z")
LOGICAL = {"p.input": "input", "p.decisions": "decisions"}


def record(offset: int, partition: int = 0, value: bytes | None = None, ts: int = T0,
           ts_type: int = 1, topic: str = "p.input", headers: list | None = None) -> Message:
    return Message(topic=topic, partition=partition, offset=offset, key=f"k{offset}".encode(),
                   value=value if value is not None else f"v{partition}-{offset}".encode(),
                   headers=headers, timestamp=(ts_type, ts))


def archive(root: Path, records: list[Message], arrival_ms: int = T0 + 5) -> list[Path]:
    writer = ArchiveWriter(root)
    for group, batch in to_batches(records, LOGICAL, arrival_ms).items():
        writer.add(group, batch)
    return [f.path for f in writer.roll()]


def test_round_trip_is_byte_identical_and_hive_laid_out(tmp_path: Path) -> None:
    payloads = [b'{"id":"a","features":[1.0]}', b"not json \xff\x00", b"",
                b'{"id":"b"', bytes(range(256))]
    records = [record(i, value=v, headers=[("h", b"\x01"), ("n", None)] if i == 1 else None)
               for i, v in enumerate(payloads)]
    paths = archive(tmp_path, records)
    assert len(paths) == 1
    relative = paths[0].relative_to(tmp_path)
    assert relative.parts[:3] == ("input", "date=2024-03-05", "hour=07")
    assert relative.name.startswith("part-0-0-") and relative.suffix == ".parquet"
    assert not list(tmp_path.rglob("*.tmp"))
    assert pq.read_schema(paths[0]).metadata[VERSION_KEY] == str(SCHEMA_VERSION).encode()

    table = read_archive(tmp_path)
    assert table.schema.equals(ARCHIVE_SCHEMA)
    assert table["value"].to_pylist() == payloads
    assert table["headers"].to_pylist()[1] == [{"key": "h", "value": b"\x01"},
                                               {"key": "n", "value": None}]
    assert table["timestamp_ms"].to_pylist() == [T0] * 5
    assert table["arrival_ms"].to_pylist() == [T0 + 5] * 5
    assert set(table["topic"].to_pylist()) == {"input"}
    assert skipped_files(table) == []


def test_plain_parquet_with_hive_partitions_reads_without_this_package(tmp_path: Path) -> None:
    archive(tmp_path, [record(i) for i in range(3)])
    table = pq.read_table(tmp_path / "input", partitioning="hive")
    assert table.num_rows == 3
    assert {"date", "hour", "value", "offset"} <= set(table.column_names)


def test_duplicates_from_a_rewrite_are_read_once_in_partition_order(tmp_path: Path) -> None:
    first = [record(i, partition=i % 2) for i in range(10)]
    archive(tmp_path, first)
    archive(tmp_path, first[4:] + [record(10, partition=0)])  # a restart re-reads offsets 4..9
    assert pq.read_table(tmp_path / "input").num_rows == 17  # raw archive holds duplicates
    table = read_archive(tmp_path, "input")
    pairs = list(zip(table["partition"].to_pylist(), table["offset"].to_pylist(), strict=True))
    assert pairs == sorted({(i % 2, i) for i in range(10)} | {(0, 10)})


def test_records_are_filed_by_their_own_hour_and_filtered_by_time(tmp_path: Path) -> None:
    late = T0 + HOUR_MS
    archive(tmp_path, [record(0, ts=T0), record(1, ts=late), record(2, ts=-1, ts_type=0)],
            arrival_ms=late + 10)
    hours = sorted(p.parent.name for p in tmp_path.rglob("*.parquet"))
    assert hours == ["hour=07", "hour=08"]
    assert read_archive(tmp_path, end=late)["offset"].to_pylist() == [0]
    # no broker timestamp: the arrival time counts
    assert read_archive(tmp_path, start=late)["offset"].to_pylist() == [1, 2]
    assert read_archive(tmp_path, start=datetime(2024, 3, 5, 7, tzinfo=UTC),
                        end="2024-03-05T07:30:00")["offset"].to_pylist() == [0]
    assert read_archive(tmp_path, topic="decisions").num_rows == 0


def test_truncated_and_corrupt_files_are_skipped_by_name(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    good = archive(tmp_path, [record(i) for i in range(5)])[0]
    truncated = archive(tmp_path, [record(i, partition=1) for i in range(5)])[0]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    garbage = good.with_name("part-2-0-garbage.parquet")
    garbage.write_bytes(b"PAR1 this is not parquet at all")
    with caplog.at_level(logging.WARNING):
        table = read_archive(tmp_path)
    assert table["partition"].to_pylist() == [0] * 5
    skipped = {s["path"] for s in skipped_files(table)}
    assert skipped == {str(truncated), str(garbage)}
    for path in (truncated, garbage):
        assert any(str(path) in message for message in caplog.messages)


def test_a_version_0_file_is_read_in_the_current_schema(tmp_path: Path) -> None:
    # Hand-made version 0: no arrival_ms, no schema_version column.
    v0 = pa.schema([f for f in ARCHIVE_SCHEMA if f.name not in ("arrival_ms", "schema_version")],
                   metadata={VERSION_KEY: b"0"})
    table = pa.table({"topic": ["input"] * 2, "partition": [3, 3], "offset": [7, 8],
                      "key": [b"a", b"b"], "value": [b"x", b"y"], "headers": [None, None],
                      "timestamp_ms": [T0, T0], "timestamp_type": [1, 1]}, schema=v0)
    directory = tmp_path / "input" / "date=2024-03-05" / "hour=07"
    directory.mkdir(parents=True)
    pq.write_table(table, directory / "part-3-7-old.parquet")
    archive(tmp_path, [record(9, partition=3)])
    read = read_archive(tmp_path)
    assert read.schema.equals(ARCHIVE_SCHEMA)
    assert read["offset"].to_pylist() == [7, 8, 9]
    assert read["arrival_ms"].to_pylist() == [None, None, T0 + 5]
    assert read["schema_version"].to_pylist() == [0, 0, 1]
    assert read["value"].to_pylist() == [b"x", b"y", b"v3-9"]


def test_a_file_from_a_newer_version_is_skipped_with_the_reason(tmp_path: Path) -> None:
    path = archive(tmp_path, [record(0)])[0]
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({VERSION_KEY: b"99"}), path)
    read = read_archive(tmp_path)
    assert read.num_rows == 0
    assert "newer" in skipped_files(read)[0]["reason"]


def test_a_failed_roll_leaves_no_temporary_file_and_keeps_the_buffer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = ArchiveWriter(tmp_path)
    for group, batch in to_batches([record(i, partition=i % 2) for i in range(4)],
                                   LOGICAL, T0).items():
        writer.add(group, batch)
    calls = {"n": 0}
    real = pq.ParquetWriter.write_batch

    def fail_second(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pq.ParquetWriter, "write_batch", fail_second)
    with pytest.raises(OSError, match="disk full"):
        writer.roll()
    assert list(tmp_path.rglob("*.parquet*")) == []
    assert list(tmp_path.rglob(".*.tmp")) == []
    assert writer.buffered_records == 4
    monkeypatch.setattr(pq.ParquetWriter, "write_batch", real)
    assert sum(f.records for f in writer.roll()) == 4
    assert writer.buffered_records == 0 and writer.buffered_bytes == 0
    assert read_archive(tmp_path).num_rows == 4


def test_payload_bytes_counts_keys_and_values() -> None:
    batches = to_batches([record(0, value=b"12345"), record(1, value=b"")], LOGICAL, T0)
    (batch,) = batches.values()
    assert payload_bytes(batch) == len(b"k0") + 5 + len(b"k1")


def test_missing_archive_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no archive"):
        read_archive(tmp_path / "nope")


def test_times_parse_as_utc() -> None:
    assert to_epoch_ms("2024-03-05T07:15:00") == T0
    assert to_epoch_ms("2024-03-05T08:15:00+01:00") == T0
    assert to_epoch_ms(str(T0)) == T0
    assert to_epoch_ms(datetime(2024, 3, 5, 7, 15)) == T0


def test_replay_order_follows_time_without_reordering_a_partition(tmp_path: Path) -> None:
    # partition 0's producer clock jumps back at offset 2: it must still come after offset 1
    stamps = {(0, 0): 10, (0, 1): 50, (0, 2): 20, (1, 0): 30, (1, 1): 40, (1, 2): 60}
    archive(tmp_path, [record(o, partition=p, ts=T0 + t) for (p, o), t in stamps.items()])
    table = read_archive(tmp_path)
    order = replay_order(table)
    sent = [(table["partition"][i].as_py(), table["offset"][i].as_py()) for i in order]
    assert sent == [(0, 0), (1, 0), (1, 1), (0, 1), (0, 2), (1, 2)]
    for partition in (0, 1):
        offsets = [o for p, o in sent if p == partition]
        assert offsets == sorted(offsets)


def test_pacer_rate_speed_and_max() -> None:
    now = [100.0]
    rate = Pacer("rate", 10.0, clock=lambda: now[0])
    assert rate.delay(0, 0) == 0.0
    assert rate.delay(5, 0) == pytest.approx(0.5)
    now[0] = 101.0
    assert rate.delay(5, 0) == 0.0  # late: send at once
    speed = Pacer("speed", 2.0, clock=lambda: now[0])
    assert speed.delay(0, 1_000) == 0.0
    assert speed.delay(1, 3_000) == pytest.approx(1.0)  # 2 s recorded, played 2x faster
    assert Pacer("max").delay(10**6, 10**12) == 0.0
    with pytest.raises(ValueError):
        Pacer("rate", 0.0)


def test_empty_archive_reads_as_an_empty_table(tmp_path: Path) -> None:
    table = read_archive(tmp_path)
    assert table.num_rows == 0 and table.schema.equals(ARCHIVE_SCHEMA)
    assert len(replay_order(table)) == 0
    assert np.asarray(replay_order(table)).dtype == np.int64


class CountingBudget(CpuBudget):
    """A budget that never sleeps, and counts how often the writer asked it."""

    def __init__(self) -> None:
        super().__init__(0.25, every=1)
        self.asked = 0

    def pause_s(self) -> float:
        self.asked += 1
        return 0.0


def test_a_paced_roll_encodes_bounded_row_groups_and_asks_the_budget_after_each(
        tmp_path: Path) -> None:
    rows = 2 * ROW_GROUP_ROWS + 10
    budget = CountingBudget()
    writer = ArchiveWriter(tmp_path, budget=budget)
    for group, batch in to_batches([record(i) for i in range(rows)], LOGICAL, T0).items():
        writer.add(group, batch)
    [rolled] = writer.roll()
    assert pq.ParquetFile(rolled.path).metadata.num_row_groups == 3
    assert budget.asked == 3
    assert read_archive(tmp_path).num_rows == rows

    for group, batch in to_batches([record(rows + i) for i in range(10)], LOGICAL, T0).items():
        writer.add(group, batch)
    writer.roll(paced=False)  # a revoke or a shutdown does not wait for the budget
    assert budget.asked == 3


# --- issue 31, item 5: forget by gateway id and by prefix, the decoy's buffer, Kafka ---------

TOKEN = "0123456789abcdef0123456789abcdef"  # a gateway call's token: 128 bits, hex
OLD_TOKEN = "8bdf447318ef1"  # a token of the gateway before issue 31: 48 bits + a counter


def requests(root: Path, ids: list[str], first: int = 0, topic: str = "p.input",
             partition: int = 0) -> None:
    """One input (or decision) per id, keyed by the id, as serve and the gateway write."""
    import msgspec

    archive(root, [Message(topic=topic, partition=partition, offset=first + i,
                           key=rid.encode(), timestamp=(1, T0 + i),
                           value=msgspec.json.encode({"id": rid, "features": [1.0]}))
                   for i, rid in enumerate(ids)])


def archived_ids(root: Path) -> list[str]:
    import msgspec

    return sorted(msgspec.json.decode(v)["id"]
                  for v in read_archive(root).column("value").to_pylist())


def test_forget_an_id_takes_the_rows_the_gateway_made_of_it(tmp_path: Path) -> None:
    from rendezvous.archive.retention import forget

    gateway_rows = [f"r1.{TOKEN}.0", f"r1.{TOKEN}.1", f"r1.{OLD_TOKEN}.0"]
    others = ["r10", f"r10.{TOKEN}.0", "r1.5", f"r1.{TOKEN}", f"xr1.{TOKEN}.0", "r2"]
    requests(tmp_path, ["r1", *gateway_rows, *others])
    # its decision, keyed by the request id too
    requests(tmp_path, [f"r1.{TOKEN}.1"], topic="p.decisions")
    done = forget(tmp_path, "r1")
    assert done.rows == 5
    assert archived_ids(tmp_path) == sorted(others)
    assert sorted(r.request_id for r in done.located) == sorted(
        ["r1", *gateway_rows, f"r1.{TOKEN}.1"])
    assert {(r.topic, r.partition) for r in done.located} == {("input", 0), ("decisions", 0)}
    assert all(r.timestamp_ms is not None for r in done.located)


def test_forget_the_gateways_rendezvous_id_takes_its_rows_only(tmp_path: Path) -> None:
    from rendezvous.archive.retention import forget

    other = "fedcba9876543210fedcba9876543210"
    requests(tmp_path, [f"r1.{TOKEN}.0", f"r1.{TOKEN}.1", f"r1.{other}.0", TOKEN + ".0"])
    assert forget(tmp_path, f"r1.{TOKEN}").rows == 2
    assert archived_ids(tmp_path) == [TOKEN + ".0", f"r1.{other}.0"]
    assert forget(tmp_path, TOKEN).rows == 1  # a call without an id: rows <token>.<row>
    assert archived_ids(tmp_path) == [f"r1.{other}.0"]


def test_forget_by_prefix(tmp_path: Path) -> None:
    from rendezvous.archive.retention import Selector, forget

    requests(tmp_path, ["cust-42-a", f"cust-42-b.{TOKEN}.0", "cust-420", "cust-4", "x"])
    done = forget(tmp_path, Selector(prefixes=("cust-42-",)))
    assert done.rows == 2 and archived_ids(tmp_path) == ["cust-4", "cust-420", "x"]
    assert forget(tmp_path, Selector(ids=("x",), prefixes=("cust-4",))).rows == 3
    with pytest.raises(ArchiveError):
        Selector()
    with pytest.raises(ArchiveError):
        Selector(prefixes=("",))


def test_forget_finds_a_request_by_its_values_id_when_its_key_is_another(
        tmp_path: Path) -> None:
    """Keys can be redacted (hashed) or be something else entirely: the value's id."""
    import msgspec

    from rendezvous.archive.retention import forget

    archive(tmp_path, [Message(topic="p.input", partition=0, offset=i, key=b"hmac-sha256:ab",
                               value=msgspec.json.encode({"id": rid}), timestamp=(1, T0))
                       for i, rid in enumerate([f"r1.{TOKEN}.0", "r2"])])
    assert forget(tmp_path, "r1").rows == 1 and archived_ids(tmp_path) == ["r2"]


class FakeCluster:
    """Kafka as :mod:`rendezvous.archive.topics` asks it. ``committed`` moves to the end
    offsets on its ``roll_at``-th call, after ``on_roll`` (the decoy writing its buffer)."""

    def __init__(self, topics: dict[str, dict[int, tuple[int, int]]],
                 configs: dict[str, dict[str, str]] | None = None,
                 committed: dict[str, dict[int, int | None]] | None = None,
                 roll_at: int | None = None, on_roll: object = None,
                 times: dict[tuple[str, int], int] | None = None,
                 readers: tuple[str, ...] = ()) -> None:
        self.topics, self.configs = topics, configs or {}
        self.readers = readers
        self._committed = committed or {}
        self.roll_at, self.on_roll, self.calls = roll_at, on_roll, 0
        self.times = times or {}
        self.closed = False

    def partitions(self, topic: str) -> list[int] | None:
        return sorted(self.topics[topic]) if topic in self.topics else None

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        return self.topics[topic][partition]

    def committed(self, topic: str, partitions: list[int]) -> dict[int, int | None]:
        self.calls += 1
        if self.roll_at is not None and self.calls >= self.roll_at:
            if callable(self.on_roll):
                self.on_roll()
                self.on_roll = None
            for t, parts in self.topics.items():
                self._committed.setdefault(t, {}).update({p: hw for p, (_, hw) in parts.items()})
        known = self._committed.get(topic, {})
        return {p: known.get(p) for p in partitions}

    def assigned(self, topic: str) -> bool:
        return topic in self.readers

    def offset_for_time(self, topic: str, partition: int, ms: int) -> int:
        return self.times.get((topic, partition), -1)

    def config(self, topic: str) -> dict[str, str]:
        return self.configs.get(topic, {"retention.ms": "604800000", "segment.ms": "604800000",
                                        "cleanup.policy": "delete"})

    def close(self) -> None:
        self.closed = True


def test_waiting_for_the_decoy_ends_when_it_has_committed_past_the_start() -> None:
    from rendezvous.archive.topics import wait_for_decoy

    clock = iter(range(1000))
    cluster = FakeCluster({"p.input": {0: (0, 10), 1: (5, 5)}, "p.decisions": {0: (0, 3)}},
                          committed={"p.input": {0: 4}, "p.decisions": {0: 1}}, roll_at=4)
    waited = wait_for_decoy(cluster, ["p.input", "p.decisions", "p.missing"], timeout_s=100,
                            clock=lambda: float(next(clock)), sleep=lambda s: None)
    assert waited.done and not waited.pending and waited.unrecorded == ()
    stuck = FakeCluster({"p.input": {0: (0, 10)}, "p.feedback": {0: (0, 9)}},
                        committed={"p.input": {0: 4}})
    clock = iter(range(1000))
    waited = wait_for_decoy(stuck, ["p.input", "p.feedback"], timeout_s=5,
                            clock=lambda: float(next(clock)), sleep=lambda s: None)
    assert not waited.done and waited.pending == (("p.input", 0, 4, 10),)
    assert waited.unrecorded == ("p.feedback",)  # the decoy never recorded it: not waited for
    # a decoy that has just started reads the topic but has committed nothing yet: waited for
    fresh = FakeCluster({"p.input": {0: (0, 10)}}, readers=("p.input",), roll_at=3)
    clock = iter(range(1000))
    waited = wait_for_decoy(fresh, ["p.input"], timeout_s=100,
                            clock=lambda: float(next(clock)), sleep=lambda s: None)
    assert waited.done and waited.unrecorded == () and fresh.calls >= 3


def test_what_each_topic_still_holds_and_until_when() -> None:
    from rendezvous.archive.retention import Located
    from rendezvous.archive.topics import still_held
    from rendezvous.settings import Settings

    day = 86_400_000
    now = T0 + day  # a day after the request
    located = [Located("input", 2, 120, T0, "r1.x.0"), Located("decisions", 2, 7, T0 + 40,
                                                               "r1.x.0")]
    cluster = FakeCluster(
        {"p.input": {0: (0, 0), 2: (100, 500)}, "p.decisions": {2: (50, 60)},
         "p.scores": {2: (0, 900)}, "p.scored": {2: (10, 900)}, "p.deadletter": {0: (0, 5)},
         "p.feedback": {0: (3, 8), 1: (0, 2)}},
        configs={"p.scores": {"retention.ms": str(day), "segment.ms": str(day)},
                 "p.deadletter": {"retention.ms": str(30 * day), "segment.ms": str(7 * day)},
                 "p.feedback": {"retention.ms": "-1"}},
        times={("p.scores", 2): 400, ("p.scored", 2): 10, ("p.deadletter", 0): 4,
               ("p.feedback", 0): 5})
    held = {h.logical: h for h in still_held(cluster, Settings(topic_prefix="p."), located,
                                             now_ms=now)}
    assert held["input"].holds and held["input"].exact
    assert held["input"].remaining_ms == 6 * day
    assert "still holds it (partition 2 offset 120)" in held["input"].line()
    assert "6d at the earliest" in held["input"].line()
    assert "NOT redacted" in held["input"].line()
    assert held["decisions"].holds is False and held["decisions"].exact  # 7 < 50: gone
    assert "retention has removed" in held["decisions"].line()
    assert held["scores"].holds and not held["scores"].exact  # its partition, by time
    assert held["scores"].remaining_ms == 0 and "in 0s at the earliest" in held[
        "scores"].line()
    assert held["scored"].holds is False  # its first offset of that time is its start: gone
    assert held["deadletter"].holds and "NOT redacted" in held["deadletter"].line()
    assert "29d" in held["deadletter"].line()
    assert held["feedback"].holds and "kept forever" in held["feedback"].line()
    nothing = still_held(cluster, Settings(topic_prefix="p."), [], now_ms=now)
    assert all(h.holds is None for h in nothing)
    assert "may hold it" in nothing[0].line() and "7d" in nothing[0].line()


def test_the_forget_command_waits_for_the_decoy_and_says_what_kafka_keeps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoy rolls a request's rows while forget waits: they are forgotten too."""
    from click.testing import CliRunner

    from rendezvous.archive import topics
    from rendezvous.cli import main

    requests(tmp_path, [f"r1.{TOKEN}.0", "other"])
    roll = lambda: requests(tmp_path, [f"r1.{TOKEN}.1"], first=10)  # noqa: E731
    cluster = FakeCluster({"p.input": {0: (0, 11)}, "p.decisions": {0: (0, 0)}},
                          committed={"p.input": {0: 2}}, roll_at=3, on_roll=roll)
    monkeypatch.setattr(topics, "KafkaCluster", lambda *args, **kwargs: cluster)
    env = {"RENDEZVOUS_KAFKA__BOOTSTRAP_SERVERS": "unused:9092", "RENDEZVOUS_TOPIC_PREFIX": "p."}
    result = CliRunner().invoke(main, ["archive", "forget", "--archive", str(tmp_path),
                                       "--id", "r1", "--wait-s", "30"], env=env)
    assert result.exit_code == 0, result.output
    assert archived_ids(tmp_path) == ["other"]
    assert "the decoy had archived it all" in result.output
    assert "removed 1 rows" in result.output and result.output.count("removed 1 rows") == 2
    assert "kafka p.input: still holds it (partition 0 offset 0, partition 0 offset 10)" in \
        result.output
    assert "NOT redacted" in result.output and cluster.closed
    # a decoy that does not catch up: what could be done is done, exit status 3
    requests(tmp_path, ["r3"], first=20)
    stuck = FakeCluster({"p.input": {0: (0, 30)}}, committed={"p.input": {0: 2}})
    monkeypatch.setattr(topics, "KafkaCluster", lambda *args, **kwargs: stuck)
    result = CliRunner().invoke(main, ["archive", "forget", "--archive", str(tmp_path),
                                       "--id", "r3", "--wait-s", "0"], env=env)
    assert result.exit_code == 3, result.output
    assert "has not archived up to now" in result.output and "removed 1 rows" in result.output
    # nothing named, nothing found
    result = CliRunner().invoke(main, ["archive", "forget", "--archive", str(tmp_path)],
                                env=env)
    assert result.exit_code == 2 and "--id" in result.output
    result = CliRunner().invoke(main, ["archive", "forget", "--archive", str(tmp_path),
                                       "--id", "nobody", "--no-kafka"], env=env)
    assert result.exit_code == 0 and "nothing of id 'nobody'" in result.output
