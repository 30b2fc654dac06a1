"""``rendezvous inspect`` without a broker: the time window, the archive search (which row
groups it reads), the policy in force, and the decision's reason in words."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rendezvous.archive.layout import HOUR_MS, file_name, hour_directory
from rendezvous.archive.retention import Selector
from rendezvous.archive.schema import ARCHIVE_SCHEMA
from rendezvous.inspect.archive import search_archive
from rendezvous.inspect.control import in_force, policies
from rendezvous.inspect.errors import InspectError
from rendezvous.inspect.records import Found
from rendezvous.inspect.story import stories
from rendezvous.inspect.window import Window, iso, window
from rendezvous.messages import Candidate, Decision, Policy, Scored, encode

NOW = 1_796_680_000_000
HOUR = NOW // HOUR_MS * HOUR_MS


def test_window_defaults_to_the_last_hour_and_reads_ages_and_iso_times() -> None:
    assert window(None, None, NOW) == Window(NOW - HOUR_MS, NOW)
    assert window("2h", "90m", NOW) == Window(NOW - 2 * HOUR_MS, NOW - 90 * 60_000)
    assert window("2026-12-07T20:00:00Z", str(NOW), NOW).start_ms == 1_796_673_600_000
    with pytest.raises(InspectError, match="is not a time"):
        window("yesterday", None, NOW)
    with pytest.raises(InspectError, match="is not before"):
        window("1h", "2h", NOW)
    assert iso(1_796_673_600_123) == "2026-12-07T20:00:00.123Z"


def _rows(ids: list[str], times: list[int], offset: int = 0) -> pa.Table:
    n = len(ids)
    return pa.table({
        "schema_version": pa.array([1] * n, pa.int16()),
        "topic": pa.array(["input"] * n),
        "partition": pa.array([0] * n, pa.int32()),
        "offset": pa.array(range(offset, offset + n), pa.int64()),
        "key": pa.array([i.encode() for i in ids], pa.binary()),
        "value": pa.array([msgspec.json.encode({"id": i, "features": [1.0]}) for i in ids],
                          pa.binary()),
        "headers": pa.nulls(n, ARCHIVE_SCHEMA.field("headers").type),
        "timestamp_ms": pa.array(times, pa.int64()),
        "timestamp_type": pa.array([1] * n, pa.int8()),
        "arrival_ms": pa.array(times, pa.int64()),
    }, schema=ARCHIVE_SCHEMA)


def test_archive_search_reads_keys_first_and_whole_row_groups_only_where_one_matches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # four row groups of 100 rows; the target (and a gateway row of it) in the third
    ids = [f"r-{i}" for i in range(400)]
    ids[250], ids[260] = "target", "target.0123456789abcdef0123456789abcdef.1"
    times = [HOUR + i for i in range(400)]
    times[:100] = [HOUR - 10 * HOUR_MS] * 100  # the first group: hours before the window
    directory = hour_directory(tmp_path, "input", HOUR // HOUR_MS)
    directory.mkdir(parents=True)
    pq.write_table(_rows(ids, times), directory / file_name(0, 0), row_group_size=100)
    reads: list[tuple[int, tuple[str, ...] | None]] = []
    original = pq.ParquetFile.read_row_group

    def counted(self: pq.ParquetFile, i: int, columns: list[str] | None = None,
                **kw: object) -> pa.Table:
        reads.append((i, tuple(columns) if columns else None))
        return original(self, i, columns=columns, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counted)
    found = search_archive(tmp_path, Selector(ids=("target",)),
                           Window(HOUR - HOUR_MS, HOUR + HOUR_MS))
    assert [f.request_id for f in found] == ["target", ids[260]]
    assert [(f.partition, f.offset) for f in found] == [(0, 250), (0, 260)]
    # group 0 skipped by its timestamps; keys of 1-3 read; only group 2 read whole
    assert reads == [(1, ("key",)), (2, ("key",)), (2, None), (3, ("key",))]
    assert search_archive(tmp_path, Selector(ids=("absent",)),
                          Window(HOUR - HOUR_MS, HOUR + HOUR_MS)) == []
    with pytest.raises(InspectError, match="no archive at"):
        search_archive(tmp_path / "nowhere", Selector(ids=("x",)), Window(0, 1))


def test_the_policy_in_force_is_the_last_published_before_the_request() -> None:
    first = Policy(deadline_ms=50, actor="ana", at_ms=1000.0)
    second = Policy(deadline_ms=80, actor="bo", at_ms=2000.0)
    history = policies([(b"policy", encode(second), 2001), (b"audit/policy/1000-ab",
                                                            encode(first), 1001),
                        (b"audit/policy/2000-cd", encode(second), 2001),
                        (b"model/primary", b"{}", 5)])
    assert [p.policy.actor for p in history] == ["ana", "bo"]  # each change once
    assert [p.policy.actor if p else None for p in in_force(history, 1500)] == ["ana", "bo"]
    assert in_force(history, 500)[0] is None  # nothing published yet: serve's default


def _found(topic: str, message: msgspec.Struct, ts: int, rid: str = "r1") -> Found:
    return Found(topic, 2, 7, ts, rid.encode(), encode(message), rid)


def test_a_fallback_says_how_late_the_preferred_model_was_and_how_it_was_mapped() -> None:
    from rendezvous.messages import Score

    ts = NOW - 60_000
    decision = Decision("r1", "fallback", "canary", [
        Candidate("canary", "1", 0.91, 3.0, True, service_ms=1.0)], ts + 38.0, ts + 40.0,
        float(ts), "reference:canary/1->primary/1", version="1")
    scored = Scored("r1", "fallback", 0.88, 1, "canary", "1", 40.0, ["canary"],
                    "primary: no answer by deadline", ts + 40.0, 0.91)
    late = Score("r1", "primary", "1", "ok", 0.87, 1, ts + 1.0, ts + 51.0)
    found = [_found("input", msgspec.Struct(), ts),  # undecodable as an event: still shown
             _found("decisions", decision, ts + 40), _found("scored", scored, ts + 40),
             _found("scores", late, ts + 52)]
    [story] = stories(found, [], "kafka")
    assert story.decision is not None
    assert story.decision.why == ("primary answered 12 ms after the decision; canary's "
                                  "0.9100 mapped to 0.8800 on primary's scale by "
                                  "reference:canary/1->primary/1")
    assert [(a.model, a.valid, a.after_decision_ms) for a in story.answers] == [
        ("canary", True, None), ("primary", None, 12.0)]
    assert story.policy is not None and story.policy.published is None  # serve's default
