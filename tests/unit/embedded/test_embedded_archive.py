"""Embedded traffic archived in the decoy's layout: every call's input and decision, nothing
dropped at a modest rate, and read back by the archive reader and the backtest."""

from __future__ import annotations

import time
from pathlib import Path

from rendezvous.archive import read_archive
from rendezvous.backtest.runner import BacktestConfig, backtest
from rendezvous.embedded import Embedded
from rendezvous.embedded.models import BUNDLED
from rendezvous.messages import decode_decision, decode_input
from rendezvous.model import load_dataset, load_model, resolve_model

CALLS = 200
RATE_PER_S = 500.0


def test_every_input_and_decision_is_archived_and_read_back(tmp_path: Path) -> None:
    rows = load_dataset().X
    archive = tmp_path / "archive"
    results = []
    with Embedded(archive=archive, archive_roll_s=0.2) as embedded:
        next_at = time.perf_counter()
        for i in range(CALLS):
            features = [float(v) for v in rows[i % len(rows)]]
            results.append(embedded.score(features, id=f"r{i}", deadline_ms=500))
            next_at += 1 / RATE_PER_S
            time.sleep(max(0.0, next_at - time.perf_counter()))
        batch = embedded.score_batch([[float(v) for v in rows[0]]] * 3, ids=["b0", "b1", "b2"])
    stats = embedded.stats()
    assert stats.archive_dropped == 0
    assert stats.archived == 2 * (CALLS + 3)

    inputs = read_archive(archive, "input")
    decisions = read_archive(archive, "decisions")
    assert inputs.num_rows == decisions.num_rows == CALLS + 3
    events = [decode_input(v) for v in inputs.column("value").to_pylist()]
    by_id = {e.id: e for e in events}  # type: ignore[union-attr]
    assert sorted(by_id) == sorted([f"r{i}" for i in range(CALLS)] + ["b0", "b1", "b2"])
    assert by_id["r7"].features == [float(v) for v in rows[7]]  # type: ignore[union-attr]
    assert by_id["r7"].deadline_ms == 500  # type: ignore[union-attr]
    assert inputs.column("key").to_pylist()[0] == events[0].id.encode()  # type: ignore[union-attr]
    recorded = {d.id: d for d in map(decode_decision, decisions.column("value").to_pylist())}
    for result in results + batch:
        decision = recorded[result.id]
        assert (decision.status, decision.chosen) == (result.status, result.model)

    # A candidate is backtested against what Embedded answered, as against a deployment's.
    canary = load_model(resolve_model(BUNDLED, "canary"))
    done = backtest(canary, BacktestConfig(archive=archive, report=tmp_path / "report",
                                           models_dir=BUNDLED))
    assert done.summary["rows"] == CALLS + 3


def test_a_full_queue_drops_and_counts_never_blocks(tmp_path: Path) -> None:
    rows = [[float(v) for v in load_dataset().X[0]]] * 200
    with Embedded(archive=tmp_path / "a", archive_queue=1, archive_roll_s=60) as embedded:
        # 200 inputs queued in one go, faster than the archive's thread takes one.
        results = embedded.score_batch(rows, deadline_ms=1000)
        assert embedded.stats().archive_dropped > 0
    assert [r.status for r in results] == ["ok"] * 200
    stats = embedded.stats()
    assert stats.archived + stats.archive_dropped == 2 * 200
