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
