"""Replay from a real decoy archive into fresh topics on the real broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from confluent_kafka import TopicPartition

from rendezvous.archive import read_archive
from rendezvous.local.supervisor import Supervisor
from rendezvous.settings import Settings
from rendezvous.transport.clients import make_consumer, poll_batch
from tests.integration.test_decoy import decoy_args, payloads, produce, wait_for_archive

pytestmark = pytest.mark.integration

Sequences = dict[int, list[tuple[bytes | None, bytes | None, list | None]]]


def read_topic(settings: Settings, topic: str, n: int, timeout_s: float = 30) -> Sequences:
    """The first ``n`` records of ``topic``, per partition, in offset order."""
    consumer = make_consumer(settings, f"{settings.group('check')}-{topic}")
    consumer.subscribe([topic])
    out: Sequences = {}
    seen = 0
    deadline = time.monotonic() + timeout_s
    while seen < n and time.monotonic() < deadline:
        for record in poll_batch(consumer, 1000, 0.5):
            out.setdefault(record.partition(), []).append(
                (record.key(), record.value(), record.headers()))
            seen += 1
    consumer.close()
    assert seen == n, f"read {seen} records from {topic}, expected {n}"
    return out


def rendezvous(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rendezvous", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def test_replay_reproduces_keys_payloads_and_headers_in_partition_order(
        settings: Settings, supervisor: Supervisor, component_env: dict[str, str],
        tmp_path: Path) -> None:
    root = tmp_path / "archive"
    supervisor.start("decoy", decoy_args(root))
    sent = produce(settings, payloads(1500))
    wait_for_archive(root, len(sent))
    supervisor.terminate("decoy")
    original = read_topic(settings, settings.topic("input"), len(sent))

    done = rendezvous(component_env, "replay", "--archive", str(root), "--max")
    assert done.returncode == 0, done.stderr
    target = settings.topic("replay")  # the default target
    assert f"replayed 1,500 records to {target}" in done.stdout
    assert "1,500/1,500" in done.stderr  # the progress bar's last line
    assert read_topic(settings, target, len(sent)) == original

    # refuses the production input topic unless told
    refused = rendezvous(component_env, "replay", "--archive", str(root),
                         "--topic", settings.topic("input"))
    assert refused.returncode == 1 and "--into-production" in refused.stderr
    consumer = make_consumer(settings, settings.group("offsets"))
    ends = [consumer.get_watermark_offsets(TopicPartition(settings.topic("input"), p))[1]
            for p in range(4)]
    consumer.close()
    assert sum(ends) == len(sent)


def test_a_corrupt_archive_file_is_named_and_skipped_and_time_range_and_rate_apply(
        settings: Settings, supervisor: Supervisor, component_env: dict[str, str],
        tmp_path: Path) -> None:
    root = tmp_path / "archive"
    supervisor.start("decoy", decoy_args(root))
    sent = produce(settings, payloads(400))
    wait_for_archive(root, len(sent))
    supervisor.terminate("decoy")
    table = read_archive(root, "input")
    newest = max(table["timestamp_ms"].to_pylist())
    broken = sorted(root.rglob("part-2-*.parquet"))[0]
    lost = pq.read_metadata(broken).num_rows
    in_partition_2 = table["partition"].to_pylist().count(2)
    broken.write_bytes(broken.read_bytes()[:100])  # truncated

    target = settings.topic("again")
    started = time.monotonic()
    done = rendezvous(component_env, "replay", "--archive", str(root), "--topic", target,
                      "--rate", "2000", "--to", str(newest + 1), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert str(broken) in done.stderr and "skipped" in done.stderr
    replayed = read_topic(settings, target, len(sent) - lost)
    assert len(replayed.get(2, [])) == in_partition_2 - lost
    assert time.monotonic() - started >= (len(sent) - lost) / 2000

    empty = rendezvous(component_env, "replay", "--archive", str(root), "--topic", target,
                       "--from", str(newest + 1), "--no-progress")
    assert empty.returncode == 0 and "replayed 0 records" in empty.stdout
