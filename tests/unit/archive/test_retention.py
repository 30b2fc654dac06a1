"""Retention of the archive: prune whole old hours (never one being written), forget one
request by rewriting the files that hold it."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from confluent_kafka import Message

from rendezvous.archive import ArchiveError, read_archive
from rendezvous.archive.layout import HOUR_MS, TEMP_SUFFIX
from rendezvous.archive.retention import forget, parse_age, prune
from rendezvous.cli import main
from rendezvous.decoy.batches import to_batches
from rendezvous.decoy.writer import ArchiveWriter

NOW = 1_709_622_900_000  # 2024-03-05T07:15Z
DAY = 24 * HOUR_MS
LOGICAL = {"p.input": "input", "p.decisions": "decisions"}


def write(root: Path, ts: int, ids: list[str], topic: str = "p.input",
          first: int = 0) -> None:
    records = [Message(topic=topic, partition=0, offset=first + i, key=rid.encode(),
                       value=msgspec.json.encode({"id": rid, "features": [1.0]}),
                       timestamp=(1, ts)) for i, rid in enumerate(ids)]
    writer = ArchiveWriter(root)
    for group, batch in to_batches(records, LOGICAL, ts).items():
        writer.add(group, batch)
    writer.roll()


def test_parse_age() -> None:
    assert parse_age("30d") == 30 * DAY and parse_age("12h") == 12 * HOUR_MS
    assert parse_age("90m") == 90 * 60_000
    with pytest.raises(ArchiveError):
        parse_age("30 days")


def test_prune_deletes_whole_old_hours_but_not_one_being_written(tmp_path: Path) -> None:
    write(tmp_path, NOW - 40 * DAY, ["old1"])
    write(tmp_path, NOW - 31 * DAY, ["old2"], topic="p.decisions", first=10)
    write(tmp_path, NOW - 35 * DAY, ["busy"], first=20)
    write(tmp_path, NOW - 29 * DAY, ["kept"], first=30)
    busy_dir = next(p.parent for p in tmp_path.rglob("*.parquet") if "date=2024-01-30" in str(p))
    (busy_dir / f".part-0-9-x.parquet{TEMP_SUFFIX}").write_bytes(b"being written")
    assert len(prune(tmp_path, 30 * DAY, NOW, dry_run=True).deleted) == 2
    assert len(read_archive(tmp_path)) == 4  # a dry run deletes nothing
    done = prune(tmp_path, 30 * DAY, NOW)
    assert len(done.deleted) == 2 and done.busy == [busy_dir]
    ids = sorted(k.decode() for k in read_archive(tmp_path).column("key").to_pylist())
    assert ids == ["busy", "kept"]
    assert not list(tmp_path.rglob(".pruning-*"))
    assert not [d for d in tmp_path.glob("*/date=*") if not any(d.iterdir())]


def test_forget_rewrites_only_the_files_that_hold_the_request(tmp_path: Path) -> None:
    write(tmp_path, NOW, ["a", "gone", "b"])
    write(tmp_path, NOW + HOUR_MS, ["c"], first=10)
    # Its decision: keyed otherwise, found by its value's id.
    write(tmp_path, NOW, ["gone"], topic="p.decisions")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.parquet")}
    done = forget(tmp_path, "gone")
    assert done.rows == 2 and len(done.files) == 2
    assert sorted(k.decode() for k in read_archive(tmp_path).column("key").to_pylist()) == [
        "a", "b", "c"]
    left = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.parquet")}
    assert len(left) == 2  # the decisions file had only that row: deleted
    untouched = [p for p in left if p not in done.files]
    assert untouched and all(left[p] == before[p] for p in untouched)
    for path in tmp_path.rglob("*.parquet"):
        assert b"gone" not in path.read_bytes() or path not in done.files
    assert not list(tmp_path.rglob(f"*{TEMP_SUFFIX}"))
    assert forget(tmp_path, "gone").rows == 0


def test_cli(tmp_path: Path) -> None:
    write(tmp_path, 1_000 * HOUR_MS, ["ancient"])
    runner = CliRunner()
    result = runner.invoke(main, ["archive", "prune", "--archive", str(tmp_path),
                                  "--older-than", "30d"])
    assert result.exit_code == 0, result.output
    assert "deleted" in result.output and not list(tmp_path.rglob("*.parquet"))
    result = runner.invoke(main, ["archive", "forget", "--archive", str(tmp_path), "--id", "x",
                                  "--no-kafka"])
    assert result.exit_code == 0, result.output


def test_the_decoy_applies_its_retention_setting(tmp_path: Path) -> None:
    import time

    from rendezvous.decoy.recorder import Recorder
    from rendezvous.settings import DecoySettings, Settings

    now = int(time.time() * 1000)
    write(tmp_path, now - 40 * DAY, ["old"])
    write(tmp_path, now, ["new"], first=10)
    recorder = Recorder(Settings(kafka={"bootstrap_servers": "127.0.0.1:1"}),
                        DecoySettings(archive=tmp_path, retention_hours=30 * 24))
    try:
        recorder._prune()
    finally:
        recorder.consumer.close()
    assert [k.decode() for k in read_archive(tmp_path).column("key").to_pylist()] == ["new"]
